"""Finding wrong labels: precision and recall of ``imgclf suspects``' method on planted label flips.

    python bench/label_errors.py [DATA] [--weights W] [--rates 0.05 0.10] [--seeds 0 1 2]

Flips ``rate`` of the labels of DATA's training and validation images at random (seeded, each to another class),
then runs the method of :mod:`imgclf.curation.suspects` — pooled SqueezeNet features (computed once; cached), out-of-
fold probabilities of a 5-fold logistic regression, cleanlab's ``find_label_issues`` ranked by self-confidence — with
and without the power normalisation, and prints, per rate and seed: how many were flagged, precision and recall of
the flagged set against the flipped files, precision of the top N (N = number flipped), and the seconds the
cross-validation and ranking took. Finally, on the data as it is (no flips): how many are flagged. The backbone pass
is timed once, cold (it is what a first `imgclf suspects` costs).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from imgclf.curation import suspects as method
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


def judge(features, noisy, flipped, normalise: bool, seed: int) -> dict:
    start = time.perf_counter()
    if normalise:
        probabilities = method.out_of_fold_probabilities(features, noisy, seed=seed)
    else:  # the same regression on the raw pooled features
        original = method.power_normalise
        method.power_normalise = lambda f: np.asarray(f, np.float64)
        try:
            probabilities = method.out_of_fold_probabilities(features, noisy, seed=seed)
        finally:
            method.power_normalise = original
    ranked = method.rank_label_issues(noisy, probabilities)
    seconds = time.perf_counter() - start
    truth, found = set(flipped.tolist()), set(ranked.tolist())
    hits = len(truth & found)
    top = set(ranked[: len(truth)].tolist())
    return {"flagged": len(found), "precision": hits / max(len(found), 1), "recall": hits / max(len(truth), 1),
            "top_n_precision": len(top & truth) / max(len(truth), 1), "seconds": seconds}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--rates", type=float, nargs="+", default=[0.05, 0.10])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    dataset = load_folder(args.data, validation_split=0.0)
    start = time.perf_counter()
    features, labels, paths, _, skipped, from_cache = method.backbone_features(dataset, "squeezenet1_1", args.weights)
    print(f"{len(paths):,} images, features {features.shape} in {time.perf_counter() - start:.1f} s "
          f"({'from the cache' if from_cache else 'cold: backbone pass'}); {len(skipped)} unreadable")  # fmt: skip
    for rate in args.rates:
        for normalise in (True, False):
            rows = []
            for seed in args.seeds:
                noisy, flipped = flip(labels, rate, dataset.num_classes, seed)
                rows.append(judge(features, noisy, flipped, normalise, seed))
            median = {k: float(np.median([r[k] for r in rows])) for k in rows[0]}
            each = "; ".join(f"seed {s}: P {r['precision']:.2f} R {r['recall']:.2f} top-N {r['top_n_precision']:.2f}"
                             for s, r in zip(args.seeds, rows))  # fmt: skip
            print(f"rate {rate:.2f} {'power-normalised' if normalise else 'raw features    '}: median precision "
                  f"{median['precision']:.3f} recall {median['recall']:.3f} top-N {median['top_n_precision']:.3f} "
                  f"flagged {median['flagged']:.0f} ({median['seconds']:.1f} s)  [{each}]")  # fmt: skip
    clean = method.rank_label_issues(labels, method.out_of_fold_probabilities(features, labels))
    print(f"as it is (no flips): {len(clean)} of {len(labels):,} flagged; first 30:")
    for i in clean[:30]:
        print(f"  {paths[i]}  filed as {dataset.class_names[labels[i]]}")


if __name__ == "__main__":
    main()
