"""The Python API: training beats chance, run folders, save/load, predict preprocessing, evaluate."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
from PIL import Image

from imgclf import ImageClassifier, ImgclfError
from imgclf.data.folders import load_folder
from imgclf.data.images import ImageSpec, load_image
from imgclf.pipeline.sources import samples_dataset
from imgclf.runs.history import read_history_csv
from imgclf.runs.record import check_run_dir


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """course_small trained 6 epochs at 32x32 on corner squares (top-left vs bottom-right)."""
    from helpers import write_class_folder

    root = tmp_path_factory.mktemp("trained")
    data = write_class_folder(root / "data" / "train", {"a_tl": 40, "b_br": 40}).parent
    write_class_folder(data / "validation", {"a_tl": 12, "b_br": 12}, start=500)
    run = root / "run"
    run.mkdir()
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=6, batch_size=10, seed=1)
    clf.fit(data, run_dir=run, verbose=0)
    return clf, data, run


def test_short_training_beats_chance(trained):
    clf, _, _ = trained
    assert clf.class_mode_ == "binary" and list(clf.classes_) == ["a_tl", "b_br"]
    assert [r["epoch"] for r in clf.history_] == [1, 2, 3, 4, 5, 6]
    assert clf.history_[-1]["val_accuracy"] >= 0.85  # chance is 0.5
    assert clf.history_[-1]["loss"] < clf.history_[0]["loss"]


def test_run_folder_contents(trained):
    _, _, run = trained
    check_run_dir(run)
    for name in ("history.csv", "summary.txt", "plots/accuracy.png", "plots/loss.png"):
        assert (run / name).is_file(), name
    rows = read_history_csv(run / "history.csv")
    assert list(rows[0]) == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds"]
    assert all(r["learning_rate"] == pytest.approx(1e-3) for r in rows)  # RMSprop at the default rate
    assert len(rows) == 6 and all(r["seconds"] > 0 for r in rows)
    with Image.open(run / "plots" / "accuracy.png") as im:
        assert im.size[0] > 300
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.keras", "history.csv", "config.yaml"):  # atomic writes keep the usual permissions
        assert stat.S_IMODE((run / name).stat().st_mode) == 0o666 & ~umask, name
    summary = (run / "summary.txt").read_text()
    assert "Total params:" in summary and "conv_1 (Conv2D)" in summary


def test_save_load_identical_predictions(trained, tmp_path):
    clf, data, run = trained
    paths = sorted(str(p) for p in (data / "validation").rglob("*.png"))
    loaded = ImageClassifier.load(run)
    assert list(loaded.classes_) == list(clf.classes_) and loaded.target_size_ == (32, 32)
    np.testing.assert_array_equal(loaded.predict_proba(paths), clf.predict_proba(paths))
    clf.save(tmp_path / "saved")
    again = ImageClassifier.load(tmp_path / "saved")
    np.testing.assert_array_equal(again.predict_proba(paths), clf.predict_proba(paths))
    assert list(again.predict(paths)) == list(clf.predict(paths))


def test_predict_applies_training_preprocessing(trained):
    clf, data, _ = trained
    ds = load_folder(data)
    # What training feeds the model ...
    train_images = np.concatenate(
        [
            np.asarray(b[0])
            for b in samples_dataset(
                ds.validation, image=ImageSpec((32, 32)), class_mode="binary", num_classes=2, batch_size=8
            )
        ]
    )
    # ... is what prediction feeds it: the same arrays, so the same probabilities.
    direct = np.asarray(clf.model_.predict(train_images, verbose=0))[:, 0]
    from_paths = clf.predict_proba(list(ds.validation.paths))[:, 1]
    np.testing.assert_allclose(from_paths, direct, rtol=1e-6, atol=1e-7)
    # A full-size array is resized by the same function as a file.
    full = np.asarray(Image.open(ds.validation.paths[0]).convert("RGB"))
    np.testing.assert_allclose(clf.predict_proba(full), clf.predict_proba(ds.validation.paths[0]), atol=1e-7)
    np.testing.assert_array_equal(train_images[0], load_image(ds.validation.paths[0], (32, 32)))


def test_predict_proba_rows_and_folders(trained):
    clf, data, _ = trained
    proba = clf.predict_proba(data / "validation")  # a folder is searched recursively
    assert proba.shape == (24, 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert set(clf.predict(data / "validation" / "b_br")) <= {"a_tl", "b_br"}


def test_evaluate(trained):
    clf, data, _ = trained
    m = clf.evaluate(data)
    assert m["n"] == 24 and np.sum(m["confusion_matrix"]) == 24
    assert m["accuracy"] == pytest.approx(np.trace(m["confusion_matrix"]) / 24)
    assert m["accuracy"] == pytest.approx(clf.history_[-1]["val_accuracy"], abs=1e-6)
    # Training computed in bfloat16 where the CPU has it; the fitted model is float32: losses agree closely.
    assert m["loss"] == pytest.approx(clf.history_[-1]["val_loss"], rel=0.05, abs=2e-3)
    assert set(m["per_class"]) == {"a_tl", "b_br"}


def test_multiclass_sparse_training(single_data, tmp_path):
    clf = ImageClassifier(model="course_small", target_size=(24, 24), epochs=1, class_mode="sparse", batch_size=16)
    clf.fit(single_data, verbose=0)
    assert list(clf.classes_) == ["a_tl", "b_br", "c_stripes"]
    assert clf.predict_proba(single_data / "c_stripes").shape == (20, 3)


def test_bad_arrays_and_paths(trained, tmp_path):
    clf, _, _ = trained
    with pytest.raises(ImgclfError, match="uint8 of shape"):
        clf.predict_proba(np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(ImgclfError, match="does not exist. Received"):
        clf.predict_proba(tmp_path / "missing.jpg")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImgclfError, match="holds no image files"):
        clf.predict(tmp_path / "empty")


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"target_size": (0, 150)}, r"target_size must be two positive ints \(height, width\). Received: \(0, 150\)"),
        ({"batch_size": 0}, "batch_size must be a positive int. Received: 0"),
        ({"epochs": -1}, "epochs must be a positive int"),
        ({"optimizer": "adagrad"}, "optimizer must be one of"),
        ({"learning_rate": 0}, "learning_rate must be a positive float"),
        ({"class_mode": "int"}, "class_mode must be one of"),
        ({"color_mode": "rgba"}, "color_mode must be one of"),
        ({"seed": -3}, "seed must be a non-negative int"),
    ],
)
def test_bad_settings(kwargs, match, split_data):
    clf = ImageClassifier(**kwargs)  # scikit-learn: __init__ only stores, fit checks
    assert clf.get_params()[next(iter(kwargs))] == next(iter(kwargs.values()))
    with pytest.raises(ImgclfError, match=match):
        clf.resolve_settings()
    with pytest.raises(ImgclfError, match=match):
        clf.fit(split_data, verbose=0)
    assert not hasattr(clf, "model_")


def test_epochs_default_follows_target_accuracy():
    # Without --epochs a target-accuracy run may go on until the target (up to 100); explicit epochs always win.
    assert ImageClassifier().resolve_settings().epochs == 15
    assert ImageClassifier(target_accuracy=0.999).resolve_settings().epochs == 100
    assert ImageClassifier(target_accuracy=0.999, epochs=20).resolve_settings().epochs == 20
    again = ImageClassifier(**ImageClassifier(target_accuracy=0.9).get_params())
    assert again.epochs is None and again.resolve_settings().epochs == 100


def test_not_fitted_and_not_a_run(tmp_path):
    with pytest.raises(ImgclfError, match="not fitted"):
        ImageClassifier().predict(tmp_path)
    with pytest.raises(ImgclfError, match="missing model.keras"):
        ImageClassifier.load(tmp_path)


def test_mixed_precision_run_saves_and_loads(split_data, tmp_path):
    clf = ImageClassifier(
        model="course_small", target_size=(24, 24), epochs=1, batch_size=8, precision="mixed_bfloat16"
    )
    clf.fit(split_data, run_dir=tmp_path / "run", verbose=0)
    loaded = ImageClassifier.load(tmp_path / "run")
    assert loaded.precision == "mixed_bfloat16"  # the setting is kept; the saved model computes in float32
    assert loaded.model_.get_layer("dense").compute_dtype == "float32"
    assert "mixed_bfloat16" in (tmp_path / "run" / "config.yaml").read_text()
    paths = load_folder(split_data).validation.paths
    np.testing.assert_array_equal(loaded.predict_proba(paths), clf.predict_proba(paths))


def test_a_diverged_model_is_named_not_taken_for_unreadable_files(split_data):
    # Found by the fuzz test (--learning-rate 1370461): NaN weights give NaN rows, which once read as "no file
    # could be decoded" and crashed the report.
    clf = ImageClassifier(model="course_small", target_size=(24, 24), epochs=1, batch_size=8, calibrate=False)
    clf.fit(split_data, verbose=0)
    clf.model_.set_weights([np.full_like(w, np.nan) for w in clf.model_.get_weights()])
    with pytest.raises(ImgclfError, match=r"predicts NaN for \d+ readable images.*training diverged"):
        clf.evaluate(split_data)
