"""Calibrated probabilities and an honest "unknown": temperature scaling, ECE, the four OOD scores, thresholds that
hold their false-alarm rate, and the whole path from training to `imgclf predict` / `evaluate --ood`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import run_cli, write_class_folder
from PIL import Image, ImageDraw

from imgclf.errors import ImgclfError
from imgclf.predict.items import predict_items
from imgclf.unknown.detector import (
    METHODS,
    OodDetector,
    expected_calibration_error,
    fit_temperature,
    ood_metrics,
    reliability,
    softmax,
)


def test_temperature_scaling_recovers_a_known_temperature_and_lowers_ece():
    """Labels drawn from softmax(z / 2): the fitted temperature is 2 within sampling error, and calibrating
    brings the expected calibration error of the overconfident softmax(z) down."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 4, size=(6000, 3))
    labels = np.array([rng.choice(3, p=p) for p in softmax(logits / 2.0)])
    t = fit_temperature(logits, labels)
    assert t == pytest.approx(2.0, rel=0.08)
    before, after = (
        expected_calibration_error(softmax(logits), labels),
        expected_calibration_error(softmax(logits / t), labels),
    )
    assert before > 0.08 and after < 0.02
    binary = rng.normal(0, 5, size=(6000, 1))  # one sigmoid logit: the same scaling
    y = (rng.random(6000) < 1 / (1 + np.exp(-binary[:, 0] / 0.5))).astype(int)
    assert fit_temperature(binary, y) == pytest.approx(0.5, rel=0.1)
    with pytest.raises(ImgclfError, match="needs validation images"):
        fit_temperature(np.zeros((0, 2)), np.zeros(0))


def test_reliability_bins_add_up():
    proba = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.2, 0.8]])
    r = reliability(proba, np.array([0, 1, 0, 1]))
    assert sum(b["count"] for b in r["bins"]) == 4 and len(r["edges"]) == 16
    # bins: 0.95 (2 images, accuracy 0.5), 0.55 (1, right), 0.8 (1, right)
    assert r["ece"] == pytest.approx((2 * 0.45 + 0.45 + 0.2) / 4)


def _clusters(rng, n, centres, spread=1.0):
    labels = rng.integers(0, len(centres), n)
    return (np.asarray(centres)[labels] + rng.normal(0, spread, (n, len(centres[0])))).astype(np.float32), labels


def test_scores_order_unlike_images_and_thresholds_hold_their_false_alarm_rate(tmp_path):
    rng = np.random.default_rng(1)
    d = 16
    centres = [np.r_[4.0, np.zeros(d - 1)], np.r_[0.0, 4.0, np.zeros(d - 2)]]
    f_train, y_train = _clusters(rng, 2000, centres)
    kernel = np.zeros((d, 1), np.float32)
    kernel[0], kernel[1] = -1.0, 1.0  # the logit of class 1: x1 - x0
    detector = OodDetector.fit(f_train, y_train, kernel, np.zeros(1, np.float32), "knn")
    f_val, _ = _clusters(rng, 1000, centres)
    detector.set_thresholds(f_val, 0.05)
    f_held, _ = _clusters(rng, 4000, centres)
    f_out = (rng.normal(0, 1, (1000, d)) + np.r_[0.0, 0.0, 6.0, np.zeros(d - 3)]).astype(np.float32)
    for method in ("knn", "mahalanobis"):
        held, out = detector.scores(f_held, method), detector.scores(f_out, method)
        assert ood_metrics(held, out)["auroc"] > 0.99, method
        rate = (held > detector.thresholds[method]).mean()
        assert 0.03 <= rate <= 0.07, (method, rate)  # 5 % target; binomial sd of 1,000 thresholds ~ 0.007
    assert detector.unknown(detector.scores(f_out)).mean() > 0.95
    path = detector.save(tmp_path / "ood.npz")
    again = OodDetector.load(path)
    assert again.method == "knn" and again.thresholds == detector.thresholds
    np.testing.assert_allclose(again.scores(f_held[:50]), detector.scores(f_held[:50]), rtol=1e-5)
    with np.load(path, allow_pickle=False) as z:  # no pickled objects in the file
        assert set(z.files) >= {"reference", "means", "precision", "kernel", "bias", "thresholds"}
    with pytest.raises(ImgclfError, match="ood_false_alarm_rate must be a float in"):
        detector.set_thresholds(f_val, 1.5)
    with pytest.raises(ImgclfError, match="ood_method must be one of"):
        OodDetector.fit(f_train, y_train, kernel, np.zeros(1), "nearest")
    m = ood_metrics(np.zeros(100), np.ones(10))
    assert m["auroc"] == 1.0 and m["fpr_at_95_tpr"] == 0.0


