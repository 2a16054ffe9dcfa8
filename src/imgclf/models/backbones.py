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

from imgclf.errors import ImgclfError, check_one_of
from imgclf.settings import DEFAULT_TARGET_SIZE

_KERAS_APPS = "https://storage.googleapis.com/tensorflow/keras-applications/"


#: ImageNet channel means in RGB order, 0-255 scale (Keras ``imagenet_utils.preprocess_input``, mode "caffe").
IMAGENET_MEANS_RGB = (123.68, 116.779, 103.939)
#: Input preprocessing modes of the backbones (Keras ``imagenet_utils.preprocess_input`` names).
PREPROCESS_MODES = ("tf", "caffe", "none")


def preprocessing_layer(mode: str) -> layers.Layer:
    """A stock Keras layer turning raw 0-255 pixels into what a backbone was trained on.

    Modes (Keras ``imagenet_utils.preprocess_input``): ``"tf"`` scales to [-1, 1] (``Rescaling(1/127.5,
    offset=-1)``); ``"caffe"`` subtracts the ImageNet channel means (``Rescaling(1, offset=-means)`` with
    :data:`IMAGENET_MEANS_RGB` per channel: constants that stay inside exported graphs, where
    ``Normalization``'s would become extra ONNX inputs) — caffe's RGB-to-BGR swap is folded into the first convolution's
    kernel when its weights are loaded (:func:`fold_bgr_into_first_conv`), so no custom layer is needed;
    ``"none"`` only casts to float (backbones that preprocess themselves).

    Input: ``(batch, height, width, 3)`` uint8. Output: the same shape, float.

    Raises:
        ImgclfError: unknown ``mode``.
    """
    if mode == "tf":
        return layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess")
    if mode == "caffe":
        return layers.Rescaling(1.0, offset=[-m for m in IMAGENET_MEANS_RGB], name="preprocess")
    if mode == "none":
        return layers.Rescaling(1.0, name="preprocess")
    raise ImgclfError(f"preprocessing mode must be one of {list(PREPROCESS_MODES)}. Received: {mode!r}")


def fold_bgr_into_first_conv(model: keras.Model) -> str:
    """Reverse the input-channel axis of the first convolution's kernel, in place.

    Caffe-trained weights expect BGR input; ``conv(flip(x), K) == conv(x, flip(K))`` along the channel axis,
    so flipping the kernel once lets the model take RGB (zero padding before the convolution is the same in
    either order). Returns the layer's name.
    """
    conv = next(layer for layer in model.layers if isinstance(layer, layers.Conv2D))
    kernel, *rest = conv.get_weights()
    conv.set_weights([kernel[:, :, ::-1, :], *rest])
    return conv.name


@dataclass(frozen=True)
class BackboneSpec:
    """A registry entry.

    Attributes:
        name: registry name (``--backbone``).
        build: ``build(input_tensor) -> keras.Model`` built on that tensor, ``include_top=False``, no weights.
        preprocess: :func:`preprocessing_layer` mode.
        default_size: ``(height, width)`` in pixels it was trained at.
        cut_layer: default layer whose output the head takes (``None``: the last layer).
        params: parameters of the backbone up to its cut layer at ``default_size`` (checked by a test).
        weights_url: canonical ImageNet no-top weight file.
        weights_hash: its published hash (32 hex = MD5 as in the Keras sources, 64 = SHA-256), or ``None``
            (then the first download's SHA-256 is pinned in the cache).
        load_weights: ``load_weights(model, path)`` puts a weight file into the backbone built by ``build``.
        min_size: smallest input side in pixels.
        source: where the architecture and weights come from.
        default_head: the head it gets when none is given (:func:`imgclf.models.transfer.add_head`): ``"course"``
            for InceptionV3 at ``mixed7`` (the course's), ``"gap"`` for the others — a Flatten of a wide, late
            feature map into Dense 1024 gives SqueezeNet an 88.6 M-parameter head on a 0.7 M backbone, ~55 s per
            epoch on cached features and 0.946-0.957 validation accuracy, where ``gap`` reaches 0.973 at ~1 s per
            epoch (cats_and_dogs_filtered, 2 cores; issue 23).
    """

    name: str
    build: Callable
    preprocess: str
    default_size: tuple[int, int]
    params: int
    weights_url: str
    source: str
    load_weights: Callable
    cut_layer: str | None = None
    weights_hash: str | None = None
    min_size: int = 32
    default_head: str = "gap"


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


