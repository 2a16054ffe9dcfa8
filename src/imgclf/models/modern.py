"""Small from-scratch models of today's design, next to the course's exact ConvNets.

Both use BatchNormalization (Ioffe & Szegedy 2015), residual connections (He et al. 2016) and global average
pooling instead of a large Flatten + Dense head, so they have a tenth of ``course_small``'s weights and keep
learning where the course ConvNets over-fit. They take the same uint8 input, rescaled by 1/255 in the model, and
end in the same output layer; every layer is a stock Keras layer, so the saved ``.keras`` file loads in plain
Keras with ``safe_mode``. They resize with antialiased ``bilinear`` by default (their default ``interpolation``).

- ``resnet_small``: the DAWNBench ResNet-9 of D. Page ("How to train your ResNet", 2018), narrowed for 2 CPU
  cores and given a stride-2 stem for 96-160 px photographs.
- ``mini_xception``: the small Xception of F. Chollet's Keras example "Image classification from scratch" and
  *Deep Learning with Python*, 2nd ed., ch. 9 (separable convolutions, residual blocks).
"""

from __future__ import annotations

from keras import layers

from imgclf.models._registry import register_model


def _conv_bn(x, filters: int, name: str, strides: int = 1):
    """3x3 convolution (no bias), BatchNormalization, ReLU."""
    x = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def _residual(x, filters: int, name: str):
    """Two conv-BN-ReLU layers added to their input (Page's ``Residual``)."""
    y = _conv_bn(x, filters, f"{name}a")
    y = _conv_bn(y, filters, f"{name}b")
    return layers.Add(name=f"{name}_add")([x, y])


def resnet_small_body(width: int = 16):
    """The body of ``resnet_small``: ``x -> features`` for a rescaled input ``(batch, h, w, 3)``; the output is
    ``(batch, 8 * width)`` after global average pooling and dropout 0.2."""

    def body(x):
        x = _conv_bn(x, width, "stem", strides=2)  # /2
        x = _conv_bn(x, 2 * width, "layer1")
        x = layers.MaxPooling2D(2, name="layer1_pool")(x)  # /4
        x = _residual(x, 2 * width, "res1")
        x = _conv_bn(x, 4 * width, "layer2")
        x = layers.MaxPooling2D(2, name="layer2_pool")(x)  # /8
        x = _conv_bn(x, 8 * width, "layer3")
        x = layers.MaxPooling2D(2, name="layer3_pool")(x)  # /16
        x = _residual(x, 8 * width, "res3")
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        return layers.Dropout(0.2, name="dropout")(x)

    return body


def mini_xception_body(width: int = 32):
    """The body of ``mini_xception``: ``x -> features`` for a rescaled input; the output is ``(batch, 8 * width)``
    after global average pooling and dropout 0.25."""

    def body(x):
        x = layers.Conv2D(width, 5, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
        for i, filters in enumerate((width, 2 * width, 4 * width, 8 * width), start=1):
            shortcut = x
            for j in "ab":
                x = layers.BatchNormalization(name=f"block{i}{j}_bn")(x)
                x = layers.ReLU(name=f"block{i}{j}_relu")(x)
                x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}{j}_sepconv")(x)
            x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"block{i}_pool")(x)
            shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False,
                                     name=f"block{i}_shortcut")(shortcut)  # fmt: skip
            x = layers.Add(name=f"block{i}_add")([x, shortcut])
        x = layers.BatchNormalization(name="top_bn")(x)
        x = layers.ReLU(name="top_relu")(x)
        x = layers.GlobalAveragePooling2D(name="gap")(x)
        return layers.Dropout(0.25, name="dropout")(x)

    return body


@register_model(
    "resnet_small",
    description="ResNet-9 (Page 2018) at width 16: BatchNorm, 2 residual blocks, global average pooling",
    default_target_size=(96, 96),
    min_size=(16, 16),
    source="D. Page, How to train your ResNet (2018), DAWNBench ResNet-9; narrowed, stride-2 stem",
    default_interpolation="bilinear",
)
def resnet_small():
    return resnet_small_body(16)


@register_model(
    "mini_xception",
    description="Mini-Xception: separable convolutions 32-64-128-256, residual blocks, global average pooling",
    default_target_size=(128, 128),
    min_size=(32, 32),
    source="F. Chollet, Keras example 'Image classification from scratch'; Deep Learning with Python 2nd ed., ch. 9",
    default_interpolation="bilinear",
)
def mini_xception():
    return mini_xception_body(32)
