"""Evaluation metrics against scikit-learn on a known case, and the worst-mistake ranking."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from imgclf.evaluation.metrics import classification_metrics, most_confused, top_losses

LABELS = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
PROBA = np.array(
    [
        [0.8, 0.1, 0.1],  # right
        [0.2, 0.7, 0.1],  # 0 → 1
        [0.6, 0.3, 0.1],  # right
        [0.1, 0.8, 0.1],  # right
        [0.1, 0.2, 0.7],  # 1 → 2
        [0.1, 0.1, 0.8],  # right
        [0.05, 0.9, 0.05],  # 2 → 1, very sure: the worst
        [0.2, 0.2, 0.6],  # right
        [0.1, 0.6, 0.3],  # 2 → 1
    ]
)
NAMES = ("cat", "dog", "fox")


def test_matches_scikit_learn():
    m = classification_metrics(LABELS, PROBA, NAMES)
    predicted = PROBA.argmax(axis=1)
    assert m["confusion_matrix"] == confusion_matrix(LABELS, predicted).tolist() == [[2, 1, 0], [0, 1, 1], [0, 2, 2]]
    p, r, f, s = precision_recall_fscore_support(LABELS, predicted, zero_division=0)
    for i, name in enumerate(NAMES):
        got = m["per_class"][name]
        assert got["precision"] == pytest.approx(p[i]) and got["recall"] == pytest.approx(r[i])
        assert got["f1"] == pytest.approx(f[i]) and got["support"] == s[i]
    assert m["accuracy"] == pytest.approx(5 / 9)
    assert m["loss"] == pytest.approx(-np.mean(np.log(PROBA[np.arange(9), LABELS])))
    assert "binary" not in m


def test_most_confused_order():
    cm = confusion_matrix(LABELS, PROBA.argmax(axis=1))
    pairs = most_confused(cm, list(NAMES))
    assert pairs[0] == {"true": "fox", "predicted": "dog", "count": 2}
    assert {(p["true"], p["predicted"]) for p in pairs} == {("fox", "dog"), ("cat", "dog"), ("dog", "fox")}


def test_top_losses_are_mistakes_worst_first():
    order = top_losses(LABELS, PROBA, count=10)
    assert list(order) == [6, 1, 4, 8]  # p(true) 0.05, 0.2, 0.2, 0.3
    assert list(top_losses(LABELS, PROBA, count=2, mistakes_only=False)) == [6, 1]


def test_binary_curves():
    labels = np.array([0, 0, 1, 1, 1, 0])
    p1 = np.array([0.1, 0.6, 0.7, 0.9, 0.4, 0.2])
    m = classification_metrics(labels, np.stack([1 - p1, p1], axis=1), ("neg", "pos"))
    assert m["binary"]["roc_auc"] == pytest.approx(roc_auc_score(labels, p1))
    assert m["binary"]["threshold"] == 0.5
    assert 0 < m["binary"]["best_f1_threshold"] <= 0.9


def test_a_thousand_classes_give_a_bounded_confusion_matrix_picture_and_table(tmp_path, capsys):
    import resource

    from PIL import Image

    from imgclf.cli._common import print_metrics
    from imgclf.evaluation.interpretation import MAX_PLOTTED_CLASSES, Interpretation, most_confused_classes

    k, n = 1000, 3000
    rng = np.random.default_rng(0)
    labels = np.arange(n) % k
    proba = np.full((n, k), 0.1 / (k - 1), np.float32)
    predicted = np.where(rng.random(n) < 0.8, labels, rng.integers(0, k, n))
    predicted[labels == 7] = 3  # class 7 is always taken for class 3: the most confused pair
    proba[np.arange(n), predicted] = 0.9
    interp = Interpretation(tuple(f"class_{i:04d}" for i in range(k)), tuple(map(str, range(n))), labels, proba)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    path = interp.plot_confusion_matrix(tmp_path / "cm.png")
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    width, height = Image.open(path).size
    assert width < 3000 and height < 3000 and grown_mb < 500  # was ~19 GB and killed
    keep = most_confused_classes(interp.metrics["confusion_matrix"], MAX_PLOTTED_CLASSES)
    assert len(keep) == MAX_PLOTTED_CLASSES and {3, 7} <= set(keep)
    print_metrics(interp.metrics)
    out = capsys.readouterr().out
    assert "30 most confused of 1000 classes" in out and "class_0007" in out and len(out) < 200_000
