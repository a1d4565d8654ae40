"""Peak memory of real sampling runs against sgm.inference.memory's estimate, row by row.

    OMP_NUM_THREADS=1 python scripts/benchmarks/memory_estimate.py                # toy_svd and the tiny test model
    OMP_NUM_THREADS=1 python scripts/benchmarks/memory_estimate.py --models svd   # svd.yaml, random weights (10 GB, ~15 min)
    python scripts/benchmarks/memory_estimate.py --models ""                      # re-estimate the CSV's rows, redraw
    python scripts/benchmarks/memory_estimate.py --device cuda

Each row is one pipeline call (1 step). Measured is the peak of the call above what was held
before it. On CPU the call runs in a forked copy of the process that has just built the model, so
that it is a first call starting from the state after the build, as in a sampling run: the peak
is the resident-set high-water mark (VmHWM, reset by writing 5 to /proc/self/clear_refs after
malloc_trim) minus the resident set before. On CUDA it is torch.cuda.max_memory_allocated.
ratio = estimated / measured activations; the estimate is meant to lie within 1 to 2 times the
measurement. The CPU peaks depend on glibc's heap: the same row measured again, or after other
calls, moved by up to about 30% here. Measured rows are kept in the CSV (rows already there are skipped, so a long run can
be resumed); its estimate columns are recomputed by the current code on every run, and the plot
is redrawn from the whole CSV.
"""
import argparse
import csv
import ctypes
import gc
import os
import time
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from omegaconf import DictConfig

from sgm.inference import VideoPipeline
from sgm.inference.loading import read_config, resolve_config_path
from sgm.inference.memory import estimate_memory, format_bytes, weight_count

REPO = Path(__file__).resolve().parents[2]

TINY = REPO / "tests" / "fixtures" / "upstream_parity"
DTYPES = {"default": None, "bfloat16": torch.bfloat16, "float16": torch.float16}
# model -> rows (dtype, width, height, num_frames, decoding_t)
ROWS: Dict[str, List[Tuple[str, int, int, int, int]]] = {
    "toy": [("default", 64, 64, 8, 8), ("default", 128, 128, 8, 8), ("default", 256, 256, 8, 8),
            ("default", 384, 384, 8, 8), ("default", 512, 512, 8, 8), ("default", 512, 256, 8, 8),
            ("default", 256, 256, 4, 4), ("default", 256, 256, 14, 14), ("default", 384, 384, 14, 1),
            ("bfloat16", 256, 256, 8, 8), ("bfloat16", 384, 384, 8, 8), ("float16", 384, 384, 8, 8)],
    "tiny": [("default", 128, 128, 5, 5), ("default", 256, 256, 5, 5), ("default", 256, 256, 5, 1),
             ("default", 256, 128, 8, 8), ("default", 384, 256, 5, 5), ("bfloat16", 256, 256, 5, 5)],
    "svd": [("default", 128, 128, 2, 2), ("default", 256, 256, 2, 2), ("default", 256, 256, 4, 1)],
}
FIELDS = ["model", "device", "dtype", "width", "height", "num_frames", "decoding_t", "measured_activations", "seconds",
          "weights_bytes", "est_encode", "est_denoise", "est_decode", "est_activations", "ratio"]
KEY = FIELDS[:7]


def model_config(model: str) -> Tuple[DictConfig, Optional[str]]:
    """(config, checkpoint path) of `model`: toy_svd with its checkpoint, the tiny test model with
    its fixture weights, or svd.yaml with no checkpoint (random weights)."""
    if model == "toy":
        cfg, _ = read_config(resolve_config_path("toy_svd"))
    elif model == "tiny":
        cfg, _ = read_config(TINY / "tiny_svd.yaml", TINY / "weights.safetensors")
    else:
        cfg, _ = read_config(REPO / "scripts" / "sampling" / "configs" / "svd.yaml")
        del cfg.model.params["ckpt_path"]
    ckpt = cfg.model.params.get("ckpt_path")
    return cfg, None if ckpt is None else str(ckpt)


def build(model: str, device: str, dtype: Optional[torch.dtype]) -> VideoPipeline:
    return VideoPipeline.from_config(model_config(model)[0], device=device, dtype=dtype, progress=False)


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


