"""Pictures of what the model will see: one image under random augmentations, and a training batch."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from imgclf.data.folders import Samples
from imgclf.data.images import ImageSpec
from imgclf.errors import ImgclfError, check_positive_int
from imgclf.pipeline.augment import Augmentation, augment_batch
from imgclf.pipeline.tfdata import image_dataset
from imgclf.plotting import save_grid  # noqa: F401  (re-exported: the preview pictures are grids)


def augmented_copies(
    path: str | os.PathLike,
    augment: Augmentation,
    *,
    count: int = 16,
    image: ImageSpec = ImageSpec(),
    seed: int = 0,
) -> np.ndarray:
    """``count`` random augmentations of one image, exactly as the training pipeline makes them.

    Returns:
        uint8 ``(count, height, width, channels)``; with an identity ``augment`` all copies are equal.

    Raises:
        ImgclfError: ``count`` is not a positive int, or the image cannot be read.
    """
    count = check_positive_int("count", count)
    batch = np.repeat(image.read(path)[None], count, axis=0)
    return augment_batch(tf.constant(batch), augment, tf.constant([seed, 0], tf.int64)).numpy()


def training_batch(
    samples: Samples,
    augment: Augmentation | None,
    *,
    count: int = 16,
    image: ImageSpec = ImageSpec(),
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """The first shuffled, augmented training batch of ``count`` images, as ``fit`` would draw it.

    Returns:
        ``(images, labels)``: uint8 ``(count, height, width, channels)`` and int32 ``(count,)`` (fewer when fewer
        images can be read).

    Raises:
        ImgclfError: ``count`` is not a positive int, or no training image can be read.
    """
    count = check_positive_int("count", count)
    ds = image_dataset(
        samples.paths,
        labels=samples.labels,
        image=image,
        batch_size=count,
        shuffle=True,
        seed=seed,
        cache=False,
        augment=augment,
    )
    for images, labels in ds.take(1):
        return images.numpy(), labels.numpy()
    raise ImgclfError("none of the dataset's images can be read (run `imgclf doctor` on it).")


def sample_grid(dataset, out_path: str | os.PathLike, count: int = 8, image: ImageSpec = ImageSpec(), seed: int = 0,
                title: str | None = None):  # fmt: skip
    """A grid of ``count`` random training images per class, captioned with their class (the course's 4x4 view).

    Args:
        dataset: a :class:`~imgclf.data.folders.Dataset`.
        out_path: PNG to write.
        count: images per class (fewer when a class has fewer).
        image: how each image is read and shown (its ``target_size`` in pixels).
        seed: seed of the random choice.
        title: the picture's title.

    Returns:
        The written path.

    Raises:
        ImgclfError: ``count`` is not a positive int, or no image of the dataset can be read.
    """
    count = check_positive_int("count", count)
    rng = np.random.default_rng(seed)
    picked, titles = [], []
    for k, name in enumerate(dataset.class_names):
        (members,) = np.nonzero(dataset.train.labels == k)
        shown = 0
        for i in rng.permutation(members):  # unreadable files are passed over
            if shown == count:
                break
            try:
                picked.append(image.load(dataset.train.paths[i]))
            except Exception:  # noqa: BLE001  (any decoder failure)
                continue
            titles.append(name)
            shown += 1
    if not picked:
        raise ImgclfError("none of the dataset's images can be read (run `imgclf doctor` on it).")
    return save_grid(np.stack(picked), out_path, titles=titles, cols=max(4, min(count, 8)), title=title)
