"""Grad-CAM: which pixels made the model choose a class.

Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization",
ICCV 2017; following the Keras example "Grad-CAM class activation visualization" (fchollet). The
class score differentiated is the output layer's *logit* (its input times its kernel, plus bias), not
the probability, so saturated predictions still get a gradient.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from imgclf.errors import ImgclfError


def _is_spatial(layer) -> bool:
    try:
        shape = layer.output.shape
    except (AttributeError, ValueError):
        return False
    return len(shape) == 4


def find_last_conv_layer(model: keras.Model) -> str:
    """Name of the last layer with a 4-D output ``(batch, h, w, c)`` that is a convolution.

    Falls back to the last 4-D layer of any kind (pooling, activation, concatenation) when no
    ``Conv2D`` exists.

    Raises:
        ImgclfError: the model has no layer with a spatial output.
    """
    spatial = [layer for layer in model.layers if _is_spatial(layer) and not isinstance(layer, keras.layers.InputLayer)]
    convs = [layer for layer in spatial if isinstance(layer, keras.layers.Conv2D)]
    chosen = (convs or spatial or [None])[-1]
    if chosen is None:
        raise ImgclfError(f"model {model.name!r} has no convolution layer for Grad-CAM.")
    return chosen.name


def gradcam(
    model: keras.Model,
    images: np.ndarray,
    class_index: int | np.ndarray | None = None,
    layer: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heat-maps of a batch.

    Args:
        model: an imgclf model (uint8 input, ``Dense`` output layer named ``output``).
        images: uint8 ``(batch, height, width, channels)``, already at the model's input size.
        class_index: the class to explain, per image ``(batch,)`` or one int for all; default the
            predicted class. For binary models class 1 is the sigmoid's class, class 0 its opposite.
        layer: name of the layer whose activations are weighted; default
            :func:`find_last_conv_layer`.

    Returns:
        ``(heatmaps, class_indices)``: float32 ``(batch, height, width)`` in [0, 1] (1 = most
        important; all zeros when no pixel supports the class) and int ``(batch,)``.

    Raises:
        ImgclfError: ``layer`` is not in the model or has no spatial output.
    """
    name = layer or find_last_conv_layer(model)
    try:
        target = model.get_layer(name)
    except ValueError:
        raise ImgclfError(f"layer {name!r} is not in model {model.name!r}.") from None
    if not _is_spatial(target):
        raise ImgclfError(f"layer {name!r} has no spatial (batch, h, w, c) output for Grad-CAM.")
    head = model.layers[-1]
    grad_model = keras.Model(model.input, [target.output, head.input, model.output])
    x = tf.convert_to_tensor(images)
    with tf.GradientTape() as tape:
        activations, features, probs = grad_model(x, training=False)
        binary = probs.shape[-1] == 1
        if class_index is None:
            p = np.asarray(probs)
            chosen = (p[:, 0] >= 0.5).astype(int) if binary else p.argmax(axis=-1)
        else:
            chosen = np.broadcast_to(np.asarray(class_index, dtype=int), (len(images),)).copy()
        logits = tf.cast(features, tf.float32) @ tf.cast(head.kernel, tf.float32) + tf.cast(head.bias, tf.float32)
        if binary:  # one logit z: class 1 scores z, class 0 scores -z
            score = logits[:, 0] * tf.constant(np.where(chosen == 1, 1.0, -1.0), tf.float32)
        else:
            score = tf.gather(logits, tf.constant(chosen, tf.int32), axis=1, batch_dims=1)
    grads = tf.cast(tape.gradient(score, activations), tf.float32)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)  # global-average-pooled gradients
    cam = tf.nn.relu(tf.reduce_sum(weights * tf.cast(activations, tf.float32), axis=-1))
    cam = tf.image.resize(cam[..., None], x.shape[1:3], method="bilinear")[..., 0]
    peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
    return tf.math.divide_no_nan(cam, peak).numpy().astype(np.float32), np.asarray(chosen, dtype=int)


def explain_files(predictor, paths, out_dir, class_name: str | None = None, layer: str | None = None) -> list[dict]:
    """Grad-CAM pictures of image files: each image with the heat-map of where the model looked for a class.

    Args:
        predictor: a :class:`~imgclf.predict.predictor.Predictor` (model, classes, how to read images).
        paths: image files or folders (searched recursively).
        out_dir: folder for the PNGs (created). Each is named ``<k>_<stem>_gradcam_<class>.png`` (``k`` the
            image's position, so two images with the same file name never overwrite each other).
        class_name: the class to explain; default the predicted one.
        layer: the layer whose activations are weighted; default :func:`find_last_conv_layer`.

    Returns:
        One dict per image: ``path``, ``class``, ``probability`` (of that class), ``picture``, ``layer``.

    Raises:
        ImgclfError: ``class_name`` is not a class of the model, a path does not exist, or ``layer`` is unusable.
        OSError: an image cannot be decoded.
    """
    from pathlib import Path

    from PIL import Image

    from imgclf.data.inputs import expand_image_paths
    from imgclf.plotting import heatmap_overlay

    classes = list(predictor.classes)
    if class_name is not None and class_name not in classes:
        raise ImgclfError(f"class_name must be one of {classes}. Received: {class_name!r}")
    files = expand_image_paths(paths)
    x = predictor.load_images(files)
    index = classes.index(class_name) if class_name is not None else None
    name = layer or find_last_conv_layer(predictor.model)
    maps, chosen = gradcam(predictor.model, x, index, name)
    proba = predictor.predict_proba(x)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(files)))
    records = []
    for k, (path, img, m, c, p) in enumerate(zip(files, x, maps, chosen, proba), start=1):
        target = folder / f"{k:0{width}d}_{Path(path).stem}_gradcam_{classes[c]}.png"
        Image.fromarray(heatmap_overlay(img, m)).save(target)
        records.append({"path": path, "class": classes[c], "probability": float(p[c]), "picture": str(target),
                        "layer": name})  # fmt: skip
    return records
