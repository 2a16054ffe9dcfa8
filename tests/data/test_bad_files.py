"""Training, evaluation and prediction never die on a bad file: they skip it, say why, and record it."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from helpers import run_cli, write_class_folder
from PIL import Image

from imgclf import ImageClassifier


def add_bad_files(folder):
    """Zero-length, HTML saved as .jpg, and a truncated JPEG, as found in the Kaggle download."""
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "page.jpg").write_text("<html><body>404 Not Found</body></html>")
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return {str(folder / n) for n in ("empty.jpg", "page.jpg", "truncated.jpg")}


@pytest.fixture
def dirty_data(tmp_path):
    root = tmp_path / "dirty"
    write_class_folder(root / "train", {"a_tl": 16, "b_br": 16})
    write_class_folder(root / "validation", {"a_tl": 4, "b_br": 4}, start=100)
    bad_train = add_bad_files(root / "train" / "a_tl")
    bad_val = add_bad_files(root / "validation" / "b_br")
    return root, bad_train, bad_val


@pytest.mark.parametrize("cache", [True, False])
def test_training_skips_and_records_bad_files(dirty_data, tmp_path, cache):
    root, bad_train, bad_val = dirty_data
    run = tmp_path / "run"
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=2, batch_size=8, cache=cache)
    clf.fit(root, run_dir=run, verbose=0)
    assert len(clf.history_) == 2
    recorded = json.loads((run / "skipped.json").read_text())
    assert {r["path"] for r in recorded} == bad_train | bad_val  # each once, though met every epoch
    reasons = {r["path"]: r["reason"] for r in recorded}
    assert "truncated" in reasons[str(root / "train" / "a_tl" / "truncated.jpg")]
    assert all((root / "train" / "a_tl" / n).exists() for n in ("empty.jpg", "page.jpg"))  # nothing deleted


def test_predict_and_evaluate_skip_bad_files(dirty_data, tmp_path, monkeypatch, capsys):
    root, bad_train, bad_val = dirty_data
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=1, batch_size=8).fit(root, verbose=0)
    folder = root / "validation" / "b_br"
    proba = clf.predict_proba(folder)
    paths = sorted(str(p) for p in folder.iterdir())
    bad_rows = [i for i, p in enumerate(paths) if p in bad_val]
    assert np.isnan(proba[bad_rows]).all() and not np.isnan(np.delete(proba, bad_rows, axis=0)).any()
    assert set(dict(clf.predictions(folder).skipped.items())) == bad_val
    assert set(dict(clf.skipped_.items())) == bad_train | bad_val  # what fit met; predicting changes nothing
    labels = clf.predict(folder)
    assert [labels[i] for i in bad_rows] == ["", "", ""]
    metrics = clf.evaluate(root)
    assert metrics["n"] == 8 and {s["path"] for s in metrics["skipped"]} == bad_val
    clf.save(tmp_path / "m")
    code, out, err = run_cli(monkeypatch, capsys, "predict", tmp_path / "m", folder)
    assert code == 0 and "Traceback" not in err and "Skipped 3 unreadable" in err
    lines = dict(line.split("\t", 1) for line in out.strip().splitlines())
    assert lines[str(folder / "page.jpg")].startswith("-\tunreadable: ")
    assert len(lines) == 7
