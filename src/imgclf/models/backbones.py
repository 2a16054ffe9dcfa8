"""Pretrained backbones for transfer learning: a registry (data + one builder per entry, as timm's).

Each entry knows its builder, its input preprocessing (done *inside* the model, so a saved model takes raw
uint8 pixels), its default input size and cut layer, and where its ImageNet weights come from. Weights are
``"imagenet"`` (downloaded once into the imgclf cache and checked against the hash the Keras sources
publish, or the one pinned on first download), a local file path, or ``None`` (random initialisation).

The backbone's layers are built on the model's own input tensor, so the whole classifier is one flat Keras
graph: any layer can be the cut, frozen, fine-tuned, or used by Grad-CAM.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
from keras import layers

from imgclf.errors import ImgclfError

_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


@keras.saving.register_keras_serializable(package="imgclf")
class Preprocess(layers.Layer):
    """Turn raw 0-255 pixels into what a backbone was trained on (Keras ``imagenet_utils.preprocess_input``).

    Modes: ``"tf"`` scales to [-1, 1]; ``"caffe"`` reverses RGB to BGR and subtracts the ImageNet channel means
    (103.939, 116.779, 123.68); ``"none"`` passes 0-255 floats (backbones that preprocess themselves).

    Input: ``(batch, height, width, 3)`` any numeric dtype. Output: the same shape, float.
    """

    MEANS_BGR = (103.939, 116.779, 123.68)

    def __init__(self, mode: str = "tf", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("tf", "caffe", "none"):
            raise ImgclfError(f"preprocessing mode must be 'tf', 'caffe' or 'none'. Received: {mode!r}")
        self.mode = mode

    def call(self, x):
        x = keras.ops.cast(x, self.compute_dtype)
        if self.mode == "tf":
            return x / 127.5 - 1.0
        if self.mode == "caffe":
            x = keras.ops.flip(x, axis=-1)
            return x - keras.ops.convert_to_tensor(self.MEANS_BGR, dtype=self.compute_dtype)
        return x

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@dataclass(frozen=True)
class BackboneSpec:
    """A registry entry.

    Attributes:
        name: registry name (``--backbone``).
        build: ``build(input_tensor) -> keras.Model`` built on that tensor, ``include_top=False``, no weights.
        preprocess: :class:`Preprocess` mode.
        default_size: ``(height, width)`` in pixels it was trained at.
        cut_layer: default layer whose output the head takes (``None``: the last layer).
        weights_url: canonical ImageNet no-top weight file.
        weights_hash: its published hash (32 hex = MD5 as in the Keras sources, 64 = SHA-256), or ``None``.
        min_size: smallest input side in pixels.
        source: where the architecture and weights come from.
    """

    name: str
    build: Callable
    preprocess: str
    default_size: tuple[int, int]
    cut_layer: str | None
    weights_url: str
    weights_hash: str | None
    min_size: int
    source: str


def _app(factory: str, **kwargs):
    def build(tensor):
        return getattr(keras.applications, factory)(include_top=False, weights=None, input_tensor=tensor, **kwargs)

    return build


def fire(x, name: str, squeeze: int, expand: int):
    """SqueezeNet fire module: 1x1 squeeze, then 1x1 and 3x3 expands concatenated (Iandola et al. 2016)."""
    s = layers.Conv2D(squeeze, 1, activation="relu", name=f"{name}_squeeze1x1")(x)
    e1 = layers.Conv2D(expand, 1, activation="relu", name=f"{name}_expand1x1")(s)
    e3 = layers.Conv2D(expand, 3, padding="same", activation="relu", name=f"{name}_expand3x3")(s)
    return layers.Concatenate(axis=-1, name=f"{name}_concat")([e1, e3])


def squeezenet1_1(tensor) -> keras.Model:
    """SqueezeNet v1.1 without its classifier, laid out as the weight file in ``../shared/weights``.

    Source: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters", 2016, v1.1 from
    DeepScale's Caffe release, as converted by rcmalli/keras-squeezenet (MIT). Layer names use ``_`` where
    the file uses ``/`` (Keras 3 refuses ``/``): ``fire2/squeeze1x1`` → ``fire2_squeeze1x1``.
    """
    x = layers.Conv2D(64, 3, strides=2, padding="valid", activation="relu", name="conv1")(tensor)
    x = layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    x = fire(x, "fire2", 16, 64)
    x = fire(x, "fire3", 16, 64)
    x = layers.MaxPooling2D(3, strides=2, name="pool3")(x)
    x = fire(x, "fire4", 32, 128)
    x = fire(x, "fire5", 32, 128)
    x = layers.MaxPooling2D(3, strides=2, name="pool5")(x)
    for name, s, e in (("fire6", 48, 192), ("fire7", 48, 192), ("fire8", 64, 256), ("fire9", 64, 256)):
        x = fire(x, name, s, e)
    return keras.Model(keras.utils.get_source_inputs(tensor), x, name="squeezenet1_1")


BACKBONES: dict[str, BackboneSpec] = {
    spec.name: spec
    for spec in (
        BackboneSpec("inception_v3", _app("InceptionV3"), "tf", (150, 150), "mixed7",
                     _KERAS_APPS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     "bcbd6486424b2319ff4ef7d526e38f63", 75, "Szegedy et al. 2016; keras.applications; cut at mixed7 as in the course"),
        BackboneSpec("mobilenet_v2", _app("MobileNetV2"), "tf", (224, 224), None,
                     _KERAS_APPS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
                     None, 32, "Sandler et al. 2018; keras.applications"),
        BackboneSpec("mobilenet_v3_small", _app("MobileNetV3Small", include_preprocessing=True), "none", (224, 224), None,
                     _KERAS_APPS + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
                     "d3e8ec802a04aa4fc771ee12a9a9b836", 32, "Howard et al. 2019; keras.applications"),
        BackboneSpec("mobilenet_v3_large", _app("MobileNetV3Large", include_preprocessing=True), "none", (224, 224), None,
                     _KERAS_APPS + "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
                     "07fb09a5933dd0c8eaafa16978110389", 32, "Howard et al. 2019; keras.applications"),
        BackboneSpec("resnet50", _app("ResNet50"), "caffe", (224, 224), None,
                     _KERAS_APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     "4d473c1dd8becc155b73f8504c6f6626", 32, "He et al. 2016; keras.applications"),
        BackboneSpec("efficientnet_b0", _app("EfficientNetB0"), "none", (224, 224), None,
                     "https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
                     "50bc09e76180e00e4465e1a485ddc09d", 32, "Tan and Le 2019; keras.applications (rescales inside)"),
        BackboneSpec("vgg16", _app("VGG16"), "caffe", (224, 224), None,
                     _KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     "6d6bbae143d832006294945121d1f1fc", 32, "Simonyan and Zisserman 2015; keras.applications"),
        BackboneSpec("squeezenet1_1", squeezenet1_1, "caffe", (227, 227), None,
                     "https://github.com/rcmalli/keras-squeezenet/releases/download/v1.0/"
                     "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5",
                     "17154246284f555591549ac2c83e127abfbf4307dc4b0060fdaa2931d0fa38da", 32,
                     "Iandola et al. 2016, v1.1; weights rcmalli/keras-squeezenet (MIT)"),
    )
}  # fmt: skip


def list_backbones() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(BACKBONES)


def get_backbone(name: str) -> BackboneSpec:
    """The registry entry ``name``.

    Raises:
        ImgclfError: unknown name.
    """
    if name not in BACKBONES:
        raise ImgclfError(f"backbone must be one of {list_backbones()}. Received: {name!r}")
    return BACKBONES[name]


def weights_file(spec: BackboneSpec, weights: str | os.PathLike | None, data_home=None) -> Path | None:
    """The weight file for ``weights``: ``None``, a local path, or ``"imagenet"`` (cached download).

    Raises:
        ImgclfError: a local path that does not exist, or a download that fails or fails its checksum.
    """
    if weights is None or str(weights).lower() == "none":
        return None
    if str(weights) != "imagenet":
        path = Path(weights).expanduser()
        if not path.is_file():
            raise ImgclfError(
                f"weights must be 'imagenet', 'none' or an existing weight file. Received: {str(weights)!r}"
            )
        return path
    from imgclf.data.cache import imgclf_home
    from imgclf.data.datasets import RemoteFile, fetch_file

    home = Path(data_home or imgclf_home())
    return fetch_file(RemoteFile((spec.weights_url,), spec.weights_hash), home / "weights")


def load_backbone_weights(model: keras.Model, path: Path) -> None:
    """Load a Keras HDF5 weight file into the backbone layers of ``model``, matching layers by name.

    Names are compared with ``/`` read as ``_`` (Keras 3 refuses ``/`` in layer names). Every layer in the
    file that has weights must be found, with the same shapes.

    Raises:
        ImgclfError: a layer of the file is missing from the model, or a shape differs.
    """
    import h5py
    import numpy as np

    by_name = {layer.name: layer for layer in model.layers}
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ImgclfError(f"cannot read weight file {str(path)!r}: {exc}") from None
    with f:
        group = f["model_weights"] if "model_weights" in f else f
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        for name in names:
            g = group[name]
            weight_names = [w.decode() if isinstance(w, bytes) else w for w in g.attrs.get("weight_names", [])]
            if not weight_names:
                continue
            layer = by_name.get(name.replace("/", "_"))
            if layer is None:
                raise ImgclfError(f"weight file {Path(path).name} has layer {name!r}, which the model lacks.")
            values = [np.asarray(g[w]) for w in weight_names]
            expected = [tuple(v.shape) for v in layer.get_weights()]
            if [tuple(v.shape) for v in values] != expected:
                raise ImgclfError(
                    f"layer {name!r} of {Path(path).name} has shapes {[v.shape for v in values]}, expected {expected}."
                )
            layer.set_weights(values)
