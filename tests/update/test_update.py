"""Updating a run (``imgclf train DATA --from RUN``): a new class gets a new output, the old ones keep theirs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from helpers import SHARED, run_cli
from PIL import Image

SQUEEZENET = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"
COLOURS = {"red": 0, "green": 1, "blue": 2}


def write_colours(root, names, count: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for split, n in (("train", count), ("validation", count // 2)):
        for name in names:
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                pixels = rng.integers(0, 90, (48, 48, 3), dtype=np.uint8)
                pixels[..., COLOURS[name]] = rng.integers(150, 256, (48, 48), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{name}{seed}-{i}.png")
    return root


@pytest.mark.skipif(not SQUEEZENET.is_file(), reason="needs ../shared/weights (SqueezeNet ImageNet weights)")
def test_a_new_class_gets_a_new_output_and_the_old_ones_stay_right(tmp_path, monkeypatch, capsys):
    from imgclf.predict.predictor import Predictor

    data = write_colours(tmp_path / "data", ["red", "blue"], 12)
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--backbone", "squeezenet1_1", "--weights", SQUEEZENET,
                           "--epochs", "8", "--runs-dir", tmp_path / "runs", "--name", "parent")  # fmt: skip
    assert code == 0, err
    kept = tmp_path / "runs" / "parent" / "rehearsal"
    assert sorted(p.name for p in kept.iterdir()) == ["blue", "red"] and len(list((kept / "red").glob("*.jpg"))) == 12
    write_colours(data, ["green"], 12)
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--from", tmp_path / "runs" / "parent", "--runs-dir",
                           tmp_path / "runs", "--name", "child")  # fmt: skip
    assert code == 0, err
    child = tmp_path / "runs" / "child"
    assert json.loads((child / "classes.json").read_text()) == ["blue", "red", "green"]  # old order, new after
    record = yaml.safe_load((child / "config.yaml").read_text())
    assert record["from"] == str(tmp_path / "runs" / "parent") and record["resolved"]["class_mode"] == "categorical"
    # an update anneals its learning rate (a setting of its own, so --resume replays it); the parent's was constant
    assert record["lr_schedule"] == "cosine" and record["resolved"]["lr_schedule"] == "cosine"
    rates = [float(line.split(",")[5]) for line in (child / "history.csv").read_text().splitlines()[1:]]
    assert rates == sorted(rates, reverse=True) and rates[-1] < rates[0] / 10
    parent_record = yaml.safe_load((tmp_path / "runs" / "parent" / "config.yaml").read_text())
    assert parent_record["resolved"]["lr_schedule"] == "constant"
    held_out = write_colours(tmp_path / "held", ["red", "blue", "green"], 4, seed=9)
    paths = sorted(held_out.glob("*/*/*.png"))
    predictor = Predictor.from_run(child)
    labels = predictor.predict(paths).labels()
    assert list(labels) == [p.parent.name for p in paths]  # old classes still right, the new one learnt
    update = json.loads((child / "update.json").read_text())
    assert set(update["classes"]) == {"red", "blue"} and update["new_classes"] == ["green"]
    assert update["after"] >= 0.9 and all(c["after"] >= 0.9 for c in update["classes"].values())
    html = (child / "report.html").read_text()
    assert "Updated from" in html and "green" in html
    # the probabilities training already knows stand in for a second pass over the parent's validation images
    import os

    from imgclf.update.measure import measure_update

    files = sorted((data / "validation").glob("*/*.png"))
    known = dict(zip((os.path.realpath(f) for f in files), predictor.predict(files).probabilities))

    class NoSecondPass:
        classes = predictor.classes

        def predict(self, paths):
            raise AssertionError("read the images again")

    again = measure_update(child, NoSecondPass(), known)
    assert again["classes"] == update["classes"] and again["after"] == pytest.approx(update["after"])
    counts = record["data"]["train_counts"]  # the parent's kept images rehearsed beside the folder's own
    assert counts == {"blue": 24, "red": 24, "green": 12}, counts
    # a schedule given is kept
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--from", tmp_path / "runs" / "parent", "--epochs", "2",
                           "--runs-dir", tmp_path / "runs", "--name", "kept", "--lr-schedule", "constant")  # fmt: skip
    assert code == 0, err
    record = yaml.safe_load((tmp_path / "runs" / "kept" / "config.yaml").read_text())
    assert record["resolved"]["lr_schedule"] == "constant"


def test_update_refusals_are_one_line(tmp_path, monkeypatch, capsys):
    data = write_colours(tmp_path / "data", ["red", "blue"], 6)
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--model", "course_small", "--target-size", "32", "32",
                           "--epochs", "1", "--runs-dir", tmp_path / "runs", "--name", "parent")  # fmt: skip
    assert code == 0, err
    fewer = write_colours(tmp_path / "fewer", ["red", "green"], 6)
    code, _, err = run_cli(monkeypatch, capsys, "train", fewer, "--from", tmp_path / "runs" / "parent",
                           "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert code == 2 and "no class folder 'blue'" in err and "Traceback" not in err
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--from", tmp_path / "runs" / "parent",
                           "--target-size", "48", "48", "--runs-dir", tmp_path / "runs")  # fmt: skip
    assert code == 2 and "Expected the same" in err and "(48, 48)" not in err.split("these settings")[0]
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--from", tmp_path / "nowhere")
    assert code == 2 and "Traceback" not in err
    before = sorted(str(p) for p in (tmp_path / "runs").rglob("*"))
    for parent in (tmp_path / "runs" / "parent", f"{tmp_path / 'runs' / 'parent'}/"):  # --from the run replaced
        code, _, err = run_cli(monkeypatch, capsys, "train", data, "--from", parent, "--runs-dir", tmp_path / "runs",
                               "--name", "parent", "--overwrite")  # fmt: skip
        assert code == 2 and "it holds the run --from starts from" in err and "missing" not in err, err
    assert sorted(str(p) for p in (tmp_path / "runs").rglob("*")) == before
    from imgclf import ImageClassifier

    with pytest.raises(Exception, match="is run_dir: the run an update starts from is never written over"):
        ImageClassifier(epochs=1).fit(data, run_dir=tmp_path / "runs" / "parent", from_run=tmp_path / "runs" / "parent")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["parent"]  # nothing written