def _keras_weights(model: keras.Model, path: Path) -> None:
    """Load a Keras application's weight file (``Model.load_weights``, HDF5 by layer order)."""
    try:
        model.load_weights(path)
    except (ValueError, OSError) as exc:
        raise ImgclfError(f"cannot load {Path(path).name} into {model.name}: {exc}") from None


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(**spec) -> BackboneSpec:
    """Add a :class:`BackboneSpec` (keyword fields; ``load_weights`` defaults to Keras' ``load_weights``) to the
    registry, as ``@register_model`` does for the ConvNets. Returns the spec."""
    entry = BackboneSpec(**{"load_weights": _keras_weights, **spec})
    BACKBONES[entry.name] = entry
    return entry


register_backbone(
    name="inception_v3",
    build=_app("InceptionV3"),
    preprocess="tf",
    default_size=DEFAULT_TARGET_SIZE,
    cut_layer="mixed7",
    default_head="course",
    params=8_975_264,
    min_size=75,
    weights_url=_KERAS_APPS + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5",
    weights_hash="bcbd6486424b2319ff4ef7d526e38f63",
    source="Szegedy et al. 2016; keras.applications; cut at mixed7 as in the course",
)
register_backbone(
    name="mobilenet_v2",
    build=_app("MobileNetV2"),
    preprocess="tf",
    default_size=(224, 224),
    params=2_257_984,
    weights_url=_KERAS_APPS + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5",
    source="Sandler et al. 2018; keras.applications",
)
register_backbone(
    name="mobilenet_v3_small",
    build=_app("MobileNetV3Small", include_preprocessing=True),
    preprocess="none",
    default_size=(224, 224),
    params=939_120,
    weights_url=_KERAS_APPS + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
    weights_hash="d3e8ec802a04aa4fc771ee12a9a9b836",
    source="Howard et al. 2019; keras.applications",
)
register_backbone(
    name="mobilenet_v3_large",
    build=_app("MobileNetV3Large", include_preprocessing=True),
    preprocess="none",
    default_size=(224, 224),
    params=2_996_352,
    weights_url=_KERAS_APPS + "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
    weights_hash="07fb09a5933dd0c8eaafa16978110389",
    source="Howard et al. 2019; keras.applications",
)
register_backbone(
    name="resnet50",
    build=_app("ResNet50"),
    preprocess="caffe",
    default_size=(224, 224),
    params=23_587_712,
    weights_url=_KERAS_APPS + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
    weights_hash="4d473c1dd8becc155b73f8504c6f6626",
    source="He et al. 2016; keras.applications",
)
register_backbone(
    name="efficientnet_b0",
    build=_app("EfficientNetB0"),
    preprocess="none",
    default_size=(224, 224),
    params=4_049_571,
    weights_url="https://storage.googleapis.com/keras-applications/efficientnetb0_notop.h5",
    weights_hash="50bc09e76180e00e4465e1a485ddc09d",
    source="Tan and Le 2019; keras.applications (rescales inside)",
)
register_backbone(
    name="vgg16",
    build=_app("VGG16"),
    preprocess="caffe",
    default_size=(224, 224),
    params=14_714_688,
    weights_url=_KERAS_APPS + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    weights_hash="6d6bbae143d832006294945121d1f1fc",
    source="Simonyan and Zisserman 2015; keras.applications",
)
register_backbone(
    name="squeezenet1_1",
    build=squeezenet1_1,
    preprocess="caffe",
    default_size=(227, 227),
    params=722_496,
    load_weights=lambda model, path: load_backbone_weights(model, path),
    weights_url="https://github.com/rcmalli/keras-squeezenet/releases/download/v1.0/"
    "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5",
    weights_hash="17154246284f555591549ac2c83e127abfbf4307dc4b0060fdaa2931d0fa38da",
    source="Iandola et al. 2016, v1.1; weights rcmalli/keras-squeezenet (MIT)",
)


def list_backbones() -> list[str]:
    """Names of the registered backbones, sorted."""
    return sorted(BACKBONES)


def get_backbone(name: str) -> BackboneSpec:
    """The registry entry ``name``.

    Raises:
        ImgclfError: unknown name.
    """
    check_one_of("backbone", name, list_backbones())
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
    from imgclf.data.named import RemoteFile, fetch_file

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


def backbone_table() -> list[dict]:
    """One row per registered backbone for ``imgclf backbones``: ``name``, ``input`` (``"HxW"``),
    ``cut_layer``, ``params`` (backbone parameters up to the cut), ``preprocess``, ``head`` (the default head),
    ``source``. Nothing is built."""
    return [
        {
            "name": s.name,
            "input": f"{s.default_size[0]}x{s.default_size[1]}",
            "cut_layer": s.cut_layer or "(last)",
            "params": s.params,
            "preprocess": s.preprocess,
            "head": s.default_head,
            "source": s.source,
        }  # fmt: skip
        for s in (get_backbone(n) for n in list_backbones())
    ]
