"""What ``--distribute`` costs and gives on one machine: course_small on cats_and_dogs_filtered, one process against
``mirrored`` (two logical CPU devices) and ``multi-worker`` (two processes on 127.0.0.1).

On a 2-core machine none of these is faster — the replicas share the same two cores — so this measures the overhead
of the distributed loop and its collective operations, and checks that the three reach the same accuracy.

Run: ``python bench/distribute.py [--epochs 3] [--data ../shared/datasets/cats_and_dogs_filtered]``; prints a JSON line
per set-up (epoch seconds, final loss and validation accuracy, wall seconds including TensorFlow's start-up).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "cats_and_dogs_filtered"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(data: Path, runs: Path, name: str, epochs: int, distribute: str, extra=()) -> subprocess.Popen:
    command = [sys.executable, "-m", "imgclf", "train", str(data), "--runs-dir", str(runs), "--name", name,
               "--epochs", str(epochs), "--no-calibrate", "--distribute", distribute, *extra]  # fmt: skip
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def report(setup: str, run: Path, start: float, procs) -> None:
    errors = [p.communicate()[1] for p in procs]
    if any(p.returncode for p in procs):
        print(json.dumps({"setup": setup, "failed": [e[-500:] for e in errors]}))
        return
    with open(run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    print(json.dumps({
        "setup": setup, "epoch_seconds": [round(float(r["seconds"]), 1) for r in rows],
        "loss": round(float(rows[-1]["loss"]), 4), "val_accuracy": round(float(rows[-1]["val_accuracy"]), 4),
        "wall_seconds": round(time.perf_counter() - start, 1),
    }), flush=True)  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    runs = Path(tempfile.mkdtemp(prefix="imgclf-distribute-"))
    for setup in ("none", "mirrored"):
        start = time.perf_counter()
        report(setup, runs / setup, start, [train(args.data, runs, setup, args.epochs, setup)])
    workers = f"127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    start = time.perf_counter()
    procs = [train(args.data, runs, "multi-worker", args.epochs, "multi-worker",
                   ["--workers", workers, "--worker-index", str(i)]) for i in (0, 1)]  # fmt: skip
    report("multi-worker (2 processes)", runs / "multi-worker", start, procs)


if __name__ == "__main__":
    main()
