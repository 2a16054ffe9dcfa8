"""Registry plumbing: ``@register_model`` fills a table of keyword specs that ``list_models``,
``get_model_spec`` and ``build_convnet`` read (as timm does; backbones are registered the same way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras

from imgclf.errors import ImgclfError, check_one_of
from imgclf.models.precision import OUTPUT_LAYER, resolve_precision, with_precision
from imgclf.settings import DEFAULT_INTERPOLATION


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows of a model.

    Attributes:
        name: registry name (``--model``).
        build_body: returns the hidden layers, between rescaling and the output layer.
        description: one line for ``imgclf models``.
        default_target_size: ``(height, width)`` in pixels the model was designed for.
        default_color_mode: ``"rgb"`` or ``"grayscale"``.
        min_size: smallest ``(height, width)`` whose feature maps do not vanish.
        source: where the exact layers come from.
        default_interpolation: the resize filter it trains best with (``interpolation`` when none is given).
    """

    name: str
    build_body: Callable[[], list]
    description: str
    default_target_size: tuple[int, int]
    default_color_mode: str
    min_size: tuple[int, int]
    source: str
    default_interpolation: str = DEFAULT_INTERPOLATION


_MODELS: dict[str, ModelSpec] = {}


def register_model(name, *, description, default_target_size, min_size, source, default_color_mode="rgb",
                   default_interpolation=DEFAULT_INTERPOLATION):  # fmt: skip
    """Decorator registering a function that returns the hidden layers of a model: a list of layers applied in
    turn, or a function from the rescaled input tensor to the last hidden tensor (a network with branches)."""

    def wrap(fn):
        _MODELS[name] = ModelSpec(name, fn, description, default_target_size, default_color_mode, min_size, source,
                                  default_interpolation)  # fmt: skip
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of the registered models, sorted."""
    return sorted(_MODELS)


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``.

    Raises:
        ImgclfError: unknown model name.
    """
    check_one_of("model", name, list_models())
    return _MODELS[name]


def output_layer(num_classes: int, class_mode: str) -> keras.layers.Dense:
    """The output layer: ``Dense(1, sigmoid)`` for ``binary``, ``Dense(classes, softmax)`` otherwise.

    It always computes in float32, so probabilities and the loss keep full precision under a mixed
    policy (Keras mixed-precision guide).
    """
    if class_mode == "binary":
        return keras.layers.Dense(1, activation="sigmoid", name=OUTPUT_LAYER, dtype="float32")
    return keras.layers.Dense(num_classes, activation="softmax", name=OUTPUT_LAYER, dtype="float32")


def build_convnet(
    name: str, input_shape: tuple[int, int, int], num_classes: int, class_mode: str, precision: str = "float32"
) -> keras.Model:
    """Build a registered model.

    The model takes raw pixels ``(batch, height, width, channels)`` uint8 (0-255), rescales them
    by 1/255 with a ``Rescaling`` layer, runs the registered layers, and ends in
    :func:`output_layer`. It outputs probabilities float32: ``(batch, 1)`` for ``binary``
    (probability of ``class_names[1]``), ``(batch, num_classes)`` otherwise.

    Args:
        name: a name from :func:`list_models`.
        input_shape: ``(height, width, channels)``; channels 3 (rgb) or 1 (grayscale).
        num_classes: number of classes, at least 2.
        class_mode: ``"binary"``, ``"categorical"`` or ``"sparse"``.
        precision: ``"float32"`` (default), ``"mixed_bfloat16"`` (layers compute in bfloat16 and keep
            float32 weights; ~1.5x faster training on CPUs with AMX/AVX512-BF16) or ``"auto"``
            (:func:`resolve_precision`).

    Raises:
        ImgclfError: unknown name or precision, or an input smaller than the model's ``min_size``.
    """
    spec = get_model_spec(name)
    height, width, _ = input_shape
    if height < spec.min_size[0] or width < spec.min_size[1]:
        raise ImgclfError(
            f"target_size {(height, width)} is too small for model {name!r}: expected at least {spec.min_size} pixels."
        )
    resolve_precision(precision)  # a bad name fails before anything is built
    inputs = keras.Input(shape=tuple(input_shape), dtype="uint8", name="image")
    x = keras.layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    body = spec.build_body()
    if callable(body):
        x = body(x)
    else:
        for layer in body:
            x = layer(x)
    outputs = output_layer(num_classes, class_mode)(x)
    return with_precision(keras.Model(inputs, outputs, name=name), precision)


def count_parameters(name: str, num_classes: int = 2) -> int:
    """Weights of registered model ``name`` at its default input size (binary output for 2 classes)."""
    spec = get_model_spec(name)
    mode = "binary" if num_classes == 2 else "categorical"
    channels = 1 if spec.default_color_mode == "grayscale" else 3
    return build_convnet(name, (*spec.default_target_size, channels), num_classes, mode).count_params()
