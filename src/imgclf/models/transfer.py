"""Transfer learning: a pretrained backbone, cut at a layer, frozen, with a new head.

The course's Week 3 recipe, for any registered backbone: InceptionV3 without its top, ImageNet weights from a
local file, every layer frozen, cut at ``mixed7``, then Flatten → Dense 1024 relu → Dropout 0.2 → output.
BatchNormalization layers stay in inference mode, frozen or fine-tuned (the Keras transfer-learning guide).
"""

from __future__ import annotations

import os
from itertools import dropwhile

import keras
from keras import layers

from imgclf.errors import ImgclfError
from imgclf.models._registry import output_layer
from imgclf.models.backbones import (
    fold_bgr_into_first_conv,
    get_backbone,
    preprocessing_layer,
    weights_file,
)
from imgclf.models.precision import resolve_precision, with_precision
from imgclf.settings import HEADS

#: Names given to the head's layers, so a saved model's head can be found again.
HEAD_PREFIX = "head_"


def add_head(features, head: str, dropout: float, num_classes: int, class_mode: str):
    """Put a classifier head on a feature tensor.

    ``course``: Flatten → Dense(1024, relu) → Dropout(``dropout``) → output (the course's Week 3 head);
    ``gap``: GlobalAveragePooling2D → Dropout(``dropout``) → output;
    ``prototypes``: GlobalMaxPooling2D → UnitNormalization → output, whose kernel the class prototypes become
    (:mod:`imgclf.features.prototypes`; no dropout; max pooling: 0.927 against 0.909 for average pooling with 10
    images a class of cats_and_dogs_filtered, bench/README.md).
    """
    if head == "course":
        x = layers.Flatten(name=f"{HEAD_PREFIX}flatten")(features)
        x = layers.Dense(1024, activation="relu", name=f"{HEAD_PREFIX}dense")(x)
    elif head == "gap":
        x = layers.GlobalAveragePooling2D(name=f"{HEAD_PREFIX}pool")(features)
    elif head == "prototypes":
        x = layers.GlobalMaxPooling2D(name=f"{HEAD_PREFIX}pool")(features)
        return output_layer(num_classes, class_mode)(layers.UnitNormalization(name=f"{HEAD_PREFIX}unit")(x))
    else:
        raise ImgclfError(f"head must be one of {list(HEADS)}. Received: {head!r}")
    x = layers.Dropout(dropout, name=f"{HEAD_PREFIX}dropout")(x)
    return output_layer(num_classes, class_mode)(x)


def create_transfer_model(
    backbone: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    class_mode: str,
    *,
    weights: str | os.PathLike | None = "imagenet",
    cut_layer: str | None = None,
    head: str = "course",
    dropout: float = 0.2,
    precision: str = "float32",
) -> keras.Model:
    """A frozen pretrained backbone with a new head, taking raw uint8 pixels.

    Args:
        backbone: a name from :func:`imgclf.models.backbones.list_backbones`.
        input_shape: ``(height, width, 3)``.
        num_classes, class_mode: as for :func:`imgclf.models.create_model`.
        weights: ``"imagenet"`` (cached download), a local weight file, or ``None`` (random).
        cut_layer: layer whose output feeds the head; default the backbone's (``mixed7`` for
            InceptionV3, the last layer otherwise).
        head: ``"course"`` or ``"gap"`` (see :func:`add_head`).
        dropout: dropout rate of the head.
        precision: ``float32``, ``mixed_bfloat16`` or ``auto``.

    Returns:
        The model: ``image`` (uint8) → ``preprocess`` → backbone layers (all frozen) → head.

    Raises:
        ImgclfError: unknown backbone or head, a cut layer the backbone lacks, grayscale input, a size
            below the backbone's minimum, or unusable weights.
    """
    spec = get_backbone(backbone)
    height, width, depth = input_shape
    if depth != 3:
        raise ImgclfError(f"backbone {backbone!r} needs RGB images (color_mode='rgb'). Received: {depth} channel(s)")
    if min(height, width) < spec.min_size:
        raise ImgclfError(
            f"target_size {(height, width)} is too small for backbone {backbone!r}: "
            f"expected at least {spec.min_size} pixels."
        )
    if not 0 <= dropout < 1:
        raise ImgclfError(f"dropout must be in [0, 1). Received: {dropout!r}")
    resolve_precision(precision)  # a bad name fails before anything is built or downloaded
    path = weights_file(spec, weights)
    inputs = keras.Input(shape=tuple(input_shape), dtype="uint8", name="image")
    base = spec.build(preprocessing_layer(spec.preprocess)(inputs))
    if path is not None:
        spec.load_weights(base, path)
        if spec.preprocess == "caffe":
            fold_bgr_into_first_conv(base)
    cut = cut_layer or spec.cut_layer
    if cut is not None:
        try:
            features = base.get_layer(cut).output
        except ValueError:
            raise ImgclfError(f"cut_layer {cut!r} is not a layer of {backbone}.") from None
    else:
        features = base.output
    for layer in base.layers:
        layer.trainable = False
    outputs = add_head(features, head, dropout, num_classes, class_mode)
    return with_precision(keras.Model(inputs, outputs, name=f"{backbone}_{head}"), precision)


