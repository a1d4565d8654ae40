"""Jobs on Lightning (sgm.inference.job / engine): two CPU processes (DDP over gloo) against one,
a killed job resumed, an odd number of items over two processes, collect_only, and Lightning's
flags refused before any model loads.

The multi-process runs are real processes of the scripts (Lightning starts the second one); the
one-process reference runs in this process. Every process uses one thread, so that the two
sides sum in the same order and the frames can be compared with torch.equal.
"""
import collections
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest
import torch
from PIL import Image

from sgm.inference import VideoPipeline
from sgm.inference.cli import run_cli

JOB = ["--version", "toy_svd", "--temporal_attn_scale", "0.5,2", "--seed", "1,2", "--num_frames", "6", "--num_steps", "6",
       "--save_frames"]
TWO_CPUS = ["--accelerator", "cpu", "--devices", "2"]
WROTE = re.compile(r"^(?:rank (\d+): )?wrote (\S+)\.mp4$", re.MULTILINE)


class Built(Exception):
    """Raised where a test requires that no model is built."""


def make_images(folder, count, toy_image):
    """`count` different 64x64 images: the shipped toy image turned by 0, 90, 180, ... degrees."""
    folder.mkdir(parents=True, exist_ok=True)
    base = Image.open(toy_image).convert("RGB")
    for k in range(count):
        base.rotate(90 * k).save(folder / f"{'abcdefgh'[k]}.png")
    return folder


def item_ids(folder):
    return sorted(p.stem for p in folder.glob("img*.json"))


def frames_of(folder, item, read_png_frames):
    return torch.from_numpy(read_png_frames(folder / f"{item}_frames"))


def written(stdout):
    """{item id: times written} and the ranks that wrote, from the "wrote" lines."""
    found = WROTE.findall(stdout)
    return collections.Counter(os.path.basename(path) for _, path in found), {int(rank or 0) for rank, _ in found}


