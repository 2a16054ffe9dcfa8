"""How much accuracy a model loses on photos unlike its training images: the validation images re-encoded at
128x128 pixels, JPEG quality 75 (a proxy for photos from another camera or a messaging app), against the
validation images themselves.

    python bench/outside_images.py                               # trains the configurations below, then scores
    python bench/outside_images.py --only squeezenet-nearest squeezenet-bilinear
    python bench/outside_images.py --runs runs/a runs/b          # scores existing run folders instead

Configurations: SqueezeNet frozen with a pooled head, 10 epochs (recipe ``squeezenet``, weights from
../shared/weights), resizing with ``nearest`` (imgclf's old default) or antialiased ``bilinear`` (the backbone
default now); and the from-scratch ``fast`` recipe. Data: ../shared/datasets/cats_and_dogs_filtered. Figures in
bench/README.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
CATS_AND_DOGS = ROOT / "shared" / "datasets" / "cats_and_dogs_filtered"
SQUEEZENET = ROOT / "shared" / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
SIZE, QUALITY = (128, 128), 75
CONFIGS = {
    "squeezenet-nearest": dict(recipe="squeezenet", weights=str(SQUEEZENET), interpolation="nearest"),
    "squeezenet-bilinear": dict(recipe="squeezenet", weights=str(SQUEEZENET)),
    "squeezenet-box": dict(recipe="squeezenet", weights=str(SQUEEZENET), interpolation="box"),
    "squeezenet-lanczos": dict(recipe="squeezenet", weights=str(SQUEEZENET), interpolation="lanczos"),
    "fast": dict(recipe="fast"),
}


def reencode(validation: Path, out: Path) -> Path:
    """Every ``validation/<class>/<image>`` resized to :data:`SIZE` (Pillow's antialiased bilinear) and saved as
    JPEG at :data:`QUALITY` into ``out/<class>/``."""
    for path in sorted(validation.glob("*/*")):
        target = out / path.parent.name / (path.stem + ".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            im.convert("RGB").resize(SIZE, Image.Resampling.BILINEAR).save(target, quality=QUALITY)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=CATS_AND_DOGS)
    parser.add_argument(
        "--only", nargs="+", choices=sorted(CONFIGS), default=["squeezenet-nearest", "squeezenet-bilinear", "fast"]
    )
    parser.add_argument("--runs", nargs="+", type=Path, help="score these run folders instead of training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target-size", nargs=2, type=int, help="train every configuration at this size instead")
    args = parser.parse_args()
    from imgclf import ImageClassifier

    with tempfile.TemporaryDirectory() as tmp:
        outside = reencode(args.data / "validation", Path(tmp) / "outside")
        models = []
        if args.runs:
            models = [(str(run), ImageClassifier.load(run), None) for run in args.runs]
        else:
            for name in args.only:
                start = time.perf_counter()
                size = {"target_size": tuple(args.target_size)} if args.target_size else {}
                clf = ImageClassifier(seed=args.seed, calibrate=False, **CONFIGS[name], **size)
                clf.fit(args.data, verbose=0)
                models.append((f"{name} {clf.target_size_[0]}x{clf.target_size_[1]}", clf, time.perf_counter() - start))
        print("\n| model | resize | validation accuracy | re-encoded 128 px, JPEG q75 | drop (points) | training |")
        print("|---|---|---|---|---|---|")
        for name, clf, seconds in models:
            inside = clf.evaluate(args.data)["accuracy"]
            other = clf.evaluate(outside)["accuracy"]
            took = f"{seconds:.0f} s" if seconds is not None else "-"
            print(f"| {name} | {clf.interpolation_} | {inside:.4f} | {other:.4f} | {100 * (inside - other):.1f} | "
                  f"{took} |", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
