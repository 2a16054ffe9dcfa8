"""What imgclf writes works without imgclf: model.keras loads in plain Keras (safe_mode on) and predicts the same."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import SHARED, write_class_folder

from imgclf import ImageClassifier
from imgclf.data.folders import load_folder

SQUEEZE_WEIGHTS = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"

#: Runs in a fresh interpreter that imports keras, numpy and Pillow only; prints the probabilities as JSON.
PLAIN_KERAS = """
import json, sys
import keras, numpy as np
from PIL import Image
model = keras.saving.load_model(sys.argv[1], safe_mode=True)
size = tuple(model.input_shape[1:3])
images = np.stack([np.asarray(Image.open(p).convert("RGB").resize(size[::-1], Image.NEAREST)) for p in sys.argv[2:]])
out = model.predict(images.astype("uint8"), verbose=0)
dtypes = sorted({layer.dtype_policy.name for layer in model.layers})
print(json.dumps({"proba": out.tolist(), "modules": sorted(m for m in sys.modules if m.startswith("imgclf")),
                  "dtypes": dtypes, "compiled": getattr(model, "optimizer", None) is not None}))
"""


def _plain_keras(model_path, images) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PLAIN_KERAS, str(model_path), *map(str, images)],
        capture_output=True, text=True, timeout=300, env={"KERAS_BACKEND": "tensorflow", "TF_CPP_MIN_LOG_LEVEL": "3",
                                                          "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "settings",
    [
        dict(model="course_small", target_size=(32, 32), epochs=1, batch_size=8, precision="mixed_bfloat16"),
        dict(backbone="squeezenet1_1", target_size=(48, 48), head="gap", epochs=1, batch_size=8,
             precision="mixed_bfloat16", weights=str(SQUEEZE_WEIGHTS) if SQUEEZE_WEIGHTS.exists() else None),
        dict(backbone="squeezenet1_1", target_size=(48, 48), head="prototypes", batch_size=8,
             weights=str(SQUEEZE_WEIGHTS) if SQUEEZE_WEIGHTS.exists() else None),
    ],
    ids=["course_convnet", "squeezenet_transfer", "squeezenet_prototypes"],
)  # fmt: skip
def test_model_keras_loads_in_plain_keras_and_predicts_the_same(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 12, "b_br": 12}, size=48)
    clf = ImageClassifier(**settings).fit(data, run_dir=tmp_path / "run", verbose=0)
    images = list(load_folder(data).validation.paths)
    got = _plain_keras(tmp_path / "run" / "model.keras", images)
    assert got["modules"] == []  # imgclf was never imported
    assert got["dtypes"] == ["float32"] and got["compiled"] is False  # float32 inference model, no optimizer
    proba = np.asarray(got["proba"])[:, 0]
    expected = clf.predict_proba(images)[:, 1]  # binary: the model's one output is P(classes_[1])
    assert np.abs(proba - expected).max() < 1e-3
    best = _plain_keras(tmp_path / "run" / "best.keras", images[:2])  # best.keras is portable too
    assert best["modules"] == [] and best["dtypes"] == ["float32"]


def test_preprocessing_is_stock_keras_and_matches_caffe():
    """SqueezeNet's caffe preprocessing (RGB→BGR, minus the ImageNet means) as stock layers + a folded kernel."""
    import keras

    from imgclf.models.backbones import IMAGENET_MEANS_RGB, fold_bgr_into_first_conv, preprocessing_layer

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (2, 9, 9, 3)).astype("uint8")
    conv = keras.layers.Conv2D(4, 3, name="conv1")
    inputs = keras.Input((9, 9, 3), dtype="uint8")
    model = keras.Model(inputs, conv(preprocessing_layer("caffe")(inputs)))
    kernel, bias = conv.get_weights()
    caffe_input = x[..., ::-1].astype("float32") - np.asarray(IMAGENET_MEANS_RGB[::-1], "float32")
    reference = keras.ops.convert_to_numpy(keras.ops.conv(caffe_input, kernel)) + bias
    fold_bgr_into_first_conv(model)
    np.testing.assert_allclose(np.asarray(model(x)), reference, rtol=1e-5, atol=1e-3)
    assert {type(layer).__module__.split(".")[0] for layer in model.layers} == {"keras"}
