"""One ``ImageSpec`` says how images are read: made once from the settings, carried whole by training, the run
record, ``Predictor`` and the exports' ``signature.json``, and the same pixels wherever it is used."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from helpers import write_class_folder

from imgclf import ImageClassifier, ImgclfError
from imgclf.data.images import DEFAULT_INTERPOLATION, DEFAULT_TARGET_SIZE, ImageSpec, load_image
from imgclf.runs.record import RunConfig


def test_defaults_checks_and_round_trip(tmp_path):
    spec = ImageSpec()
    assert (spec.target_size, spec.color_mode, spec.interpolation) == (DEFAULT_TARGET_SIZE, "rgb", "nearest")
    assert DEFAULT_TARGET_SIZE == (150, 150) and DEFAULT_INTERPOLATION == "nearest"  # the course's
    assert ImageSpec([64, 32], "grayscale").input_shape == (64, 32, 1)  # a list (YAML) becomes a tuple
    with pytest.raises(
        ImgclfError, match=r"target_size must be two positive ints \(height, width\)\. Received: \(0, 1"
    ):
        ImageSpec((0, 150))
    with pytest.raises(ImgclfError, match="color_mode must be one of"):
        ImageSpec((8, 8), "cmyk")
    with pytest.raises(ImgclfError, match="interpolation must be one of"):
        ImageSpec((8, 8), "rgb", "sharpest")
    bilinear = ImageSpec((20, 30), "rgb", "bilinear")
    assert ImageSpec.from_dict(bilinear.to_dict()) == bilinear
    with pytest.raises(ImgclfError, match="needs target_size, color_mode and interpolation"):
        ImageSpec.from_dict({"target_size": [8, 8]})
    path = write_class_folder(tmp_path / "d", {"a_tl": 1}, size=40) / "a_tl" / "000.png"
    np.testing.assert_array_equal(bilinear.load(path), load_image(path, (20, 30), "rgb", "bilinear"))
    assert bilinear.to_model_input(bilinear.load(path)[None]).shape == (1, 20, 30, 3)


def test_old_run_records_fall_back_to_the_setting_then_the_default():
    old = RunConfig(settings={"interpolation": "bicubic"}, classes=["a", "b"],
                    resolved={"target_size": [32, 32], "color_mode": "rgb"})  # fmt: skip
    assert old.image == ImageSpec((32, 32), "rgb", "bicubic")
    older = RunConfig(settings={}, classes=["a", "b"], resolved={"target_size": [32, 32], "color_mode": "rgb"})
    assert older.image.interpolation == DEFAULT_INTERPOLATION


def test_one_spec_from_the_settings_to_the_run_and_the_predictor(tmp_path):
    data = write_class_folder(tmp_path / "data", {"a_tl": 10, "b_br": 10}, size=40)
    spec = ImageSpec((28, 24), "grayscale", "bilinear")
    clf = ImageClassifier(target_size=(28, 24), color_mode="grayscale", interpolation="bilinear", epochs=1,
                          batch_size=8, calibrate=False)  # fmt: skip
    clf.fit(data, run_dir=tmp_path / "run", verbose=0)
    assert clf.resolve_settings().image == spec and clf.image_ == spec
    assert (clf.target_size_, clf.color_mode_, clf.interpolation_) == ((28, 24), "grayscale", "bilinear")
    assert clf.model_.input_shape[1:] == spec.input_shape
    record = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["resolved"]
    assert ImageSpec.from_dict(record) == spec
    loaded = ImageClassifier.load(tmp_path / "run")
    assert loaded.image_ == spec and loaded.predictor().image == spec
    files = sorted(str(p) for p in (data / "a_tl").glob("*.png"))[:3]
    expected = clf.model_.predict(np.stack([spec.load(p) for p in files]), verbose=0)
    np.testing.assert_allclose(loaded.predict_proba(files)[:, 1], expected[:, 0], rtol=1e-5, atol=1e-6)
