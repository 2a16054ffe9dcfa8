"""Pictures of what the model will see: one image under random augmentations, and a training batch."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from imgclf.data.folders import Samples
from imgclf.data.images import DEFAULT_INTERPOLATION, load_image
from imgclf.pipeline.augment import Augmentation, augment_batch
from imgclf.pipeline.dataset import image_dataset
from imgclf.plotting import save_grid  # noqa: F401  (re-exported: the preview pictures are grids)


def augmented_copies(
    path: str | os.PathLike,
    augment: Augmentation,
    *,
    count: int = 16,
    target_size: tuple[int, int] = (150, 150),
    color_mode: str = "rgb",
    interpolation: str = DEFAULT_INTERPOLATION,
    seed: int = 0,
) -> np.ndarray:
    """``count`` random augmentations of one image, exactly as the training pipeline makes them.

    Returns:
        uint8 ``(count, height, width, channels)``; with an identity ``augment`` all copies are equal.
    """
    image = load_image(path, target_size, color_mode, interpolation)
    batch = np.repeat(image[None], count, axis=0)
    return augment_batch(tf.constant(batch), augment, tf.constant([seed, 0], tf.int64)).numpy()


def training_batch(
    samples: Samples,
    augment: Augmentation | None,
    *,
    count: int = 16,
    target_size: tuple[int, int] = (150, 150),
    color_mode: str = "rgb",
    interpolation: str = DEFAULT_INTERPOLATION,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The first shuffled, augmented training batch of ``count`` images, as ``fit`` would draw it.

    Returns:
        ``(images, labels)``: uint8 ``(count, height, width, channels)`` and int32 ``(count,)``.
    """
    ds = image_dataset(
        samples.paths,
        labels=samples.labels,
        target_size=target_size,
        color_mode=color_mode,
        interpolation=interpolation,
        batch_size=count,
        shuffle=True,
        seed=seed,
        cache=False,
        augment=augment,
    )
    images, labels = next(iter(ds))
    return images.numpy(), labels.numpy()
