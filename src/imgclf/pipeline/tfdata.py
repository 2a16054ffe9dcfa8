"""The ``tf.data`` input pipeline: decode + resize in parallel, cache, shuffle, batch, prefetch.

Images are decoded by :func:`imgclf.data.images.load_image` (Pillow) inside ``tf.numpy_function``
calls that ``tf.data`` runs in parallel; Pillow releases the GIL while it decodes and resizes.
Decoded uint8 images are kept where :func:`choose_cache` says: in memory when they fit, so files are decoded once
and later epochs only shuffle and batch; else in a ``tf.data`` cache file on disk (decoded once, read back every
epoch; shuffled in a bounded buffer); else streamed — decoded from the image files every epoch.

tf.data's autotuner is switched off (:func:`finish`): parallelism is one call per core and the prefetch buffer
is fixed. With it on, TensorFlow 2.21 ends every pass over a dataset only at the autotuner's next wake-up, on an
exponential back-off from the iterator's start (10, 30, 70, …, 5,110, 10,230 ms), so an epoch of 5.3 s of work
was often measured at exactly 10.23 s, and 4.3 s at 5.11 s (``bench/README.md``). Off, the epoch takes its work.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from imgclf.data.images import ImageSpec
from imgclf.errors import ImgclfError
from imgclf.pipeline.augment import Augmentation, augment_batch
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.settings import check_setting

CLASS_MODES = ("binary", "categorical", "sparse")  # the setting's choices but auto
#: Parallel calls of the decode and augmentation maps: one per core this process may run on.
PARALLEL_CALLS = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
_PARALLEL = dict(num_parallel_calls=PARALLEL_CALLS, deterministic=True)
#: Batches prepared ahead of the training step.
PREFETCH_BATCHES = 4
#: Fraction of the currently available memory the in-memory cache may take.
CACHE_MEMORY_FRACTION = 0.5
#: Fraction of the free disk space an on-disk cache may take.
CACHE_DISK_FRACTION = 0.5
#: Where decoded images may be kept (the ``cache`` setting): ``auto`` picks the first that fits.
#: Memory the shuffle buffer of images read back from a disk cache (or streamed) may hold, in bytes.
SHUFFLE_BUFFER_BYTES = 256 * 2**20


def check_class_mode(class_mode: str) -> str:
    """Validate ``class_mode``: ``"auto"``, ``"binary"``, ``"categorical"`` or ``"sparse"``."""
    return check_setting("class_mode", class_mode)


def resolve_class_mode(class_mode: str, num_classes: int) -> str:
    """Pick the class mode: ``"auto"`` is ``"binary"`` for 2 classes, else ``"categorical"``.

    - ``binary``: one sigmoid output, labels float32 ``(batch, 1)``, binary crossentropy;
    - ``categorical``: softmax over classes, one-hot labels float32 ``(batch, classes)``;
    - ``sparse``: softmax over classes, integer labels int32 ``(batch,)``.

    Raises:
        ImgclfError: unknown ``class_mode``, or ``"binary"`` with more than 2 classes.
    """
    if check_class_mode(class_mode) == "auto":
        return "binary" if num_classes == 2 else "categorical"
    if class_mode == "binary" and num_classes != 2:
        raise ImgclfError(f"class_mode='binary' needs exactly 2 classes. Received: {num_classes} classes")
    return class_mode


def available_memory() -> int:
    """Bytes of memory currently available (``/proc/meminfo`` MemAvailable, else free pages)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**31


def check_cache(cache) -> str:
    """The ``cache`` setting as one of :data:`CACHE_MODES` (``True``/``"true"`` mean ``memory``,
    ``False``/``"false"`` ``none``, as before there was a disk cache).

    Raises:
        ImgclfError: any other value.
    """
    return check_setting("cache", cache)


@dataclass(frozen=True)
class CacheChoice:
    """Where decoded images are kept, and why.

    Attributes:
        mode: ``memory``, ``disk`` or ``none`` (streamed: decoded every epoch).
        bytes: size of the decoded images, in bytes.
        reason: one line saying why (the budget it was measured against).
    """

    mode: str
    bytes: int
    reason: str