def third_shape(folder: Path, count: int) -> Path:
    """A bright disc in the centre on the same dark noise as the two trained shapes (corner squares)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        rng = np.random.default_rng(7000 + i)
        im = Image.fromarray(rng.integers(0, 90, size=(40, 40, 3), dtype=np.uint8))
        r, c = int(rng.integers(6, 10)), 20 + int(rng.integers(-3, 4))
        ImageDraw.Draw(im).ellipse((c - r, c - r, c + r, c + r), fill=tuple(int(v) for v in rng.integers(200, 256, 3)))
        im.save(folder / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    """course_small trained by `imgclf train` on two shapes, and images of a third."""
    from helpers import cli_train

    root = tmp_path_factory.mktemp("ood")
    write_class_folder(root / "data" / "train", {"a_tl": 40, "b_br": 40}, size=40)
    write_class_folder(root / "data" / "validation", {"a_tl": 25, "b_br": 25}, size=40, start=500)
    write_class_folder(root / "held", {"a_tl": 60, "b_br": 60}, size=40, start=900)
    third_shape(root / "third", 30)
    cli_train(root / "data", "--target-size", 32, 32, "--epochs", 6, "--batch-size", 8, "--runs-dir", root / "runs",
              "--name", "r")  # fmt: skip
    return root, root / "runs" / "r"


def test_a_model_trained_on_two_shapes_answers_unknown_for_a_third(shapes_run, monkeypatch, capsys):
    root, run = shapes_run
    calibration = json.loads((run / "calibration.json").read_text())
    assert calibration["validation_images"] == 50 and calibration["ood"]["method"] == "knn"
    assert set(calibration["ood"]["thresholds"]) == set(METHODS) and (run / "ood.npz").is_file()
    code, out, err = run_cli(monkeypatch, capsys, "predict", run, root / "third", root / "held" / "a_tl")
    assert code == 0
    lines = [line.split("\t") for line in out.strip().splitlines()]
    third = [row for row in lines if "/third/" in row[0]]
    held = [row for row in lines if "/held/" in row[0]]
    assert sum(row[1] == "unknown" for row in third) >= 27  # 30 discs
    assert sum(row[1] == "unknown" for row in held) <= 9 and sum(row[1] == "a_tl" for row in held) >= 50
    assert "unlike the training images: answered unknown" in err
    code, out, _ = run_cli(monkeypatch, capsys, "predict", run, root / "third" / "000.png", "--json")
    record = json.loads(out)
    assert record["unknown"] is True and record["ood_score"] > calibration["ood"]["thresholds"]["knn"]
    assert record["label"] in ("a_tl", "b_br")  # the closest class is still given
    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", run, root / "held", "--ood", root / "third")
    assert code == 0 and "ood knn" in out
    metrics = json.loads((run / "evaluations" / "held" / "metrics.json").read_text())
    assert metrics["ood"]["default"] == "knn" and metrics["ood"]["methods"]["knn"]["auroc"] > 0.95
    assert metrics["ood"]["methods"]["knn"]["unknown_rate_in"] <= 0.15
    code, out, _ = run_cli(monkeypatch, capsys, "report", run)
    html = (run / "report.html").read_text()
    assert code == 0 and 'Calibration and "unknown"' in html and "knn (default)" in html
    assert 'alt="reliability diagram"' in html and (run / "evaluation" / "reliability.png").is_file()


def test_predict_with_an_unknown_label_and_calibrated_model_keras(shapes_run):
    """``predict(unknown_label=...)`` names flagged images; the temperature lives in model.keras itself, so plain
    Keras (no imgclf) gives the calibrated probabilities."""
    from imgclf import ImageClassifier

    root, run = shapes_run
    clf = ImageClassifier.load(run)
    files = [str(root / "third" / "000.png"), str(root / "held" / "a_tl" / "900.png")]
    assert list(clf.predict(files, unknown_label="unknown")) == ["unknown", "a_tl"]
    assert clf.predict(files)[0] in ("a_tl", "b_br")
    expected = clf.predict_proba(files)
    code = (
        "import sys, json, numpy as np, keras; from PIL import Image\n"
        "m = keras.saving.load_model(sys.argv[1], safe_mode=True)\n"
        "read = lambda p: np.asarray(Image.open(p).convert('RGB').resize((32, 32), Image.NEAREST))\n"
        "x = np.stack([read(p) for p in sys.argv[2:]])\n"
        "print(json.dumps(m.predict(x, verbose=0)[:, 0].tolist()))\n"
    )  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code, str(run / "model.keras"), *files], capture_output=True,
                          text=True, timeout=300, check=True)  # fmt: skip
    plain = np.array(json.loads(done.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(plain, expected[:, 1], atol=1e-5)


def test_calibrate_off_and_no_validation_leave_no_detector(tmp_path):
    from imgclf import ImageClassifier

    data = write_class_folder(tmp_path / "data", {"a_tl": 12, "b_br": 12}, size=40)
    clf = ImageClassifier(target_size=(32, 32), epochs=1, calibrate=False).fit(data, run_dir=tmp_path / "r", verbose=0)
    assert clf.ood_ is None and not (tmp_path / "r" / "ood.npz").exists()
    assert "ood_score" not in predict_items(clf.predictor(), [data / "a_tl" / "000.png"])[0]
    clf = ImageClassifier(target_size=(32, 32), epochs=1, validation_split=0).fit(data, verbose=0)
    assert clf.calibration_ is None and list(clf.predict([data / "a_tl" / "000.png"], unknown_label="?")) != ["?"]
    with pytest.raises(ImgclfError, match="ood_method must be one of"):
        ImageClassifier(ood_method="nearest").fit(data)
    with pytest.raises(ImgclfError, match="ood_false_alarm_rate must be"):
        ImageClassifier(ood_false_alarm_rate=1).fit(data)


def test_a_diverged_model_gets_no_calibration_instead_of_a_crash(tmp_path):
    """A learning rate far too high leaves infinite features (found by the CLI fuzz test: --learning-rate 4.5e7):
    calibration is skipped, and evaluation then says the weights are not finite, in one line."""
    from imgclf import ImageClassifier
    from imgclf.unknown.calibrate import calibrate, output_layer

    data = write_class_folder(tmp_path / "data", {"a_tl": 12, "b_br": 12}, size=40)
    clf = ImageClassifier(target_size=(32, 32), epochs=1, batch_size=8).fit(data, verbose=0)
    assert clf.calibration_ is not None
    layer = output_layer(clf.model_)
    train, validation = clf.training_datasets(clf.dataset_, in_order=True)[0], clf.training_datasets(clf.dataset_)[1]
    for weight in (1e30, np.inf):  # so large that the features' covariance overflows, or not finite
        layer.set_weights([np.full_like(w, weight) for w in layer.get_weights()])
        assert calibrate(clf.model_, train, validation) is None
    with pytest.raises(ImgclfError, match="not finite|NaN"):
        clf.evaluate(data)


def test_the_temperature_is_folded_into_the_output_layer(tmp_path):
    """With validation errors (a third of the validation labels swapped) the temperature is fitted; the calibrated
    model's probabilities are exactly sigmoid(logit / T) of the same model trained without calibration (same seed),
    so no class changes, and the validation NLL does not grow."""
    import shutil

    from imgclf import ImageClassifier

    data = tmp_path / "data"
    write_class_folder(data / "train", {"a_tl": 30, "b_br": 30}, size=40)
    write_class_folder(data / "validation", {"a_tl": 20, "b_br": 20}, size=40, start=500)
    for i in range(500, 507):  # mislabel 7 of each class
        shutil.move(data / "validation" / "a_tl" / f"{i:03d}.png", data / "validation" / "b_br" / f"x{i}.png")
    for i in range(510, 517):
        shutil.move(data / "validation" / "b_br" / f"{i:03d}.png", data / "validation" / "a_tl" / f"x{i}.png")
    common = dict(target_size=(32, 32), epochs=3, batch_size=8, seed=3)
    calibrated = ImageClassifier(**common).fit(data, verbose=0)
    plain = ImageClassifier(**common, calibrate=False).fit(data, verbose=0)
    record = calibrated.calibration_
    assert record["temperature_fitted"] and record["validation_errors"] >= 7 and record["temperature"] != 1.0
    assert record["nll_after"] <= record["nll_before"] + 1e-9
    files = sorted(str(p) for p in (data / "validation").rglob("*.png"))
    p_plain, p_cal = plain.predict_proba(files)[:, 1].astype(np.float64), calibrated.predict_proba(files)[:, 1]
    p_plain = np.clip(p_plain, 1e-6, 1 - 1e-6)
    expected = 1 / (1 + np.exp(-np.log(p_plain / (1 - p_plain)) / record["temperature"]))
    np.testing.assert_allclose(p_cal, expected, atol=2e-3)
    assert (calibrated.predict(files) == plain.predict(files)).all()


def test_calibration_streams_the_training_images_instead_of_caching_them_twice(tmp_path, monkeypatch):
    """Calibration reads the training images once, unaugmented: streamed, never a second in-memory copy beside the
    training cache (25,000 images peaked at 4.7 GB that way; issue 23)."""
    import imgclf.training.fit as fit_module
    from imgclf import ImageClassifier

    data = write_class_folder(tmp_path / "d", {"a_tl": 12, "b_br": 12}, size=32)
    seen, real = [], fit_module.training_datasets

    def spy(dataset, **kwargs):
        seen.append((kwargs.get("in_order", False), kwargs["cache"]))
        return real(dataset, **kwargs)

    monkeypatch.setattr(fit_module, "training_datasets", spy)
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=1, batch_size=8, cache="memory")
    clf.fit(data, verbose=0)
    assert (False, "memory") in seen and (True, "none") in seen and (True, "memory") not in seen
    assert clf.ood_ is not None and clf.ood_.reference.shape[0] == len(clf.dataset_.train)
