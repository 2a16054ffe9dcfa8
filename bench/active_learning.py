"""Which pictures to label next: ``imgclf triage``'s order against random picks.

    python bench/active_learning.py [--weights W] [--seeds 5] [--rounds 5] [--budget 20]

From 10 labelled images a class of cats_and_dogs_filtered's training images, the rest of them plus 200 handwritten
digits (scikit-learn's, the foreign pictures) form an unlabelled pool. Each round the model is trained on what is
labelled, scores the pool, and ``budget`` pictures are chosen — by :func:`imgclf.curation.triage.triage_order` (unknown
ones never chosen; the out-of-distribution detector of a run, :class:`imgclf.unknown.detector.OodDetector`, fitted on
the labelled images and thresholded on the validation images at 5 % false alarms, as calibration does) or at random
— then labelled by an oracle (the true folder; a digit is a label spent for nothing). The model: SqueezeNet's pooled
features (the prototypes head's, computed once) with a logistic regression (what a trained head does) and with class
prototypes. Prints the validation accuracy after each round, mean of the seeds, both ways, and the digits spent.
Then ``imgclf triage RUN POOL --budget 20 --json`` as a user types it, on a 10-a-class prototypes run: how many
digits it calls unknown and how many it selects.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from imgclf.curation.triage import triage_order
from imgclf.data.demo import write_digits
from imgclf.data.folders import load_folder
from imgclf.data.samples import Samples
from imgclf.features.prototypes import SCALE, class_prototypes
from imgclf.unknown.detector import OodDetector, softmax

sys.path.insert(0, str(Path(__file__).parent))
from few_shot import DEFAULT_DATA, DEFAULT_WEIGHTS, head_vectors  # noqa: E402


def learner(kind: str, x: np.ndarray, y: np.ndarray):
    """``(probabilities function, kernel, bias)`` of a model trained on features ``x`` and labels ``y``."""
    if kind == "prototypes":
        kernel = SCALE * class_prototypes(x, y, 2).T
        bias = np.zeros(2, np.float32)
    else:
        from sklearn.linear_model import LogisticRegression

        lr = LogisticRegression(C=10.0, max_iter=2000).fit(x, y)
        kernel = np.concatenate([-lr.coef_, lr.coef_]).T / 2  # two softmax units with the same odds
        bias = np.concatenate([-lr.intercept_, lr.intercept_]) / 2
    return (lambda f: softmax(f @ kernel + bias)), kernel.astype(np.float32), bias.astype(np.float32)


def run(kind, strategy, train, y_train, val, y_val, digits, seed, rounds, budget) -> tuple[list[float], int]:
    rng = np.random.default_rng(seed)
    labelled = np.concatenate([rng.choice(np.flatnonzero(y_train == k), 10, replace=False) for k in (0, 1)])
    pool_x = np.concatenate([train, digits])
    pool_y = np.concatenate([y_train, np.full(len(digits), -1)])  # -1: a digit
    unlabelled = np.setdiff1d(np.arange(len(pool_x)), labelled)
    accuracies, spent = [], 0
    for _ in range(rounds + 1):
        proba, kernel, bias = learner(kind, pool_x[labelled], pool_y[labelled])
        accuracies.append(float((proba(val).argmax(axis=1) == y_val).mean()))
        if len(accuracies) > rounds:
            break
        if strategy == "triage":
            detector = OodDetector.fit(pool_x[labelled], pool_y[labelled], kernel, bias)
            detector.set_thresholds(val)
            scores = detector.scores(pool_x[unlabelled])
            _, selected = triage_order(proba(pool_x[unlabelled]), pool_x[unlabelled], detector.unknown(scores),
                                       scores, budget)  # fmt: skip
            chosen = unlabelled[selected]
        else:
            chosen = rng.choice(unlabelled, budget, replace=False)
        spent += int((pool_y[chosen] < 0).sum())
        labelled = np.concatenate([labelled, chosen[pool_y[chosen] >= 0]])
        unlabelled = np.setdiff1d(unlabelled, chosen)
    return accuracies, spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--budget", type=int, default=20)
    args = parser.parse_args()
    dataset = load_folder(DEFAULT_DATA)
    with tempfile.TemporaryDirectory() as tmp:
        digit_paths = sorted(write_digits(Path(tmp) / "digits").glob("*/*.png"))[::9][:200]
        train = head_vectors(dataset.train, 2, args.weights)
        val = head_vectors(dataset.validation, 2, args.weights)
        digits = head_vectors(Samples(tuple(map(str, digit_paths)), np.zeros(len(digit_paths), np.int32)), 2,
                              args.weights)  # fmt: skip
        y_train, y_val = np.asarray(dataset.train.labels), np.asarray(dataset.validation.labels)
        for kind in ("logistic regression", "prototypes"):
            table = {}
            for strategy in ("triage", "random"):
                results = [run(kind, strategy, train, y_train, val, y_val, digits, s, args.rounds, args.budget)
                           for s in range(args.seeds)]  # fmt: skip
                table[strategy] = (np.mean([r[0] for r in results], axis=0), np.mean([r[1] for r in results]))
            ahead = table["triage"][0] - table["random"][0]
            print(f"{kind}: labels 20 + {args.budget} a round; mean validation accuracy of {args.seeds} seeds")
            for strategy, (acc, spent) in table.items():
                print(f"  {strategy:6s} " + " ".join(f"{a:.3f}" for a in acc) + f"   digits labelled: {spent:.1f}")
            print("  triage ahead by " + " ".join(f"{d:+.3f}" for d in ahead[1:]) + " (rounds 1..)")
        # the command a user types, on a 10-a-class prototypes run with the validation images
        root = Path(tmp)
        rng = np.random.default_rng(0)
        chosen = np.concatenate([rng.choice(np.flatnonzero(y_train == k), 10, replace=False) for k in (0, 1)])
        for i in chosen:
            src = Path(dataset.train.paths[i])
            (root / "d" / "train" / src.parent.name).mkdir(parents=True, exist_ok=True)
            (root / "d" / "train" / src.parent.name / src.name).symlink_to(src.resolve())
        (root / "d" / "validation").symlink_to((DEFAULT_DATA / "validation").resolve())
        pool = root / "pool"
        pool.mkdir()
        for i in np.setdiff1d(np.arange(len(y_train)), chosen)[::10]:
            (pool / Path(dataset.train.paths[i]).name).symlink_to(Path(dataset.train.paths[i]).resolve())
        for p in digit_paths[:50]:
            (pool / f"digit-{p.parent.name}-{p.name}").symlink_to(p)
        cli = [sys.executable, "-m", "imgclf.cli"]
        subprocess.run([*cli, "train", root / "d", "--backbone", "squeezenet1_1", "--weights", args.weights,
                        "--head", "prototypes", "--runs-dir", root / "runs", "--name", "few"], check=True,
                       capture_output=True)  # fmt: skip
        out = subprocess.run([*cli, "triage", root / "runs" / "few", pool, "--budget", "20", "--json"], check=True,
                             capture_output=True, text=True).stdout  # fmt: skip
        rows = [json.loads(line) for line in out.splitlines()]
        digit_rows = [r for r in rows if Path(r["path"]).name.startswith("digit-")]
        print(f"`imgclf triage RUN POOL --budget 20`: {len(rows)} pictures, {len(digit_rows)} digits: "
              f"{sum(r['unknown'] for r in digit_rows)} called unknown, {sum(r['selected'] for r in digit_rows)} "
              f"selected; {sum(r['unknown'] for r in rows) - sum(r['unknown'] for r in digit_rows)} cats or dogs "
              "called unknown")  # fmt: skip


if __name__ == "__main__":
    main()
