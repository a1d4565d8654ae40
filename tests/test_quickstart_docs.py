"""The README: its Quickstart (two command lines, the second run verbatim by .ci/run, the first
writing where the text says), its Python API example (run exactly as written), links to files a
clone has, and knob tables that list exactly the knobs of sgm.modules.motion."""
import re
import shutil

import pytest

from sgm.modules.motion import ALL_KNOB_NAMES


@pytest.fixture(scope="module")
def readme(paths):
    return (paths.repo / "README.md").read_text(encoding="utf-8")


def section(text, title):
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def code_block(text, language=""):
    return re.search(rf"```{language}\n(.*?)```", text, re.DOTALL).group(1)


def quickstart_lines(readme):
    return code_block(section(readme, "Quickstart"), "bash").rstrip("\n").split("\n")


def test_quickstart_is_two_command_lines(readme, paths):
    lines = quickstart_lines(readme)
    assert len(lines) == 2
    assert all(line.strip() and not line.lstrip().startswith("#") for line in lines)
    assert "simple_video_sample.py" in lines[0] and "--version toy_svd" in lines[0]
    assert "pytest" in lines[1]
    image = re.search(r"--input_path (\S+)", lines[0]).group(1)
    for path in (image, "sgm/checkpoints/toy_svd.safetensors", "scripts/sampling/configs/toy_svd.yaml", "requirements.txt", "setup.py"):
        assert (paths.repo / path).is_file(), path


def test_quickstart_writes_where_the_text_says(readme):
    folder = re.search(r"--output_folder (\S+)", quickstart_lines(readme)[0]).group(1).rstrip("/")
    named = re.search(r"The video lands in `([^`]+)/000000\.mp4`", section(readme, "Quickstart")).group(1)
    assert named.rstrip("/") == folder


def test_ci_runs_quickstart_line_two_verbatim(readme, paths):
    ci_lines = (paths.repo / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert quickstart_lines(readme)[1] in ci_lines
    assert "set -euo pipefail" in ci_lines


def test_python_api_example_runs_as_written(readme, paths, tmp_path, monkeypatch, capsys, read_video):
    example = code_block(section(readme, "Python API"), "python")
    (tmp_path / "assets").mkdir()
    shutil.copy(paths.toy_image, tmp_path / "assets" / "toy_image.png")
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md (Python API)", "exec"), {})
    assert "torch.Size([8, 3, 64, 64]) 2.0" in capsys.readouterr().out
    frames, fps = read_video(tmp_path / "toy_scale2.mp4")
    assert frames.shape == (8, 64, 64, 3) and fps == pytest.approx(7)


@pytest.mark.parametrize("doc", ["README.md", "docs/PATCHES.md", "docs/TOY_MODEL.md", "docs/RESULTS.md", "tests/fixtures/README.md"])
def test_relative_links_point_to_files_in_the_clone(doc, paths):
    page = paths.repo / doc
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
        if not re.match(r"[a-z]+://", target):
            assert (page.parent / target).exists(), f"{doc} links to {target}, which a clone does not have"


def test_knob_tables_list_exactly_the_defined_knobs(paths):
    """The summary table of docs/PATCHES.md has exactly one row per knob of sgm.modules.motion."""
    patches = (paths.repo / "docs" / "PATCHES.md").read_text(encoding="utf-8")
    summary = section(patches, "Summary")
    rows = re.findall(r"^\| `([a-z_]+)`", summary, re.MULTILINE)
    assert sorted(rows) == sorted(ALL_KNOB_NAMES)