def choose_cache(cache, num_images: int, image: ImageSpec, cache_dir: str | os.PathLike | None = None,
                 allow_memory: bool = True) -> CacheChoice:  # fmt: skip
    """Where ``num_images`` decoded uint8 images go: the setting ``cache`` (:func:`check_cache`), or with ``auto``
    memory when they fit in :data:`CACHE_MEMORY_FRACTION` of the available memory (and ``allow_memory``), else
    disk when ``cache_dir`` is given and they fit in :data:`CACHE_DISK_FRACTION` of its free space, else none.

    Raises:
        ImgclfError: an unknown ``cache`` value.
    """
    mode = check_cache(cache)
    need = num_images * int(np.prod(image.input_shape))
    size = f"{num_images:,} decoded images = {need / 1e9:.2f} GB"
    if mode != "auto":
        return CacheChoice(mode, need, f"{size}: cache={mode}")
    memory = CACHE_MEMORY_FRACTION * available_memory()
    if allow_memory and need <= memory:
        return CacheChoice("memory", need, f"{size}, within half of the {2 * memory / 1e9:.1f} GB of memory available")
    disk = CACHE_DISK_FRACTION * shutil.disk_usage(cache_dir).free if cache_dir is not None else 0
    if disk and need <= disk:
        return CacheChoice("disk", need, f"{size}, more than memory allows; within half of {2 * disk / 1e9:.1f} GB "
                           "of free disk")  # fmt: skip
    return CacheChoice("none", need, f"{size}: more than memory or disk allow; decoded every epoch")


def encode_labels(labels: np.ndarray, class_mode: str, num_classes: int) -> np.ndarray:
    """Integer labels ``(n,)`` to training targets: float32 ``(n, 1)`` (binary), one-hot float32
    ``(n, classes)`` (categorical) or int32 ``(n,)`` (sparse)."""
    labels = np.asarray(labels, dtype=np.int32)
    if class_mode == "binary":
        return labels.astype(np.float32)[:, None]
    if class_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels]
    return labels


