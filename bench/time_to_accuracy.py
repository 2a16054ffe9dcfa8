"""Time to accuracy of each recipe on the course's dataset: wall time until the validation accuracy first reaches
0.80 and 0.85, and the final epoch's accuracy, over several seeds (median and range).

    python bench/time_to_accuracy.py                        # the fast recipe, seeds 0 1 2
    python bench/time_to_accuracy.py --recipes fast course --seeds 0
    python bench/time_to_accuracy.py --recipes fast --set epochs=60 --set learning_rate=0.003
    python bench/time_to_accuracy.py --cli                  # `imgclf train DATA --recipe R --seed S`, as typed

With ``--cli`` each run is the command a user types (``imgclf train DATA --recipe R --seed S --no-calibrate``, plus
``--set`` values as flags); epochs are timed as ``history.csv`` gains its rows, and the settings the run recorded
(``config.yaml``'s ``resolved``) are compared with what the Python API resolves for the same recipe and seed —
any difference is printed and fails the run (the CLI once trained ``--recipe fast`` without its augmentation).

Each run is its own process (as `imgclf train --recipe R --seed S` would be), timed from the process's start, so
the wall time includes importing TensorFlow, decoding the JPEGs and every validation pass; calibration is off (it
runs after training). Runs go one after the other: the 2 cores are never shared. Data:
../shared/datasets/cats_and_dogs_filtered (2,000 training, 1,000 validation images). Figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATS_AND_DOGS = ROOT / "shared" / "datasets" / "cats_and_dogs_filtered"
THRESHOLDS = (0.80, 0.85, 0.90)


def one_run(recipe: str, seed: int, data: str, overrides: dict) -> None:
    """Child process: train and print one JSON line per epoch: wall seconds since the process started."""
    start = time.time()
    import keras

    from imgclf import ImageClassifier

    class Stamp(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            row = {"epoch": epoch + 1, "wall": time.time() - start, "val_accuracy": float(logs["val_accuracy"]),
                   "accuracy": float(logs["accuracy"])}  # fmt: skip
            print("EPOCH " + json.dumps(row), flush=True)

    clf = ImageClassifier(recipe=recipe, seed=seed, calibrate=False, **overrides)
    clf.fit(data, callbacks=[Stamp()], verbose=0)
    print("DONE " + json.dumps({"wall": time.time() - start}), flush=True)


def parse_value(text: str):
    import yaml

    return yaml.safe_load(text)


def cli_run(recipe: str, seed: int, data: str, sets: list[str]) -> tuple[list[dict], list[dict], dict]:
    """``imgclf train`` in a child process; ``(rows, done, resolved)`` as :func:`measure` reads them, the epochs
    stamped when ``history.csv`` gains them (polled every 0.1 s), ``resolved`` from the run's ``config.yaml``."""
    import csv
    import tempfile

    import yaml

    flags = [a for s in sets for a in ("--" + s.split("=", 1)[0].replace("_", "-"), *s.split("=", 1)[1].split())]
    with tempfile.TemporaryDirectory() as runs:
        cmd = ["imgclf", "train", data, "--recipe", recipe, "--seed", str(seed), "--no-calibrate", "--runs-dir", runs,
               "--name", "r", *flags]  # fmt: skip
        start = time.time()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        history, rows = Path(runs) / "r" / "history.csv", []
        while proc.poll() is None:
            time.sleep(0.1)
            try:
                with open(history, newline="") as f:
                    found = list(csv.DictReader(f))
            except OSError:
                continue
            for r in found[len(rows) :]:
                rows.append({"epoch": int(r["epoch"]), "wall": time.time() - start,
                             "val_accuracy": float(r["val_accuracy"]), "accuracy": float(r["accuracy"])})  # fmt: skip
        wall, err = time.time() - start, proc.stderr.read()
        if proc.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err[-3000:]}")
        resolved = yaml.safe_load((Path(runs) / "r" / "config.yaml").read_text())["resolved"]
    return rows, [{"wall": wall}], resolved


def api_resolved(recipe: str, seed: int, overrides: dict) -> dict:
    """What ``ImageClassifier(recipe=..., seed=...)`` resolves to, recorded as a run records it."""
    from imgclf import ImageClassifier
    from imgclf.runs.record import RunConfig

    clf = ImageClassifier(recipe=recipe, seed=seed, calibrate=False, **overrides)
    resolved = clf.resolve_settings()
    class_mode = "binary"  # two classes (cats_and_dogs_filtered)
    return json.loads(json.dumps(RunConfig.of(clf.get_params(), ["a", "b"], resolved, class_mode, None, "").resolved))


