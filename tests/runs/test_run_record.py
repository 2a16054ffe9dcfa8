"""A run's config.yaml replays its own data: --resume, report and --config find the same images again."""

from __future__ import annotations

import matplotlib
import pytest
import yaml
from helpers import Crash, crash_after, run_cli, square_image

from imgclf import ImageClassifier

PATTERN = r"_(?P<label>tl|br)\.png$"


@pytest.fixture
def flat(tmp_path):
    """A flat folder whose names the default label pattern cannot read (``p007_tl.png``: no trailing number)."""
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(16):
        for corner in ("tl", "br"):
            square_image(corner, 32, seed=100 * i + (corner == "br")).save(root / f"p{i:03d}_{corner}.png")
    return root


def test_custom_label_pattern_is_recorded_and_replayed(flat, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", flat, "--runs-dir", tmp_path / "runs", "--name", "x")
    assert code == 2 and "label_pattern" in err  # the default pattern cannot read these names

    settings = dict(model="course_small", target_size=(24, 24), epochs=3, batch_size=8, label_pattern=PATTERN)
    run = tmp_path / "runs" / "crashed"
    with pytest.raises(Crash):
        ImageClassifier(**settings).fit(flat, run_dir=run, callbacks=[crash_after(1)], verbose=0)
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["label_pattern"] == PATTERN and config["label_column"] == "label"

    code, _, err = run_cli(monkeypatch, capsys, "train", "--resume", run)  # the data is found again
    assert code == 0, err
    assert (run / "model.keras").is_file() and "Run saved" in err

    (run / "metrics.json").unlink()
    code, out, err = run_cli(monkeypatch, capsys, "report", run)  # evaluates on the run's own validation images
    assert code == 0, err
    assert '"n": 7' in (run / "metrics.json").read_text() or '"n": 6' in (run / "metrics.json").read_text()

    code, _, err = run_cli(monkeypatch, capsys, "train", "--config", run / "config.yaml", "--epochs", "1",
                           "--runs-dir", tmp_path / "runs", "--name", "again")  # fmt: skip
    assert code == 0, err
    again = yaml.safe_load((tmp_path / "runs" / "again" / "config.yaml").read_text())
    assert again["label_pattern"] == PATTERN and again["data"]["train_images"] == config["data"]["train_images"]


def test_fit_leaves_the_matplotlib_backend_alone(flat):
    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # a user's choice, e.g. a notebook's inline backend
    try:
        clf = ImageClassifier(model="course_small", target_size=(24, 24), epochs=1, batch_size=8, label_pattern=PATTERN)
        clf.fit(flat, run_dir=flat.parent / "run", verbose=0)  # draws the curves
        assert (flat.parent / "run" / "plots" / "accuracy.png").is_file()
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
