"""How much accuracy a model loses on photos unlike its training images: the validation images re-encoded at
128x128 pixels, JPEG quality 75 (a proxy for photos from another camera or a messaging app), against the
validation images themselves; also at 96 px (quality 75) and at 128 px quality 50, the same kind of change further
than the first (a model trained for the first alone would not gain on these).

    python bench/outside_images.py                               # trains the configurations below, then scores
    python bench/outside_images.py --only squeezenet --seeds 0 1 2
    python bench/outside_images.py --only squeezenet-v1-bilinear --set target_size=[160,160] --set epochs=15
    python bench/outside_images.py --runs runs/a runs/b          # scores existing run folders instead

Configurations: the recipe ``squeezenet`` as shipped (version 2: frozen SqueezeNet, pooled head, 20 epochs on
flipped, downscaled and JPEG-compressed copies; weights from ../shared/weights); its version 1 (10 epochs, no
augmentation, so features are cached) resizing with ``nearest`` (imgclf's old default), antialiased ``bilinear``
(the backbone default now), ``box`` or ``lanczos``; and the from-scratch ``fast`` recipe. Data:
../shared/datasets/cats_and_dogs_filtered. Figures in bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CATS_AND_DOGS = ROOT / "shared" / "datasets" / "cats_and_dogs_filtered"
SQUEEZENET = ROOT / "shared" / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: ``(pixels, JPEG quality)`` of each re-encoding; the first is the one the drop is reported for.
OUTSIDE = ((128, 75), (96, 75), (128, 50))
V1 = dict(recipe="squeezenet", weights=str(SQUEEZENET), epochs=10, augment="none")  # the recipe's version 1
CONFIGS = {
    "squeezenet": dict(recipe="squeezenet", weights=str(SQUEEZENET)),
    "squeezenet-v1-nearest": dict(V1, interpolation="nearest"),
    "squeezenet-v1-bilinear": dict(V1, interpolation="bilinear"),
    "squeezenet-v1-box": dict(V1, interpolation="box"),
    "squeezenet-v1-lanczos": dict(V1, interpolation="lanczos"),
    "fast": dict(recipe="fast"),
}


def reencode(validation: Path, out: Path, pixels: int = 128, quality: int = 75) -> Path:
    """Every ``validation/<class>/<image>`` resized to ``pixels`` x ``pixels`` (Pillow's antialiased bilinear) and
    saved as JPEG at ``quality`` into ``out/<class>/``."""
    for path in sorted(validation.glob("*/*")):
        target = out / path.parent.name / (path.stem + ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            im.convert("RGB").resize((pixels, pixels), Image.Resampling.BILINEAR).save(target, quality=quality)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CATS_AND_DOGS)
    parser.add_argument(
        "--only",
        nargs="+",
        choices=sorted(CONFIGS),
        default=["squeezenet", "squeezenet-v1-nearest", "squeezenet-v1-bilinear", "fast"],
    )
    parser.add_argument("--runs", nargs="+", type=Path, help="score these run folders instead of training")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--set", action="append", default=[], help="SETTING=VALUE (YAML) for every configuration")
    args = parser.parse_args()
    from imgclf import ImageClassifier

    with tempfile.TemporaryDirectory() as tmp:
        outside = [reencode(args.data / "validation", Path(tmp) / f"{p}-q{q}", p, q) for p, q in OUTSIDE]
        names = [f"{p} px, q{q}" for p, q in OUTSIDE]
        head = f"| model | seed | resize | validation | {' | '.join(names)} | drop at {names[0]} (points) | training |"
        print("\n" + head)
        print("|---|---|---|---|" + "---|" * len(OUTSIDE) + "---|---|", flush=True)
        runs = [(str(run), None, lambda run=run: ImageClassifier.load(run)) for run in args.runs or []]
        size = {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)}
        if "target_size" in size:
            size["target_size"] = tuple(size["target_size"])

        def train(name: str, seed: int):
            return ImageClassifier(seed=seed, calibrate=False, **{**CONFIGS[name], **size}).fit(args.data, verbose=0)

        runs += [(name, seed, functools.partial(train, name, seed))
                 for name in ([] if args.runs else args.only) for seed in args.seeds]  # fmt: skip
        for name, seed, make in runs:
            start = time.perf_counter()
            clf = make()
            took = f"{time.perf_counter() - start:.0f} s" if seed is not None else "-"
            inside = clf.evaluate(args.data)["accuracy"]
            others = [clf.evaluate(folder)["accuracy"] for folder in outside]
            print(f"| {name} {clf.target_size_[0]}x{clf.target_size_[1]} | {seed if seed is not None else '-'} | "
                  f"{clf.interpolation_} | {inside:.3f} | {' | '.join(f'{o:.3f}' for o in others)} | "
                  f"{100 * (inside - others[0]):.1f} | {took} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
