"""The ``tf.data`` dataset of labelled :class:`~imgclf.data.samples.Samples`, whatever holds their images: files
(:func:`~imgclf.pipeline.tfdata.image_dataset`), pixels in memory (:func:`~imgclf.pipeline.tfdata.array_dataset`)
or packed TFRecord shards (:func:`~imgclf.pipeline.records.record_dataset`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from imgclf.data.images import ImageSpec
from imgclf.data.samples import Samples
from imgclf.pipeline.augment import Augmentation
from imgclf.pipeline.records import record_dataset
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.tfdata import array_dataset, check_cache, encode_labels, image_dataset


def samples_dataset(
    samples: Samples,
    *,
    image: ImageSpec,
    class_mode: str,
    num_classes: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool | str = "auto",
    cache_file: str | None = None,
    augment: Augmentation | None = None,
    skipped: SkippedFiles | None = None,
    shard: tuple[int, int] | None = None,
) -> tf.data.Dataset:
    """:func:`~imgclf.pipeline.tfdata.image_dataset` (files), :func:`~imgclf.pipeline.tfdata.array_dataset`
    (pixels) or :func:`~imgclf.pipeline.records.record_dataset` (packed shards; ``cache`` memory keeps them in
    memory, anything else streams them: they are decoded already) of labelled
    :class:`~imgclf.data.folders.Samples`, targets encoded for ``class_mode``
    (see :func:`~imgclf.pipeline.tfdata.encode_labels`).

    ``shard=(num_workers, worker_index)`` keeps one worker's part (distributed training): every
    ``num_workers``-th sample from ``worker_index``; packed shards as :func:`~imgclf.pipeline.records.record_dataset`
    splits them."""
    if shard is not None and shard[0] > 1 and samples.records is None:
        samples = samples.subset(np.arange(shard[1], len(samples), shard[0]))
    batches = dict(batch_size=batch_size, shuffle=shuffle, seed=seed, augment=augment)
    if samples.records is not None:
        return record_dataset(samples.records, class_mode=class_mode, num_classes=num_classes, image=image,
                              cache="memory" if check_cache(cache) == "memory" else "none", shard=shard,
                              **batches)  # fmt: skip
    labels = encode_labels(samples.labels, class_mode, num_classes)
    if samples.images is not None:
        return array_dataset(samples.images, image=image, labels=labels, **batches)
    return image_dataset(samples.paths, image=image, labels=labels, cache=cache, cache_file=cache_file,
                         skipped=skipped, **batches)  # fmt: skip
