"""Keep a model current: add a class, and new images, to a trained run (``imgclf train DATA --from RUN``).

    python bench/update.py [--weights W] [--seed S] [--only-new-class]

1. A third class: a SqueezeNet run (frozen, ``--head gap``, 10 epochs) on cats_and_dogs_filtered, then a folder of
   the same cats and dogs plus a class ``faces`` (the 80 happy-or-sad pictures, 64 train / 16 validation), trained
   ``--from`` the run (10 epochs). Prints the old classes' validation accuracy before and after (forgetting: the
   issue asks for at most 1 point lost), the new class's, and the update's wall time (a fresh process).
2. New images: a run on 500 of the training images (250 a class), then all 2,000 trained ``--from`` it: validation
   accuracy before and after, and the update's wall time.

Every run is the command a user types, in a fresh process, timed end to end (the backbone pass over the new folder,
calibration and the report included). Each part starts with an empty feature cache (its own ``IMGCLF_HOME``): the
parent's run is cold, and the update finds what the parent stored — the backbone runs over the pictures it had not
seen (the line it prints is shown).
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
FACES = SHARED / "datasets" / "happy-or-sad"
DEFAULT_WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


HOME: dict = {}  # IMGCLF_HOME of the part being measured: each part starts from an empty feature cache


def imgclf(*args) -> float:
    """Run ``imgclf ARGS`` in a fresh process; its wall time, and its line on the backbone pass, if any."""
    start = time.perf_counter()
    env = {**os.environ, **HOME, "COLUMNS": "300"}
    done = subprocess.run([sys.executable, "-m", "imgclf.cli", *map(str, args)], capture_output=True, text=True,
                          env=env)  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    seconds = time.perf_counter() - start
    backbone = [line for line in done.stderr.splitlines() if line.startswith("Running the frozen backbone")]
    print(f"  ({backbone[0] if backbone else 'no backbone pass: every feature was stored'})")
    return seconds


def link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.symlink_to(src.resolve())


def per_class(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {name: round(s["recall"], 4) for name, s in metrics["per_class"].items()} | {
        "accuracy": round(metrics["accuracy"], 4)
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--seed", type=int, default=0, help="training seed of every run (forgetting moves with it)")
    parser.add_argument("--only-new-class", action="store_true", help="skip the 500 → 2,000 images part")
    args = parser.parse_args()
    common = [
        "--backbone",
        "squeezenet1_1",
        "--weights",
        args.weights,
        "--head",
        "gap",
        "--epochs",
        "10",
        "--seed",
        str(args.seed),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        HOME["IMGCLF_HOME"] = str(tmp / "home-1")
        seconds = imgclf("train", CATS_DOGS, *common, "--runs-dir", tmp, "--name", "parent")
        print(f"parent (cats, dogs): {seconds:.1f} s, {per_class(tmp / 'parent')}")
        grown = tmp / "three"
        for split in ("train", "validation"):
            for name in ("cats", "dogs"):
                for path in sorted((CATS_DOGS / split / name).iterdir()):
                    link(path, grown / split / name / path.name)
        faces = sorted(FACES.glob("*/*.png"))
        for i, path in enumerate(faces):
            link(path, grown / ("validation" if i % 5 == 0 else "train") / "faces" / f"{path.parent.name}-{path.name}")
        seconds = imgclf(
            "train", grown, "--from", tmp / "parent", "--runs-dir", tmp, "--name", "updated", "--seed", args.seed
        )
        print(f"--from parent with a third class (faces): {seconds:.1f} s, {per_class(tmp / 'updated')}")
        update = tmp / "updated" / "update.json"
        if update.is_file():
            print(f"  update.json: {update.read_text()}")
        if args.only_new_class:
            return

        HOME["IMGCLF_HOME"] = str(tmp / "home-2")  # the small run's images are all this cache has seen
        small = tmp / "small-data"
        for split, count in (("train", 250), ("validation", 500)):
            for name in ("cats", "dogs"):
                for path in sorted((CATS_DOGS / split / name).iterdir())[:count]:
                    link(path, small / split / name / path.name)
        seconds = imgclf("train", small, *common, "--runs-dir", tmp, "--name", "small")
        print(f"parent on 500 images: {seconds:.1f} s, {per_class(tmp / 'small')}")
        seconds = imgclf("train", CATS_DOGS, "--from", tmp / "small", "--runs-dir", tmp, "--name", "more")
        print(f"--from it on all 2,000: {seconds:.1f} s, {per_class(tmp / 'more')}")


if __name__ == "__main__":
    main()
