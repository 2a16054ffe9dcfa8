"""Slow, real-data acceptance run (``pytest -m slow``): the course's cats-vs-dogs ConvNet, 15 epochs.

About 3 minutes on 2 cores. The course reports ~0.72-0.75 validation accuracy for this model.
"""

from __future__ import annotations

import json

import pytest
from helpers import CATS_AND_DOGS, requires_shared, run_cli

pytestmark = [pytest.mark.slow, requires_shared(CATS_AND_DOGS)]


def _cli(monkeypatch, capsys, *args) -> str:
    code, out, _ = run_cli(monkeypatch, capsys, *args)
    assert code == 0
    return out


def test_course_small_cats_vs_dogs_15_epochs(tmp_path, monkeypatch, capsys):
    _cli(monkeypatch, capsys, "train", CATS_AND_DOGS, "--epochs", "15", "--runs-dir", tmp_path, "--name", "cvd")
    run = tmp_path / "cvd"
    metrics_out = _cli(monkeypatch, capsys, "evaluate", run, CATS_AND_DOGS, "--json")
    metrics = json.loads(metrics_out)
    assert metrics["n"] == 1000
    assert metrics["accuracy"] >= 0.70
    cat = sorted((CATS_AND_DOGS / "validation" / "cats").glob("*.jpg"))[:5]
    lines = _cli(monkeypatch, capsys, "predict", run, *cat).strip().splitlines()
    assert len(lines) == 5 and all(line.split("\t")[1] in ("cats", "dogs") for line in lines)
