#!/usr/bin/env python
"""Throughput of a sweep job spread over processes (sgm.inference.engine), on the toy model.

    python scripts/benchmarks/bench_distributed.py [--items 16] [--repeats 2] [--out docs]

Runs scripts/sampling/sweep.py as a real command on one image of the shipped toy model, --items
seeds (one item per seed: 8 frames, 16 steps, 64x64), in each layout:
  cpu 1x2   one process with 2 threads (OMP_NUM_THREADS=2; the scripts without Lightning's flags)
  cpu 2x1   two processes with 1 thread each (--accelerator cpu --devices 2, OMP_NUM_THREADS=1)
  cuda 1    one GPU, and cuda N all N GPUs (--accelerator cuda --devices N), when CUDA has 2 or more
The layouts run round-robin --repeats times, each into a fresh folder. Per run: the command's wall
time (start-up, model loads and collect included) and the steady throughput, measured from the item
files: (items - P) / (last item written - P-th item written) for P processes, which leaves out
start-up and each process's first item. Prints the table (medians) with the ratio to the first
layout, and writes bench_distributed_<cpu|cuda>.csv to --out.
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

import torch

REPO = Path(__file__).resolve().parents[2]
SWEEP = REPO / "scripts" / "sampling" / "sweep.py"
IMAGE = REPO / "assets" / "toy_image.png"


def layouts() -> Dict[str, dict]:
    """name -> {"env": thread settings, "flags": launch flags, "processes": P}."""
    out = {"cpu 1x2": {"env": {"OMP_NUM_THREADS": "2"}, "flags": ["--device", "cpu"], "processes": 1},
           "cpu 2x1": {"env": {"OMP_NUM_THREADS": "1"}, "flags": ["--accelerator", "cpu", "--devices", "2"], "processes": 2}}
    gpus = torch.cuda.device_count()
    if gpus >= 2:
        out["cuda 1"] = {"env": {}, "flags": ["--accelerator", "cuda", "--devices", "1"], "processes": 1}
        out[f"cuda {gpus}"] = {"env": {}, "flags": ["--accelerator", "cuda", "--devices", str(gpus)], "processes": gpus}
    return out


def run_once(layout: dict, items: int, folder: Path) -> dict:
    """One run of the job into `folder`: wall seconds, steady items per second."""
    seeds = ",".join(str(seed) for seed in range(1, items + 1))
    command = [sys.executable, str(SWEEP), "--input_path", str(IMAGE), "--version", "toy_svd", "--seed", seeds,
               "--output_folder", str(folder), *layout["flags"]]
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **layout["env"]}
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"error: {' '.join(command)} failed: {done.stderr.strip().splitlines()[-1:]}")
    written = sorted(p.stat().st_mtime for p in folder.glob("cell_*.json"))
    assert len(written) == items, f"{len(written)} items written of {items}"
    p = layout["processes"]
    steady = (items - p) / (written[-1] - written[p - 1])
    return {"wall_s": wall, "items_per_s": items / wall, "steady_items_per_s": steady}


def main(argv: List[str] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--items", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="docs")
    args = parser.parse_args(argv)
    if args.items < 4 or args.repeats < 1:
        raise SystemExit("error: --items must be at least 4 and --repeats at least 1")
    runs: Dict[str, List[dict]] = {name: [] for name in layouts()}
    work = Path(tempfile.mkdtemp(prefix="bench-distributed-"))
    try:
        for repeat in range(args.repeats):
            for name, layout in layouts().items():
                folder = work / f"{name.replace(' ', '_')}_{repeat}"
                runs[name].append(run_once(layout, args.items, folder))
                print(f"{name} run {repeat + 1}: {runs[name][-1]['wall_s']:.1f} s", flush=True)
    finally:
        shutil.rmtree(work)
    rows = []
    first = None
    for name, results in runs.items():
        row = {"layout": name, "items": args.items, "repeats": args.repeats,
               **{key: statistics.median(r[key] for r in results) for key in ("wall_s", "items_per_s", "steady_items_per_s")}}
        first = first or row
        row["ratio_items_per_s"] = row["items_per_s"] / first["items_per_s"]
        row["ratio_steady"] = row["steady_items_per_s"] / first["steady_items_per_s"]
        rows.append(row)
    print(f"{'layout':10s} {'wall s':>8s} {'items/s':>8s} {'ratio':>6s} {'steady/s':>9s} {'ratio':>6s}")
    for r in rows:
        print(f"{r['layout']:10s} {r['wall_s']:8.1f} {r['items_per_s']:8.2f} {r['ratio_items_per_s']:6.2f} "
              f"{r['steady_items_per_s']:9.2f} {r['ratio_steady']:6.2f}")
    path = Path(args.out) / f"bench_distributed_{'cuda' if len(rows) > 2 else 'cpu'}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()} for r in rows)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
