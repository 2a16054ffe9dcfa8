"""Cached backbone features: epoch time of a frozen backbone + head, with and without the cache.

    python bench/cached_features.py [DATA] [--backbone squeezenet1_1] [--weights PATH] [--epochs 3]

Without the cache every epoch runs the frozen backbone over every image; with it the backbone runs once
(before the first epoch) and the epochs train only the head. Target (issue 6): epochs after the first
>= 20x faster with the cache.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from imgclf import ImageClassifier

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_DATA = SHARED / "datasets" / "cats_and_dogs_filtered"
DEFAULT_WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--backbone", default="squeezenet1_1")
    parser.add_argument("--weights", default=str(DEFAULT_WEIGHTS))
    parser.add_argument("--head", default="gap")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    results = {}
    for cached in (True, False):
        clf = ImageClassifier(backbone=args.backbone, weights=args.weights, head=args.head, epochs=args.epochs,
                              cache_features=cached)  # fmt: skip
        start = time.perf_counter()
        clf.fit(args.data, verbose=0)
        total = time.perf_counter() - start
        seconds = [r["seconds"] for r in clf.history_]
        later = sorted(seconds[1:])[len(seconds[1:]) // 2] if len(seconds) > 1 else seconds[0]
        results[cached] = later
        accuracy = clf.history_[-1]["val_accuracy"]
        print(f"cache_features={cached!s:5}  epochs [{', '.join(f'{s:.2f}' for s in seconds)}] s  "
              f"median later epoch {later:.2f} s  total {total:.1f} s  val_accuracy {accuracy:.3f}")  # fmt: skip
    print(f"epochs after the first: {results[False] / results[True]:.0f}x faster with cached features")


if __name__ == "__main__":
    main()