def measure(recipe: str, seed: int, data: str, sets: list[str], cli: bool = False) -> dict:
    if cli:
        rows, done, resolved = cli_run(recipe, seed, data, sets)
        overrides = {k: parse_value(v) for k, v in (s.split("=", 1) for s in sets)}
        expected = api_resolved(recipe, seed, overrides)
        diff = {k: (resolved.get(k), v) for k, v in expected.items() if resolved.get(k) != v}
        if diff:
            raise SystemExit(f"imgclf train --recipe {recipe} resolved differently from the API: {diff}")
        print(f"{recipe} seed {seed}: the CLI resolved every setting as the API does "
              f"(augment {resolved.get('augment')})", flush=True)  # fmt: skip
    else:
        cmd = [sys.executable, __file__, "--child", recipe, str(seed), "--data", data] + [
            a for s in sets for a in ("--set", s)
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        rows = [json.loads(line[6:]) for line in proc.stdout.splitlines() if line.startswith("EPOCH ")]
        done = [json.loads(line[5:]) for line in proc.stdout.splitlines() if line.startswith("DONE ")]
        if proc.returncode != 0 or not rows:
            raise SystemExit(f"{recipe} seed {seed} failed:\n{proc.stderr[-3000:]}")
    first = {t: next((r["wall"] for r in rows if r["val_accuracy"] >= t), None) for t in THRESHOLDS}
    epoch_seconds = [b["wall"] - a["wall"] for a, b in zip(rows, rows[1:])]
    return {"recipe": recipe, "seed": seed, "epochs": len(rows), "final": rows[-1]["val_accuracy"],
            "best": max(r["val_accuracy"] for r in rows), "first": first, "train_final": rows[-1]["accuracy"],
            "wall": done[0]["wall"] if done else rows[-1]["wall"],
            "epoch_s": statistics.median(epoch_seconds) if epoch_seconds else rows[0]["wall"],
            "history": [(r["epoch"], round(r["wall"], 1), round(r["val_accuracy"], 4)) for r in rows]}  # fmt: skip


def spread(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "never"
    med = statistics.median(values)
    return f"{med:.3f} ({min(values):.3f}-{max(values):.3f})" if isinstance(med, float) and med < 1.5 else (
        f"{med / 60:.1f} min ({min(values) / 60:.1f}-{max(values) / 60:.1f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=["fast"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--data", default=str(CATS_AND_DOGS))
    parser.add_argument("--set", action="append", default=[], help="SETTING=VALUE (YAML) overriding the recipe")
    parser.add_argument("--child", nargs=2, metavar=("RECIPE", "SEED"), help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write every run's figures to this file")
    parser.add_argument("--cli", action="store_true", help="run `imgclf train --recipe R --seed S` as a user types it")
    args = parser.parse_args()
    overrides = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.set)}
    if "target_size" in overrides:
        overrides["target_size"] = tuple(overrides["target_size"])
    if args.child:
        one_run(args.child[0], int(args.child[1]), args.data, overrides)
        return
    results = []
    for recipe in args.recipes:
        for seed in args.seeds:
            r = measure(recipe, seed, args.data, args.set, cli=args.cli)
            results.append(r)
            reached = ", ".join(f"{t:.2f}: {'never' if w is None else f'{w:.0f} s'}" for t, w in r["first"].items())
            print(f"{recipe} seed {seed}: final {r['final']:.4f} (best {r['best']:.4f}) after {r['epochs']} "
                  f"epochs, {r['wall']:.0f} s wall, {r['epoch_s']:.1f} s/epoch; first reached {reached}",
                  flush=True)  # fmt: skip
    print("\n| recipe | seeds | final-epoch val accuracy | best | time to 0.80 | time to 0.85 | wall | s/epoch |")
    print("|---|---|---|---|---|---|---|---|")
    for recipe in args.recipes:
        rs = [r for r in results if r["recipe"] == recipe]
        t80 = [r["first"][0.80] for r in rs]
        t85 = [r["first"][0.85] for r in rs]
        reached85 = sum(t is not None for t in t85)
        print(f"| {recipe} | {len(rs)} | {spread([r['final'] for r in rs])} | {spread([r['best'] for r in rs])} | "
              f"{spread(t80)} | {spread(t85)} ({reached85}/{len(rs)}) | {spread([r['wall'] for r in rs])} | "
              f"{statistics.median(r['epoch_s'] for r in rs):.1f} |")  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
