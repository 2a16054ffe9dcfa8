"""What ``fit`` trains on: the data a user names, loaded (:func:`load_data`), and the ``tf.data`` datasets of its
training and validation images (:func:`training_datasets`), with where decoded images are kept
(:func:`imgclf.pipeline.tfdata.choose_cache`: memory, a file cache on disk, or none).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

from imgclf.data.folders import Dataset, dataset_from_files, load_folder
from imgclf.data.images import ImageSpec
from imgclf.data.inputs import input_kind
from imgclf.data.tables import TableColumns, is_table, load_table
from imgclf.errors import ImgclfError
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.sources import samples_dataset
from imgclf.pipeline.tfdata import CacheChoice, check_cache, choose_cache, resolve_class_mode

VALIDATION_BATCH_SIZE = 100
"""Smallest batch of the validation pass during training (forward passes only)."""


def load_data(X, y, *, validation_split: float | None, seed: int, label_pattern: str | None,
              label_column: str, table: TableColumns | None = None,
              group_by: str | None = None) -> Dataset:  # fmt: skip
    """The :class:`~imgclf.data.folders.Dataset` ``fit(X, y)`` trains on: ``X`` a loaded dataset, a folder, a
    named dataset, a label table (a file or a ``pandas.DataFrame``: :mod:`imgclf.data.tables`), a pixel CSV or a
    packed folder (see :func:`imgclf.load_folder`), or image paths with labels
    ``y``.

    Raises:
        ImgclfError: ``y`` with a single path, ``X`` of another type, or data :func:`imgclf.load_folder` refuses.
    """
    if is_table(X):  # a label table's file, or a DataFrame
        return load_table(X, table, validation_split, seed)[0]
    kind = input_kind(X)
    if kind == "dataset":
        return X
    if y is not None:
        if kind not in ("paths", "array"):
            raise ImgclfError("with y, X must be a sequence of image paths, one per label. Received: a single path")
        return dataset_from_files(X, y, validation_split, seed)
    if kind in ("paths", "array"):
        raise ImgclfError(f"X must be a folder, a named dataset or image paths with y. Received: {type(X).__name__}")
    from imgclf.data.named import resolve

    return load_folder(resolve(X), validation_split, seed, label_pattern, label_column, table, group_by)


def cache_choices(dataset: Dataset, cache, image: ImageSpec, cache_dir: Path | None) -> dict:
    """``{"train": CacheChoice, "validation": CacheChoice}`` for the setting ``cache``: with ``auto``, both splits
    in memory when they fit there together, else the validation images in memory if they fit alone and the
    training images on disk (or streamed); pixel-CSV splits are in memory already and count for nothing."""
    count = {name: (len(s) if s is not None and s.images is None else 0)
             for name, s in (("train", dataset.train), ("validation", dataset.validation))}  # fmt: skip
    both = choose_cache(cache, count["train"] + count["validation"], image, cache_dir)
    if both.mode == "memory" or check_cache(cache) != "auto":
        choices = {"train": both, "validation": both}
    else:
        choices = {"train": choose_cache(cache, count["train"], image, cache_dir, allow_memory=False),
                   "validation": choose_cache(cache, count["validation"], image, cache_dir)}  # fmt: skip
    if dataset.train.records is not None:  # packed: decoded already, a disk cache would only copy the shards
        choices = {k: c if c.mode == "memory" else CacheChoice("none", c.bytes, "streamed from the packed shards")
                   for k, c in choices.items()}  # fmt: skip
    return choices


@contextlib.contextmanager
def decoded_cache_dir(run: Path | None):
    """A private folder for on-disk caches of decoded images (inside the run folder, else the system's temporary
    folder), removed with what is in it when training is over."""
    if run is not None:
        run.mkdir(parents=True, exist_ok=True)
        for stale in run.glob(".decoded-*"):  # left by a killed run (a run folder has one writer: it is locked)
            shutil.rmtree(stale, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix=".decoded-", dir=run) as tmp:
        yield Path(tmp)


def training_datasets(dataset: Dataset, *, image: ImageSpec, class_mode: str,
                      batch_size: int, augment, seed: int, cache="auto", cache_dir: Path | None = None,
                      skipped: SkippedFiles | None = None, in_order: bool = False,
                      shard: tuple[int, int] | None = None):  # fmt: skip
    """The ``tf.data`` datasets ``fit`` trains and validates on.

    Training batches are shuffled and augmented (``augment``); validation batches are neither, and hold
    at least :data:`VALIDATION_BATCH_SIZE` images: forward passes alone are cheaper per image in larger
    batches (1,000 images of ``course_small``: 0.32 s at 100 against 0.55 s at 20 on 2 cores), and the
    validation loss and accuracy do not depend on it (Keras averages them over images).
    Files that cannot be decoded are left out and recorded in ``skipped``. Decoded images are kept where
    :func:`cache_choices` says; a ``disk`` cache is a file in ``cache_dir`` (without one, images are streamed).

    Args:
        in_order: instead, the training images once, unshuffled and unaugmented (cached in memory only when
            the training split is), and no validation dataset.
        shard: ``(num_workers, worker_index)``: only this worker's part of each split (distributed training;
            see :func:`imgclf.pipeline.sources.samples_dataset`); ``batch_size`` is then the batch of one replica.

    Returns:
        ``(train, validation, choices)``: datasets of ``(images, targets)``, images uint8
        ``(batch, height, width, channels)`` (``validation`` is ``None`` without validation data or with
        ``in_order``), and the :class:`~imgclf.pipeline.tfdata.CacheChoice` of each split.
    """
    choices = cache_choices(dataset, cache, image, cache_dir)
    common = dict(
        image=image, class_mode=resolve_class_mode(class_mode, dataset.num_classes), num_classes=dataset.num_classes,
        batch_size=batch_size, skipped=skipped, shard=shard,
    )  # fmt: skip

    def where(split: str) -> dict:
        mode = choices[split].mode
        if mode == "disk" and (cache_dir is None or in_order):  # a single in-order pass is read once: streamed
            mode = "none"
        return {"cache": mode, "cache_file": str(cache_dir / split) if mode == "disk" else None}

    if in_order:
        return samples_dataset(dataset.train, **where("train"), **common), None, choices
    train_ds = samples_dataset(dataset.train, shuffle=True, seed=seed, augment=augment, **where("train"), **common)
    if dataset.validation is None:
        return train_ds, None, choices
    common["batch_size"] = max(batch_size, VALIDATION_BATCH_SIZE)
    return train_ds, samples_dataset(dataset.validation, **where("validation"), **common), choices


def say_cache(choices: dict, has_validation: bool) -> None:
    """One line on stderr saying where decoded images are kept, and why (``fit`` with ``verbose``)."""
    from imgclf._console import console

    train, validation = choices["train"], choices["validation"]
    where = {"memory": "in memory", "disk": "in a cache file on disk", "none": "nowhere (read every epoch)"}
    line = f"Decoded training images kept {where[train.mode]} ({train.reason})"
    if has_validation and validation.mode != train.mode:
        line += f"; validation images {where[validation.mode]} ({validation.reason})"
    console().print(line + "; --cache memory|disk|none overrides.")
