"""One entry point for every registered architecture, timm-style: ``create_model(name, ..., pretrained=...)``.

``name`` is a course ConvNet (:func:`imgclf.models.list_models`) or a pretrained backbone
(:func:`imgclf.models.backbones.list_backbones`), which gets a new head (:mod:`imgclf.models.transfer`).
"""

from __future__ import annotations

import os

import keras

from imgclf.errors import ImgclfError
from imgclf.models._registry import build_convnet, list_models
from imgclf.models.backbones import BACKBONES, list_backbones
from imgclf.models.transfer import create_transfer_model


def create_model(
    name: str,
    input_shape: tuple[int, int, int],
    num_classes: int,
    class_mode: str,
    precision: str = "float32",
    *,
    pretrained: str | os.PathLike | None = None,
    cut_layer: str | None = None,
    head: str = "course",
    dropout: float = 0.2,
) -> keras.Model:
    """Build a registered model that takes raw uint8 pixels ``(batch, height, width, channels)`` and returns
    probabilities float32 (``(batch, 1)`` for ``binary``, else ``(batch, num_classes)``).

    Args:
        name: a ConvNet (:func:`imgclf.models.list_models`) or a backbone
            (:func:`imgclf.models.backbones.list_backbones`).
        input_shape: ``(height, width, channels)``.
        num_classes: number of classes, at least 2.
        class_mode: ``"binary"``, ``"categorical"`` or ``"sparse"``.
        precision: ``"float32"``, ``"mixed_bfloat16"`` or ``"auto"`` (set per layer).
        pretrained: a backbone's weights: ``"imagenet"`` (cached, checksummed download), a local weight file, or
            ``None`` (random). ConvNets are never pretrained.
        cut_layer: the backbone's layer the head goes on (see :func:`imgclf.models.transfer.create_transfer_model`).
        head: the head's kind (``course``, ``gap``...; same function).
        dropout: the head's dropout rate (same function).

    Raises:
        ImgclfError: unknown name, ``pretrained`` for a ConvNet, or as the builders raise.
    """
    if name in BACKBONES:
        return create_transfer_model(name, input_shape, num_classes, class_mode, weights=pretrained,
                                     cut_layer=cut_layer, head=head, dropout=dropout, precision=precision)  # fmt: skip
    if name in list_models():
        if pretrained is not None:
            raise ImgclfError(f"model {name!r} has no pretrained weights. Received: pretrained={str(pretrained)!r}")
        return build_convnet(name, input_shape, num_classes, class_mode, precision)
    raise ImgclfError(f"name must be one of {list_models() + list_backbones()}. Received: {name!r}")
