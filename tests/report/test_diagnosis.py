"""The plain-language diagnosis of training curves."""

from __future__ import annotations

import pytest

from imgclf.report import diagnose


def history(train_acc, val_acc, train_loss, val_loss):
    return [
        {"epoch": i + 1, "accuracy": a, "val_accuracy": va, "loss": lo, "val_loss": vl}
        for i, (a, va, lo, vl) in enumerate(zip(train_acc, val_acc, train_loss, val_loss))
    ]


OVERFIT = history(  # the course's cats-vs-dogs curves: training soars, validation stalls from epoch 4
    [0.55, 0.63, 0.69, 0.74, 0.78, 0.83, 0.89, 0.93, 0.96, 0.98],
    [0.60, 0.65, 0.69, 0.71, 0.70, 0.71, 0.70, 0.71, 0.70, 0.71],
    [0.69, 0.64, 0.59, 0.53, 0.47, 0.39, 0.29, 0.19, 0.12, 0.07],
    [0.67, 0.63, 0.60, 0.57, 0.59, 0.64, 0.72, 0.85, 1.01, 1.20],
)
HEALTHY = history(  # augmentation: both curves rise together and flatten
    [0.55, 0.62, 0.68, 0.72, 0.75, 0.77, 0.78, 0.79, 0.80, 0.80],
    [0.57, 0.63, 0.69, 0.72, 0.74, 0.77, 0.77, 0.79, 0.78, 0.79],
    [0.69, 0.65, 0.60, 0.55, 0.52, 0.49, 0.47, 0.46, 0.45, 0.45],
    [0.68, 0.64, 0.59, 0.55, 0.52, 0.49, 0.48, 0.46, 0.47, 0.46],
)


def test_overfitting_named_with_its_epoch():
    d = diagnose(OVERFIT)
    assert d.verdict == "overfitting" and d.from_epoch == 4 and d.best_epoch == 4
    assert "Over-fitting from epoch 4" in d.message
    assert any("augment" in r for r in d.remedies)


def test_healthy_run_is_not_overfitting():
    d = diagnose(HEALTHY)
    assert d.verdict == "good_fit" and d.from_epoch is None


def test_still_improving():
    h = history([0.5, 0.6, 0.7], [0.5, 0.6, 0.7], [0.7, 0.6, 0.5], [0.7, 0.6, 0.5])
    assert diagnose(h).verdict == "still_improving"


def test_underfitting():
    h = history([0.50, 0.52, 0.53, 0.53], [0.50, 0.51, 0.52, 0.52], [0.69, 0.69, 0.69, 0.69], [0.69, 0.69, 0.69, 0.69])
    assert diagnose(h).verdict == "underfitting"


def test_unstable():
    h = history([0.8] * 6, [0.6, 0.8, 0.55, 0.82, 0.6, 0.8], [0.4] * 6, [0.5, 0.45, 0.5, 0.44, 0.5, 0.45])
    assert diagnose(h).verdict == "unstable"


def test_no_validation_and_empty():
    assert diagnose([{"epoch": 1, "loss": 0.5, "accuracy": 0.7}]).verdict == "no_validation"
    with pytest.raises(ValueError):
        diagnose([])


def test_every_condition_is_named_most_important_first():
    # The run: training accuracy climbs to 0.83, validation zig-zags around 0.6 and its loss rises from
    # epoch 9; over-fitting and instability both hold, and over-fitting comes first.
    h = history(
        [0.52, 0.56, 0.60, 0.63, 0.66, 0.69, 0.72, 0.74, 0.77, 0.79, 0.81, 0.83],
        [0.50, 0.58, 0.51, 0.60, 0.52, 0.63, 0.54, 0.64, 0.55, 0.65, 0.54, 0.63],
        [0.69, 0.67, 0.65, 0.62, 0.60, 0.57, 0.54, 0.51, 0.48, 0.45, 0.42, 0.39],
        [0.69, 0.68, 0.67, 0.66, 0.66, 0.65, 0.65, 0.64, 0.63, 0.68, 0.72, 0.77],
    )
    d = diagnose(h)
    assert d.conditions == ("overfitting", "unstable") and d.verdict == "overfitting" and d.from_epoch == 9
    assert d.message.index("Over-fitting") < d.message.index("Unstable")
    assert any("augment" in r for r in d.remedies) and any("learning rate" in r for r in d.remedies)
    assert diagnose(HEALTHY).conditions == ("good_fit",)


def test_good_fit_needs_good_validation_accuracy():
    # The case: curves that agree, loss steady, but validation accuracy 0.458 — not a good fit.
    h = history([0.71, 0.72, 0.72, 0.73], [0.45, 0.46, 0.45, 0.458], [0.6, 0.59, 0.59, 0.58], [0.7, 0.7, 0.7, 0.7])
    d = diagnose(h)
    assert d.verdict == "overfitting" and "validation accuracy only 0.458" in d.message
    h = history([0.66, 0.7, 0.72, 0.74], [0.6, 0.62, 0.61, 0.62], [0.6, 0.59, 0.58, 0.57], [0.66, 0.65, 0.66, 0.66])
    assert diagnose(h).verdict == "underfitting" and "good_fit" not in diagnose(h).conditions