def image_dataset(
    paths,
    *,
    image: ImageSpec,
    labels: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    cache: bool | str = "auto",
    cache_file: str | None = None,
    augment: Augmentation | None = None,
    skipped: SkippedFiles | None = None,
) -> tf.data.Dataset:
    """Build a batched dataset of images (and targets) from files.

    A file that cannot be decoded never stops the pipeline: it is recorded in ``skipped`` with the
    reason and left out of labelled datasets; in an unlabelled (prediction) dataset it stays in place
    as a black image, so outputs keep the order of ``paths`` (callers blank those rows out).

    Args:
        paths: sequence of ``n`` image file paths.
        image: how each file is read (size, colour mode, resize filter; :meth:`ImageSpec.load`).
        labels: training targets with first dimension ``n`` (see :func:`encode_labels`), or ``None``
            for images only.
        batch_size: images per batch; the last batch may be smaller.
        shuffle: reshuffle the order every epoch (seeded by ``seed``).
        seed: shuffle seed.
        cache: ``memory`` keep decoded images in memory, ``disk`` in ``cache_file`` (a ``tf.data`` cache file,
            written during the first pass; the file order is shuffled once by ``seed`` and batches are
            shuffled in a buffer of :data:`SHUFFLE_BUFFER_BYTES`), ``none`` decode every epoch, ``auto`` memory
            when they fit (:func:`choose_cache`), else none; ``True``/``False`` mean memory/none.
        cache_file: path prefix of the disk cache (its folder must exist); needed with ``disk``.
        augment: random augmentation applied to each batch after the cache (training data only);
            seeded by ``seed``, different every epoch. ``None`` or an identity leaves images as decoded.
        skipped: where unreadable files are recorded (a fresh record is used if ``None``).

    Returns:
        ``tf.data.Dataset`` of ``images`` uint8 ``(batch, height, width, channels)`` or of
        ``(images, targets)`` tuples.
    """
    paths = [os.fspath(p) for p in paths]
    height, width, depth = image.input_shape
    cache = check_cache(cache)
    if cache == "auto":  # no cache file given: memory or nothing
        cache = choose_cache(cache, len(paths), image).mode
    if cache == "disk" and not cache_file:
        raise ImgclfError("cache='disk' needs a cache_file to write the decoded images into.")
    load = image.load
    skipped = skipped if skipped is not None else SkippedFiles()
    blank = np.zeros((height, width, depth), np.uint8)

    def safe_load(path: bytes):
        try:
            return load(path), True
        except Exception as exc:  # noqa: BLE001  (any decoder failure: OSError, SyntaxError, bombs...)
            skipped.add(path.decode("utf-8"), exc)
            return blank, False

    def decode(path):
        image, ok = tf.numpy_function(safe_load, [path], (tf.uint8, tf.bool), stateful=True)
        image.set_shape((height, width, depth))
        ok.set_shape(())
        return image, ok

    order = np.arange(len(paths))
    if shuffle and cache == "disk":  # the file is written once, in one order: mix the classes in it
        order = np.random.default_rng(seed).permutation(len(paths))
    items = tf.data.Dataset.from_tensor_slices([paths[i] for i in order])
    if labels is not None:
        items = tf.data.Dataset.zip(items, tf.data.Dataset.from_tensor_slices(np.asarray(labels)[order]))
    if shuffle and cache == "none":
        items = items.shuffle(len(paths), seed=seed, reshuffle_each_iteration=True)
    if labels is not None:
        ds = items.map(lambda path, target: (*decode(path), target), **_PARALLEL)
        ds = ds.filter(_is_ok).map(_drop_ok)
    else:
        ds = items.map(lambda path: decode(path)[0], **_PARALLEL)
    if cache != "none":
        ds = ds.cache(cache_file if cache == "disk" else "")
    buffer = len(paths) if cache == "memory" else max(1, SHUFFLE_BUFFER_BYTES // (height * width * depth))
    shuffled = shuffle and cache != "none"
    return _batched(ds, min(len(paths), buffer), batch_size, shuffled, seed, augment, labels is not None)


def _is_ok(image, ok, target):
    return ok


def _drop_ok(image, ok, target):
    return image, target


def _batched(ds, n: int, batch_size: int, shuffle: bool, seed: int, augment, labeled: bool) -> tf.data.Dataset:
    """Shuffle (optionally), batch, augment (optionally) and prefetch decoded images."""
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if augment is not None and not augment.is_identity:
        # One stateless seed pair per batch from a seeded stream that changes every epoch: the same
        # seed gives the same augmented stream whatever the parallelism.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip(ds, seeds)
        if labeled:
            ds = ds.map(lambda batch, s: (augment_batch(batch[0], augment, s), batch[1]), **_PARALLEL)
        else:
            ds = ds.map(lambda images, s: augment_batch(images, augment, s), **_PARALLEL)
    return finish(ds)


def finish(ds: tf.data.Dataset) -> tf.data.Dataset:
    """Prefetch :data:`PREFETCH_BATCHES` batches and switch tf.data's autotuner off (see the module's doc)."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.prefetch(PREFETCH_BATCHES).with_options(options)


def array_dataset(
    images: np.ndarray,
    *,
    image: ImageSpec,
    labels: np.ndarray | None = None,
    batch_size: int = 32,
    shuffle: bool = False,
    seed: int = 0,
    augment: Augmentation | None = None,
) -> tf.data.Dataset:
    """:func:`image_dataset` for images already in memory (pixel CSVs), uint8 ``(n, h, w, c)``.

    Images not at ``image``'s size and colour mode go through the same
    :func:`~imgclf.data.images.image_to_array` as files and predictions.
    """
    images = image.to_model_input(images)
    items = (images, labels) if labels is not None else images
    ds = tf.data.Dataset.from_tensor_slices(items)
    return _batched(ds, len(images), batch_size, shuffle, seed, augment, labels is not None)