def split_at_features(model: keras.Model, pooled: bool = False) -> tuple[keras.Model, keras.Model]:
    """Split a transfer model into ``(feature_extractor, head)`` sharing its layers.

    ``feature_extractor`` maps uint8 images to the cut layer's output; ``head`` maps those features to
    the probabilities. Training ``head`` trains the full model's head (the layers are the same objects).
    With ``pooled``, a global pooling layer that opens the head (``gap``, ``prototypes``) goes to the extractor:
    it has no weights and behaves the same in training, so the features are ``(n, channels)`` instead of
    ``(n, h, w, channels)`` (SqueezeNet at 227: 512 floats an image instead of 86,528) and the head's epochs
    read 169x less.
    """
    head_layers = list(dropwhile(lambda layer: not layer.name.startswith(HEAD_PREFIX), model.layers))
    if pooled and isinstance(head_layers[0], (layers.GlobalAveragePooling2D, layers.GlobalMaxPooling2D)):
        head_layers = head_layers[1:]
    features = head_layers[0].input
    extractor = keras.Model(model.input, features, name="features")
    feature_input = keras.Input(shape=tuple(features.shape[1:]), name="features_in")
    x = feature_input
    for layer in head_layers:
        x = layer(x)
    return extractor, keras.Model(feature_input, x, name="head")


def unfreeze_top(model: keras.Model, count: int | None = None, from_layer: str | None = None) -> list[str]:
    """Make backbone layers trainable for fine-tuning: the top ``count`` layers that have weights, or every
    layer from ``from_layer`` on. BatchNormalization layers stay frozen (inference mode).

    Returns:
        The names of the layers made trainable.

    Raises:
        ImgclfError: ``from_layer`` is not in the model, or ``count`` is not positive.
    """
    backbone = [layer for layer in model.layers if not layer.name.startswith(HEAD_PREFIX) and layer.name != "output"]
    if from_layer is not None:
        names = [layer.name for layer in backbone]
        if from_layer not in names:
            raise ImgclfError(f"fine_tune_from layer {from_layer!r} is not a backbone layer of {model.name}.")
        chosen = backbone[names.index(from_layer) :]
    else:
        if count is None or count < 1:
            raise ImgclfError(f"fine_tune must be a positive number of layers. Received: {count!r}")
        with_weights = [layer for layer in backbone if layer.weights]
        chosen = with_weights[-count:]
    opened = []
    for layer in chosen:
        if isinstance(layer, layers.BatchNormalization) or not layer.weights:
            continue
        layer.trainable = True
        opened.append(layer.name)
    return opened
