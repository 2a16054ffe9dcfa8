"""The few-shot head (``head="prototypes"``): no gradient training, each class the mean of its images' features.

Each training image's backbone features, max-pooled over the picture, are L2-normalised; a class's prototype is the
mean of its images' normalised features, normalised again; an image's class probabilities are a softmax over its
cosine similarity to every prototype, times a scale (prototypical networks, Snell et al. 2017, with the cosine
similarity of cosine classifiers, Gidaris & Komodakis 2018; Chen et al. 2019). The model stays ordinary Keras: the
head is ``GlobalMaxPooling2D → UnitNormalization → Dense`` (:func:`imgclf.models.transfer.add_head`), and the
prototypes are the output ``Dense`` layer's kernel (bias 0), so ``model.keras`` loads in plain Keras, exports, is
calibrated (temperature scaling corrects the scale) and answers "unknown" like any run.
"""

from __future__ import annotations

import keras
import numpy as np

from imgclf.errors import ImgclfError
from imgclf.features.extract import head_outputs
from imgclf.models.precision import OUTPUT_LAYER
from imgclf.unknown.calibrate import target_labels

#: Cosine similarities are multiplied by this before the softmax (a class 0.1 closer in cosine gets e times the odds);
#: calibration on validation images then fits the temperature.
SCALE = 10.0


def class_prototypes(vectors: np.ndarray, labels: np.ndarray, num_classes: int, class_names=None) -> np.ndarray:
    """Unit-length prototypes float32 ``(num_classes, d)``: the normalised mean of each class's rows of ``vectors``
    float ``(n, d)`` (unit-length features), ``labels`` int ``(n,)``; ``class_names`` (``num_classes`` names) name
    the classes in the error.

    Raises:
        ImgclfError: a class without any training image, named.
    """
    counts = np.bincount(labels, minlength=num_classes)
    if counts.min() == 0:
        empty = [int(k) for k in np.flatnonzero(counts == 0)]
        names = [str(class_names[k]) if class_names is not None else f"class {k}" for k in empty]
        raise ImgclfError(f"prototypes need at least 1 training image of every class. Received: none of "
                          f"{', '.join(repr(n) for n in names)} (add pictures, or hold fewer out for "
                          "validation)")  # fmt: skip
    means = np.stack([vectors[labels == k].mean(axis=0) for k in range(num_classes)])
    norms = np.linalg.norm(means, axis=1, keepdims=True)
    return (means / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def prototype_weights(prototypes: np.ndarray, class_mode: str, scale: float = SCALE) -> list[np.ndarray]:
    """``[kernel, bias]`` of the output ``Dense`` layer for ``prototypes`` ``(k, d)``: kernel ``scale * P^T``
    ``(d, k)`` for a softmax; for ``binary`` (one sigmoid unit) ``scale * (p_1 - p_0)`` ``(d, 1)``, the same
    probabilities as the two-class softmax."""
    if class_mode == "binary":
        kernel = scale * (prototypes[1] - prototypes[0])[:, None]
    else:
        kernel = scale * prototypes.T
    return [kernel.astype(np.float32), np.zeros(kernel.shape[1], np.float32)]


def set_prototypes(head: keras.Model, features: np.ndarray, targets: np.ndarray, class_mode: str,
                   num_classes: int, batch_size: int = 256, class_names=None) -> np.ndarray:  # fmt: skip
    """Put the class prototypes of cached backbone ``features`` ``(n, ...)`` with encoded ``targets`` into the
    output layer of ``head`` (features → probabilities), and freeze the head. Returns the images per class, int
    ``(num_classes,)``.

    Raises:
        ImgclfError: a class without any training image (named from ``class_names``).
    """
    output = head.get_layer(OUTPUT_LAYER)
    vectors = head_outputs(head, features, batch_size)[1]  # pooled, unit-normalised: the output layer's input
    labels = target_labels(targets)
    output.set_weights(prototype_weights(class_prototypes(vectors, labels, num_classes, class_names), class_mode))
    for layer in head.layers:
        layer.trainable = False
    return np.bincount(labels, minlength=num_classes)
