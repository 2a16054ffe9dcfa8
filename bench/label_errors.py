"""Finding wrong labels: precision and recall of ``imgclf suspects``' method on planted label flips.

    python bench/label_errors.py [DATA] [--weights W] [--rates 0.05 0.10] [--seeds 0 1 2] [--sheet PNG]

Flips ``rate`` of the labels of DATA's training and validation images at random (seeded, each to another class),
then judges them three ways and prints, per rate, the median over seeds of: how many were flagged, precision and
recall of the flagged set against the flipped files, precision of the top N (N = number flipped), and the seconds
the cross-validation and ranking took:

- ``chosen``: the method of :mod:`imgclf.curation.suspects` — SqueezeNet's cut-layer maps pooled by mean and max,
  averaged over the image and its mirror, power-normalised, out-of-fold probabilities of a 5-fold logistic
  regression (C = 3) averaged over 3 cross-validations with other folds, cleanlab's ``find_label_issues`` ranked by
  self-confidence;
- ``one CV``: the same from one cross-validation;
- ``mean, C=1``: the first method (mean pooling of the image alone, power-normalised, C = 1);
- ``mean, raw``: the same without the power normalisation.

Then, on the data as it is (no flips): how many are flagged, and the 30 images of lowest self-confidence (``--sheet``
draws them). Finally the command a user types, ``imgclf suspects DATA --weights W --json``, timed end to end from a
cold feature cache (a fresh ``IMGCLF_HOME``) and warm, and checked to flag what the API flags.
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

import numpy as np

from imgclf.curation import suspects as method
from imgclf.curation.sheet import contact_sheet
from imgclf.curation.suspects import Suspect
from imgclf.data.folders import load_folder

SHARED = Path(__file__).resolve().parents[2] / "shared"
DEFAULT_DATA = SHARED / "datasets" / "cats_and_dogs_filtered"
DEFAULT_WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def flip(labels: np.ndarray, rate: float, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), round(rate * len(labels)), replace=False)
    noisy = labels.copy()
    noisy[chosen] = (labels[chosen] + rng.integers(1, num_classes, len(chosen))) % num_classes
    return noisy, chosen


def judge(features, noisy, flipped, seed: int, normalise=True, c: float = method.C, repeats=method.REPEATS) -> dict:
    start = time.perf_counter()
    original = method.power_normalise, method.C
    method.C = c
    if not normalise:  # the same regression on the raw pooled features
        method.power_normalise = lambda f: np.asarray(f, np.float64)
    try:
        probabilities = method.out_of_fold_probabilities(features, noisy, seed=seed, repeats=repeats)
    finally:
        method.power_normalise, method.C = original
    ranked = method.rank_label_issues(noisy, probabilities)
    seconds = time.perf_counter() - start
    truth, found = set(flipped.tolist()), set(ranked.tolist())
    hits = len(truth & found)
    top = set(ranked[: len(truth)].tolist())
    return {"flagged": len(found), "precision": hits / max(len(found), 1), "recall": hits / max(len(truth), 1),
            "top_n_precision": len(top & truth) / max(len(truth), 1), "seconds": seconds}  # fmt: skip


def mean_pooled_features(dataset, weights) -> np.ndarray:
    """The first method's features: the cut layer's maps averaged over height and width, the image alone."""
    import keras

    from imgclf.features.extract import extract_features
    from imgclf.pipeline.skipped import SkippedFiles
    from imgclf.pipeline.sources import samples_dataset

    build, image, _ = method.backbone_judge("squeezenet1_1", weights, dataset.num_classes)
    extractor = build()
    pooled = keras.Model(extractor.inputs, keras.layers.GlobalAveragePooling2D()(extractor.outputs[0]))
    parts = [s for s in (dataset.train, dataset.validation) if s is not None]
    return np.concatenate([extract_features(pooled, samples_dataset(s, image=image, class_mode="sparse",
                           num_classes=dataset.num_classes, batch_size=32, cache="none", skipped=SkippedFiles()))[0]
                           for s in parts])  # fmt: skip


def cli_seconds(data: Path, weights: Path, home: Path) -> tuple[float, list[str]]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "imgclf.cli", "suspects", str(data), "--weights", str(weights),
                           "--json", "--top", "0"], capture_output=True, text=True, check=True,
                          env={**os.environ, "IMGCLF_HOME": str(home)})  # fmt: skip
    return time.perf_counter() - start, [json.loads(line)["path"] for line in done.stdout.splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--sheet", type=Path, help="draw the 30 lowest self-confidence images of the clean data")
    args = parser.parse_args()
    dataset = load_folder(args.data, validation_split=0.0)
    start = time.perf_counter()
    features, labels, paths, splits, skipped, from_cache = method.backbone_features(dataset, "squeezenet1_1",
                                                                                    args.weights)  # fmt: skip
    print(f"{len(paths):,} images, features {features.shape} in {time.perf_counter() - start:.1f} s "
          f"({'from the cache' if from_cache else 'cold: two backbone passes'}); "
          f"{len(skipped)} unreadable")  # fmt: skip
    mean = mean_pooled_features(dataset, args.weights)
    variants = {"chosen": (features, True, method.C, method.REPEATS), "one CV": (features, True, method.C, 1),
                "mean, C=1": (mean, True, 1.0, 1), "mean, raw": (mean, False, 1.0, 1)}  # fmt: skip
    for rate in args.rates:
        for name, (f, normalise, c, repeats) in variants.items():
            rows = []
            for seed in args.seeds:
                noisy, flipped = flip(labels, rate, dataset.num_classes, seed)
                rows.append(judge(f, noisy, flipped, seed, normalise, c, repeats))
            median = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
            each = "; ".join(f"seed {s}: P {r['precision']:.2f} R {r['recall']:.2f} top-N {r['top_n_precision']:.2f}"
                             for s, r in zip(args.seeds, rows))  # fmt: skip
            print(f"rate {rate:.2f} {name:10s}: median precision {median['precision']:.3f} recall "
                  f"{median['recall']:.3f} top-N {median['top_n_precision']:.3f} flagged {median['flagged']:.0f} "
                  f"({median['seconds']:.1f} s)  [{each}]")  # fmt: skip
    probabilities = method.out_of_fold_probabilities(features, labels)
    clean = method.rank_label_issues(labels, probabilities)
    confidence = probabilities[np.arange(len(labels)), labels]
    lowest = np.argsort(confidence)[:30]
    print(f"as it is (no flips): {len(clean)} of {len(labels):,} flagged; the 30 of lowest self-confidence:")
    names = dataset.class_names
    rows = [Suspect(paths[i], splits[i], names[labels[i]], names[int(probabilities[i].argmax())], float(confidence[i]))
            for i in lowest]  # fmt: skip
    for r in rows:
        print(f"  {r.path}  filed as {r.label}, {r.confidence:.3f}")
    if args.sheet:
        contact_sheet(rows, args.sheet, 30, "cats_and_dogs_filtered: the 30 of lowest self-confidence")
    with tempfile.TemporaryDirectory() as home:
        cold, flagged = cli_seconds(args.data, args.weights, Path(home))
        warm, again = cli_seconds(args.data, args.weights, Path(home))
    api = [paths[i] for i in clean]
    same = "the same as the API" if flagged == api == again else "NOT the same as the API"
    print(f"`imgclf suspects DATA --json`: {cold:.1f} s cold, {warm:.1f} s warm (wall, with the import); flags "
          f"{len(flagged)}, {same}")  # fmt: skip


if __name__ == "__main__":
    main()
