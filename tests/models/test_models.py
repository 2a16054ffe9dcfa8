"""The model registry: every entry builds, takes uint8, outputs the right shape; course parameter counts."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest

from imgclf.errors import ImgclfError
from imgclf.models import create_model, get_model_spec, list_models


@pytest.mark.parametrize(
    "name,input_shape,num_classes,class_mode,params",
    [
        ("course_small", (150, 150, 3), 2, "binary", 9_494_561),  # course notebook summary
        ("chollet", (150, 150, 3), 2, "binary", 3_453_121),  # Deep Learning with Python 5.2
        ("course_28", (28, 28, 1), 10, "categorical", 243_786),  # Fashion-MNIST ConvNet, course 1 week 3
    ],
)
def test_course_parameter_counts(name, input_shape, num_classes, class_mode, params):
    assert create_model(name, input_shape, num_classes, class_mode).count_params() == params


@pytest.mark.parametrize("name", list_models())
def test_every_registry_model(name):
    spec = get_model_spec(name)
    channels = 1 if spec.default_color_mode == "grayscale" else 3
    shape = (*spec.default_target_size, channels)
    binary = create_model(name, shape, 2, "binary")
    multi = create_model(name, spec.min_size + (channels,), 4, "categorical")
    assert binary.input.dtype == "uint8"
    assert tuple(binary.output.shape) == (None, 1)
    assert tuple(multi.output.shape) == (None, 4)
    x = np.random.default_rng(0).integers(0, 256, (2, *spec.min_size, channels), dtype=np.uint8)
    p = np.asarray(multi(x))
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)  # softmax probabilities
    with pytest.raises(ImgclfError, match=f"too small for model '{name}'"):
        create_model(name, (spec.min_size[0] - 1, spec.min_size[1], channels), 2, "binary")


def test_rescaling_inside_model():
    m = create_model("course_small", (32, 32, 3), 2, "binary")
    assert m.layers[1].name == "rescale"
    white = np.full((1, 32, 32, 3), 255, np.uint8)
    np.testing.assert_allclose(np.asarray(m.layers[1](white)), 1.0)


def test_unknown_model():
    known = r"name must be one of \[.*'course_small'.*'squeezenet1_1'.*\]. Received: 'resnet9000'"
    with pytest.raises(ImgclfError, match=known):
        create_model("resnet9000", (32, 32, 3), 2, "binary")


def test_mixed_bfloat16_precision():
    import keras

    m = create_model("course_small", (32, 32, 3), 3, "categorical", precision="mixed_bfloat16")
    assert m.get_layer("conv_1").dtype_policy.name == "mixed_bfloat16"
    assert m.get_layer("conv_1").compute_dtype == "bfloat16" and m.get_layer("conv_1").variable_dtype == "float32"
    assert m.get_layer("output").compute_dtype == "float32"  # probabilities and loss stay float32
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    p = np.asarray(m(np.zeros((2, 32, 32, 3), np.uint8)))
    assert p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-5)


def test_precision_names():
    from imgclf.models import resolve_precision

    assert resolve_precision("float32") == "float32"
    from imgclf.models import precision

    for has_bf16, expected in ((True, "mixed_bfloat16"), (False, "float32")):
        with mock.patch.object(precision, "cpu_has_bf16", return_value=has_bf16):
            assert resolve_precision("auto") == expected
    assert resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ImgclfError, match=r"precision must be one of \['float32', 'mixed_bfloat16', 'auto'\]"):
        resolve_precision("float16")


def test_one_create_model_for_convnets_and_backbones():
    from imgclf.models.backbones import list_backbones

    convnet = create_model("course_small", (32, 32, 3), 2, "binary")
    transfer = create_model("squeezenet1_1", (48, 48, 3), 3, "categorical", pretrained=None, head="gap")
    assert convnet.get_layer("rescale") and transfer.get_layer("preprocess")
    assert tuple(transfer.output.shape) == (None, 3) and "squeezenet1_1" in list_backbones()
    with pytest.raises(ImgclfError, match="has no pretrained weights"):
        create_model("course_small", (32, 32, 3), 2, "binary", pretrained="imagenet")
