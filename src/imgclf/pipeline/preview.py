"""Pictures of what the model will see: one image under random augmentations, and a training batch."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

from imgclf._io import atomic_path
from imgclf.data.folders import Samples
from imgclf.data.images import DEFAULT_INTERPOLATION, load_image
from imgclf.pipeline.augment import Augmentation, augment_batch
from imgclf.pipeline.dataset import image_dataset


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


def save_grid(images: np.ndarray, path: str | os.PathLike, titles=None, cols: int | None = None, title=None) -> Path:
    """Draw images ``(n, height, width, channels)`` uint8 in a grid (matplotlib) and save it as PNG.

    Args:
        images: the images; 1-channel images are drawn in grey.
        path: PNG file to write (atomically).
        titles: optional caption per image.
        cols: columns; default a near-square grid.
        title: optional figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(images)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows + (0.4 if title else 0)), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            img = images[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None)
            if titles is not None:
                ax.set_title(str(titles[i]), fontsize=9)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
    return path
