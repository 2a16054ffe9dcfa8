"""Time to a good model, phase by phase, as a user types it (issue 27).

    python bench/time_to_model.py [--weights W] [--repeats N] [--precision P]

Runs ``imgclf train cats_and_dogs_filtered --backbone squeezenet1_1 --weights W`` (the defaults otherwise) in a fresh
process, twice in a row per repeat: **cold** (an empty feature cache: a new ``IMGCLF_HOME``) and **warm** (the same
home again: the backbone's features come from the disk cache). Each stderr line is stamped as it arrives, and the
phases are read from the lines the command prints:

- start: process start → ``Found N training images`` (Python, TensorFlow and Keras imports, listing the folder,
  hashing it for the feature key);
- backbone: → the end of the first epoch (decoding every image and one backbone pass when cold; loading the cached
  features when warm; building the model and compiling the head either way);
- head epochs: the first epoch's end → the last epoch's end;
- calibration: → ``Diagnosis:`` (temperature, out-of-distribution detector, ``model.keras``, the rehearsal set);
- report: → ``Run saved`` (evaluation, pictures, ``report.html``);
- exit: → the process ends.

Prints one table and the validation accuracy of each run (``metrics.json``), which must be at least 0.97.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
CATS_DOGS = SHARED / "datasets" / "cats_and_dogs_filtered"
DEFAULT_WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
PHASES = ("start", "backbone", "head epochs", "calibration", "report", "exit")


def timed_train(home: Path, runs: Path, weights: Path, flags: tuple = ()) -> tuple[dict, float]:
    """``(phase seconds, validation accuracy)`` of one ``imgclf train`` in a fresh process."""
    env = {**os.environ, "IMGCLF_HOME": str(home), "COLUMNS": "300"}  # one line per message: no wrapping
    command = [sys.executable, "-m", "imgclf.cli", "train", str(CATS_DOGS), "--backbone", "squeezenet1_1",
               "--weights", str(weights), "--runs-dir", str(runs), *flags]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    marks, lines = {}, []
    for line in proc.stderr:
        now = time.perf_counter() - start
        lines.append(line)
        if line.startswith("Found") and "training images" in line:
            marks.setdefault("start", now)
        elif line.startswith("Epoch "):
            marks.setdefault("first epoch", now)
            marks["last epoch"] = now
        elif line.startswith("Diagnosis:"):
            marks["calibrated"] = now
        elif line.startswith("Run saved"):
            marks["reported"] = now
    if proc.wait():
        raise SystemExit("".join(lines[-30:]))
    end = time.perf_counter() - start
    bounds = [0.0, marks["start"], marks["first epoch"], marks["last epoch"], marks["calibrated"], marks["reported"],
              end]  # fmt: skip
    phases = {name: b - a for name, a, b in zip(PHASES, bounds, bounds[1:])}
    phases["total"] = end
    run = max(runs.iterdir(), key=lambda p: p.stat().st_mtime)
    return phases, json.loads((run / "metrics.json").read_text())["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--precision", action="append", default=None,
                        help="run with --precision P (repeat the option to compare; default: the command's own default)")
    args = parser.parse_args()
    rows = []
    for repeat in range(args.repeats):
        for precision in args.precision or [None]:
            flags = ("--precision", precision) if precision else ()
            with tempfile.TemporaryDirectory() as tmp:
                home, runs = Path(tmp) / "home", Path(tmp) / "runs"
                for kind in ("cold", "warm"):
                    phases, accuracy = timed_train(home, runs, args.weights, flags)
                    rows.append((f"{kind} #{repeat + 1} {precision or 'default'}", phases, accuracy))
    print(f"{'run':26}" + "".join(f"{p:>13}" for p in (*PHASES, "total")) + f"{'val acc':>10}")
    for name, phases, accuracy in rows:
        print(f"{name:26}" + "".join(f"{phases[p]:12.1f}s" for p in (*PHASES, "total")) + f"{accuracy:10.3f}")


if __name__ == "__main__":
    main()