@contextmanager
def one_thread():
    """One torch thread, as every process of the multi-process runs (CPU sums are split by thread)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def job_images(tmp_path_factory, paths):
    return make_images(tmp_path_factory.mktemp("images"), 2, paths.toy_image)


@pytest.fixture(scope="module")
def reference(job_images, tmp_path_factory, sweep_script):
    """The 2-image x 2-cell x 2-seed job in one process (this one)."""
    folder = tmp_path_factory.mktemp("one_process") / "out"
    with one_thread():
        assert run_cli(sweep_script.main, sweep_script.PARSER, ["--input_path", str(job_images), *JOB, "--output_folder",
                                                                str(folder)]) == 0
    return folder


def test_two_processes_write_each_item_once_with_the_frames_of_one(reference, job_images, tmp_path, paths, run_process,
                                                                   read_png_frames):
    folder = tmp_path / "out"
    result = run_process(paths.sweep_script, "--input_path", job_images, *JOB, *TWO_CPUS, "--output_folder", folder)
    assert result.returncode == 0, result.stderr
    ids = item_ids(reference)
    assert len(ids) == 8 and item_ids(folder) == ids
    counts, ranks = written(result.stdout)
    assert counts == {item: 1 for item in ids} and ranks == {0, 1}
    for item in ids:
        assert torch.equal(frames_of(folder, item, read_png_frames), frames_of(reference, item, read_png_frames)), item
    manifest = json.loads((folder / "manifest.json").read_text())
    assert (manifest["total"], manifest["done"], manifest["missing"]) == (8, 8, 0)
    assert sorted(row["id"] for row in manifest["items"] if row["status"] == "done") == ids
    assert re.search(r"Items: 100%.*8/8", result.stderr)  # rank 0's bar over every process's items
    for view in ("grid.mp4", "contact_sheet.png", "sweep.json", "img000_a.png", "img001_b.png"):
        assert (folder / view).is_file(), view
    with open(folder / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["item"], r["image"]) for r in rows] == [(item, item.split("__")[0]) for item in ids]


def test_a_killed_job_resumes_only_its_missing_items(reference, job_images, tmp_path, paths, run_process, read_png_frames):
    folder, log = tmp_path / "out", open(tmp_path / "log", "w")
    job = subprocess.Popen([sys.executable, str(paths.sweep_script), "--input_path", str(job_images), *JOB, *TWO_CPUS,
                            "--output_folder", str(folder)], stdout=log, stderr=log, start_new_session=True,
                           env={**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 300
    while len(item_ids(folder)) < 2:
        assert job.poll() is None, open(tmp_path / "log").read()
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.killpg(job.pid, signal.SIGKILL)  # rank 0 and the rank it started
    job.wait()
    finished = item_ids(folder)
    assert 2 <= len(finished) < 8 and not (folder / "manifest.json").exists()
    stats = {(item, suffix): os.stat(folder / (item + suffix)) for item in finished for suffix in (".json", ".npz", ".mp4")}

    result = run_process(paths.sweep_script, "--input_path", job_images, *JOB, *TWO_CPUS, "--output_folder", folder, "--resume")
    assert result.returncode == 0, result.stderr
    assert f"resume: {len(finished)} of 8 items already done" in result.stdout
    counts, _ = written(result.stdout)
    assert counts == {item: 1 for item in item_ids(reference) if item not in finished}
    for (item, suffix), before in stats.items():  # finished items were neither sampled nor written again
        after = os.stat(folder / (item + suffix))
        assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert item_ids(folder) == item_ids(reference)
    for item in item_ids(reference):
        assert torch.equal(frames_of(folder, item, read_png_frames), frames_of(reference, item, read_png_frames)), item
    assert json.loads((folder / "manifest.json").read_text())["done"] == 8
    assert not [name for name in os.listdir(folder) if name.startswith(".partial-")]


def test_odd_items_over_two_processes_each_written_once_as_the_plain_script_makes_them(tmp_path, paths, run_process,
                                                                                       sample_script, read_png_frames):
    images = make_images(tmp_path / "images", 3, paths.toy_image)
    common = ["--input_path", images, "--version", "toy_svd", "--num_frames", "4", "--num_steps", "2", "--seed", "5", "--save_frames"]
    folder = tmp_path / "job"
    result = run_process(paths.sample_script, *common, *TWO_CPUS, "--output_folder", folder)
    assert result.returncode == 0, result.stderr
    ids = ["img000_a", "img001_b", "img002_c"]
    counts, ranks = written(result.stdout)
    assert counts == {item: 1 for item in ids} and ranks == {0, 1} and item_ids(folder) == ids
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [(row["id"], row["status"]) for row in manifest["items"]] == [(item, "done") for item in ids]

    plain = tmp_path / "plain"  # the script without Lightning's flags: numbered outputs, one process
    with one_thread():
        assert run_cli(sample_script.main, sample_script.PARSER, [str(a) for a in [*common, "--output_folder", plain]]) == 0
    for number, item in enumerate(ids):
        assert torch.equal(torch.from_numpy(read_png_frames(plain / f"{number:06d}_frames")), frames_of(folder, item, read_png_frames))
        record = json.loads((folder / f"{item}.json").read_text())
        assert record["input_path"] == str(images / f"{'abc'[number]}.png") and record["seed"] == 5


@pytest.fixture
def no_build(monkeypatch):
    def load(planned, *args, **kwargs):
        raise Built("the model must not be built here")

    monkeypatch.setattr(VideoPipeline, "load", load)


def test_collect_only_rebuilds_the_shared_files_without_a_model(reference, job_images, tmp_path, run_in_process, sweep_script,
                                                               no_build):
    folder = tmp_path / "out"
    shutil.copytree(reference, folder)
    for name in ("manifest.json", "grid.mp4", "metrics.csv", "contact_sheet.png"):
        (folder / name).unlink()
    missing = item_ids(folder)[3]
    (folder / f"{missing}.json").unlink()
    result = run_in_process(sweep_script, "--input_path", job_images, *JOB, "--output_folder", folder, "--collect_only")
    assert result.returncode == 0, result.stderr
    assert "1 of 8 items are missing" in result.stdout and "--resume" in result.stdout
    manifest = json.loads((folder / "manifest.json").read_text())
    assert [row["id"] for row in manifest["items"] if row["status"] == "missing"] == [missing]
    rows = (folder / "metrics.csv").read_text().splitlines()
    assert len(rows) == 1 + 7 and not any(missing in row for row in rows)
    assert (folder / "grid.mp4").is_file() and (folder / "contact_sheet.png").is_file()


BAD_LAUNCH = {
    "no devices": (["--accelerator", "cpu", "--devices", "0"], "--devices 0: give a count of 1 or more"),
    "no nodes": (["--accelerator", "cpu", "--num_nodes", "0"], "--num_nodes 0: give a count of 1 or more"),
    "unknown strategy": (["--accelerator", "cpu", "--strategy", "fsdp_spawn"], "unknown strategy 'fsdp_spawn'"),
    "unknown accelerator": (["--accelerator", "tpu"], "unknown accelerator 'tpu'"),
    "cpu device list": (["--accelerator", "cpu", "--devices", "0,1"], "needs --accelerator cuda"),
    "device and devices": (["--device", "cpu", "--devices", "2"], "--device picks the device of a single process"),
    "several processes, no folder": (["--accelerator", "cpu", "--devices", "2", "--output_folder", "none"],
                                     "the 2 processes of this run write into one folder"),
    "nodes without a starter": (["--accelerator", "cpu", "--num_nodes", "2"], "start the command on every node with torchrun"),
    "collect_only over processes": (["--accelerator", "cpu", "--devices", "2", "--collect_only"], "--collect_only runs in one process"),
}
if not torch.cuda.is_available():
    BAD_LAUNCH["cuda on a machine without one"] = (["--accelerator", "cuda"], "--accelerator cuda: no CUDA device is available")


@pytest.mark.parametrize("script_name", ["sweep", "sample"])
@pytest.mark.parametrize("case", sorted(BAD_LAUNCH))
def test_bad_launch_flags_are_one_line_errors_before_loading(case, script_name, tmp_path, sweep_script, sample_script, paths,
                                                            run_in_process, one_line_error, no_build):
    flags, message = BAD_LAUNCH[case]
    script = sweep_script if script_name == "sweep" else sample_script
    axis = ["--seed", "1,2"] if script_name == "sweep" else []
    out = tmp_path / "out"
    args = ["--input_path", paths.toy_image, "--version", "toy_svd", *axis, "--output_folder", out, *flags]
    line = one_line_error(run_in_process(script, *args))
    assert message in line
    assert not out.exists() and not (tmp_path / "none").exists()