def peak_of(run, device: torch.device) -> int:
    """Bytes the call run() needs at its peak above what is held before it."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as handle:
        handle.write("5")
    before = _status_bytes("VmRSS")
    run()
    return _status_bytes("VmHWM") - before


def in_child(measure) -> int:
    """measure() in a forked copy of this process, so that every row starts from the state right
    after the model was built (no earlier call's heap) and its call is a first call, as in a run."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            value = measure()
        except BaseException:  # the parent reports the failure; the child must not return into its caller
            os._exit(1)
        os.write(write_end, str(value).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as handle:
        text = handle.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not text:
        raise RuntimeError(f"the measuring child process failed (wait status {status})")
    return int(text)


def measure_row(pipe: VideoPipeline, model: str, dtype_name: str, w: int, h: int, t: int, dt: int) -> Dict[str, object]:
    """The measured activation peak of one call (1 step)."""
    image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(0)) * 2 - 1
    start = time.perf_counter()

    def measure() -> int:
        return peak_of(lambda: pipe(image, num_frames=t, num_steps=1, decoding_t=dt, seed=0), pipe.device)

    measured = measure() if pipe.device.type == "cuda" else in_child(measure)
    return {"model": model, "device": pipe.device.type, "dtype": dtype_name, "width": w, "height": h, "num_frames": t,
            "decoding_t": dt, "measured_activations": measured, "seconds": round(time.perf_counter() - start, 1)}


def with_estimate(row: Dict[str, object], configs: Dict[str, Tuple[DictConfig, Optional[str]]]) -> Dict[str, object]:
    """`row` with the current estimate's columns and ratio = estimated / measured activations."""
    cfg, ckpt = configs[str(row["model"])]
    w, h, t, dt = (int(row[k]) for k in ("width", "height", "num_frames", "decoding_t"))
    est = estimate_memory(cfg, w, h, t, dt, DTYPES[str(row["dtype"])], torch.device(str(row["device"])), weight_count(ckpt))
    return {**row, "weights_bytes": est.weights, "est_encode": est.stages["encode"], "est_denoise": est.stages["denoise"],
            "est_decode": est.stages["decode"], "est_activations": est.activations,
            "ratio": round(est.activations / int(row["measured_activations"]), 3)}


def read_rows(path: Path) -> List[Dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def write_rows(path: Path, rows: List[Dict[str, object]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def run_model(model: str, device: str, csv_path: Path) -> None:
    """Measure the rows of `model` not yet in the CSV, one pipeline per dtype, writing the CSV after
    every row."""
    configs = {model: model_config(model)}
    for dtype_name in dict.fromkeys(r[0] for r in ROWS[model]):
        done = {tuple(r[k] for k in KEY) for r in read_rows(csv_path)}
        rows = [r for r in ROWS[model] if r[0] == dtype_name and
                tuple(map(str, (model, torch.device(device).type, *r))) not in done]
        if not rows:
            continue
        pipe = build(model, device, DTYPES[dtype_name])
        for row in rows:
            result = with_estimate(measure_row(pipe, model, *row), configs)
            write_rows(csv_path, read_rows(csv_path) + [result])
            print(f"{model} {dtype_name} {row[1]}x{row[2]} T={row[3]} decoding_t={row[4]}: estimate "
                  f"{format_bytes(result['est_activations'])}, measured {format_bytes(result['measured_activations'])}, "
                  f"ratio {result['ratio']} ({result['seconds']} s)", flush=True)
        del pipe
        gc.collect()


def refresh(csv_path: Path) -> List[Dict[str, object]]:
    """The CSV's measured rows with the estimate columns recomputed by the current code, written back."""
    measured = read_rows(csv_path)
    configs = {model: model_config(model) for model in dict.fromkeys(r["model"] for r in measured)}
    rows = [with_estimate(r, configs) for r in measured]
    write_rows(csv_path, rows)
    return rows


def plot(rows: List[Dict[str, str]], path: Path) -> None:
    """Estimated vs measured activation peak (log-log) and the ratio of every row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 0.28 * len(rows) + 3), gridspec_kw={"width_ratios": [1, 1.2]})
    measured = [int(r["measured_activations"]) / 2**20 for r in rows]
    estimated = [int(r["est_activations"]) / 2**20 for r in rows]
    for model in dict.fromkeys(r["model"] for r in rows):
        idx = [i for i, r in enumerate(rows) if r["model"] == model]
        left.scatter([measured[i] for i in idx], [estimated[i] for i in idx], label=model)
    span = [min(measured + estimated) * 0.8, max(measured + estimated) * 1.25]
    left.plot(span, span, "k-", lw=0.8, label="estimate = measured")
    left.plot(span, [2 * s for s in span], "k--", lw=0.8, label="estimate = 2 x measured")
    left.set(xscale="log", yscale="log", xlabel="measured activation peak (MiB)", ylabel="estimated (MiB)",
             title=f"sgm.inference.memory on {rows[0]['device']}")
    left.legend(fontsize=8)
    labels = [f"{r['model']} {r['dtype']} {r['width']}x{r['height']} T{r['num_frames']} dt{r['decoding_t']}" for r in rows]
    ratios = [float(r["ratio"]) for r in rows]
    right.barh(range(len(rows)), ratios, color=["tab:green" if 1 <= x <= 2 else "tab:red" for x in ratios])
    right.axvline(1, color="k", lw=0.8)
    right.axvline(2, color="k", lw=0.8, ls="--")
    right.set_yticks(range(len(rows)), labels, fontsize=7)
    right.invert_yaxis()
    right.set(xlabel="estimate / measured (activations)", title="ratio per row (target 1 to 2)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--models", default="toy,tiny", help="comma-separated: " + ", ".join(ROWS) +
                        "; empty: only recompute the estimates of the CSV's rows and redraw the plot")
    parser.add_argument("--csv", default=None, help="default docs/memory_estimate_<device>.csv")
    parser.add_argument("--plot", default=None, help="default: the CSV's path with .png")
    args = parser.parse_args(argv)
    if torch.device(args.device).type == "cpu" and not os.access("/proc/self/clear_refs", os.W_OK):
        parser.error("measuring on CPU needs a writable /proc/self/clear_refs (Linux)")
    csv_path = Path(args.csv or REPO / "docs" / f"memory_estimate_{torch.device(args.device).type}.csv")
    for model in [m for m in args.models.split(",") if m]:
        if model not in ROWS:
            parser.error(f"unknown model {model!r}; known: {', '.join(ROWS)}")
        run_model(model, args.device, csv_path)
    plot(refresh(csv_path), Path(args.plot or csv_path.with_suffix(".png")))


if __name__ == "__main__":
    main()
