"""TFRecord shards of decoded images: written by :func:`pack` (``imgclf pack``), streamed by
:func:`record_dataset` with parallel interleaved reads and bounded memory (TensorFlow's "Better performance with
the tf.data API" guide: ``interleave`` over files, ``shuffle`` with a bounded buffer). The folder's layout is in
:mod:`imgclf.data.packed`.
"""

from __future__ import annotations

import datetime
import json
import os

import numpy as np
import tensorflow as tf

from imgclf.data.folders import load_folder
from imgclf.data.images import ImageSpec
from imgclf.data.packed import FORMAT, MANIFEST, VERSION
from imgclf.data.samples import Records, Samples
from imgclf.data.storage import is_url, join, sha256_of
from imgclf.errors import ImgclfError
from imgclf.pipeline.skipped import SkippedFiles
from imgclf.pipeline.tfdata import PARALLEL_CALLS, SHUFFLE_BUFFER_BYTES, _batched, image_dataset

#: Default shard size in MB (TensorFlow's guide suggests 100-200 MB files for reading in parallel).
SHARD_SIZE_MB = 100.0
_FEATURES = {
    "image": tf.io.FixedLenFeature([], tf.string),
    "label": tf.io.FixedLenFeature([], tf.int64),
}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imgclf")
    except PackageNotFoundError:
        return "unknown"


def _example(image: np.ndarray, label: int, name: str) -> bytes:
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[image.tobytes()])),
        "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
        "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode("utf-8")])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _check_out(out) -> None:
    if tf.io.gfile.exists(str(out)) and (not tf.io.gfile.isdir(str(out)) or tf.io.gfile.listdir(str(out))):
        what = "a file" if not tf.io.gfile.isdir(str(out)) else "not empty"
        raise ImgclfError(
            f"OUT must be a new or empty folder (packing never overwrites). Received: {str(out)!r} ({what})"
        )
    tf.io.gfile.makedirs(str(out))


def pack(data, out, *, image: ImageSpec = ImageSpec(), validation_split: float | None = None, seed: int = 0,
         label_pattern: str | None = None, shard_size_mb: float = SHARD_SIZE_MB, batch_size: int = 64,
         progress=None) -> dict:  # fmt: skip
    """Decode, resize and write a dataset's images into TFRecord shards with a manifest.

    Args:
        data: a dataset folder (any layout :func:`imgclf.load_folder` reads; the validation split it makes with
            ``validation_split`` and ``seed`` is kept). Training images are written in a seeded random order, so
            that every shard mixes the classes; validation images in DATA's order.
        out: a new or empty folder, local or a ``tf.io.gfile`` URL.
        image: the size the images are resized to (train at this size), colour mode and resize filter.
        shard_size_mb: start a new shard past this many MB (at least one record per shard).
        batch_size: images decoded together (in parallel).
        progress: called with the number of images written so far, after each batch.

    Returns:
        The manifest written to ``OUT/manifest.json``.

    Raises:
        ImgclfError: bad settings, a non-empty OUT or one inside DATA, data :func:`imgclf.load_folder` refuses, or
            no image readable.
    """
    if isinstance(shard_size_mb, bool) or not isinstance(shard_size_mb, (int, float)) or not shard_size_mb > 0:
        raise ImgclfError(f"shard_size must be a positive number of MB. Received: {shard_size_mb!r}")
    dataset = load_folder(data, validation_split, seed, label_pattern)
    if dataset.train.images is not None:
        raise ImgclfError("pixel CSVs are small and already decoded: train on them directly, no need to pack.")
    if not is_url(out) and not is_url(data):  # inside DATA it would be read back as a class folder
        top, target = os.path.realpath(dataset.root), os.path.realpath(out)
        if target == top or target.startswith(top + os.sep):
            raise ImgclfError(f"OUT must be outside DATA ({str(data)!r}). Received: {str(out)!r}")
    _check_out(out)
    try:
        return _write(dataset, data, out, image, seed, shard_size_mb, batch_size, progress)
    except BaseException:  # OUT was new or empty: leave nothing half-written in it
        tf.io.gfile.rmtree(str(out))
        raise


def _write(dataset, data, out, image: ImageSpec, seed, shard_size_mb, batch_size, progress) -> dict:
    root, skipped = os.path.abspath(dataset.root), SkippedFiles()
    splits, written = {}, 0
    for split, samples in (("train", dataset.train), ("validation", dataset.validation)):
        if samples is None:
            continue
        if split == "train":  # shards mixing every class (folders list a class at a time): a seeded order
            order = np.random.default_rng(seed).permutation(len(samples))
            samples = type(samples)(tuple(samples.paths[i] for i in order), samples.labels[order])
        images = image_dataset(samples.paths, image=image, batch_size=batch_size, cache="none", skipped=skipped)
        shards, labels, names, writer, size, paths = [], [], [], None, 0, iter(zip(samples.paths, samples.labels))
        for batch in images:
            for pixels in batch.numpy():
                path, label = next(paths)
                if path in skipped:
                    continue
                if writer is None or size >= shard_size_mb * 1e6:
                    if writer is not None:
                        writer.close()
                    shards.append({"file": f"{split}-{len(shards):05d}.tfrecord", "records": 0})
                    writer, size = tf.io.TFRecordWriter(join(out, shards[-1]["file"])), 0
                name = os.path.relpath(path, root) if not is_url(path) else path
                record = _example(pixels, label, name)
                writer.write(record)
                size += len(record)
                shards[-1]["records"] += 1
                labels.append(int(label))
                names.append(name)
            written += len(batch)
            if progress is not None:
                progress(written)
        if writer is not None:
            writer.close()
        for shard in shards:
            path = join(out, shard["file"])
            shard.update(bytes=int(tf.io.gfile.stat(path).length), sha256=sha256_of(path))
        counts = np.bincount(np.asarray(labels, int), minlength=dataset.num_classes).tolist() if labels else []
        splits[split] = {"count": len(labels), "class_counts": dict(zip(dataset.class_names, counts)),
                         "shards": shards, "labels": labels, "names": names}  # fmt: skip
    if not splits.get("train", {}).get("count"):
        raise ImgclfError(f"none of the training images of {str(data)!r} can be read: nothing was packed.")
    manifest = {
        "format": FORMAT, "version": VERSION, "classes": list(dataset.class_names),
        **image.to_dict(),
        "source": str(data), "layout": dataset.layout, "validation_split": dataset.validation_split, "seed": seed,
        "splits": splits, "skipped": skipped.to_list(), "imgclf_version": _version(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    with tf.io.gfile.GFile(join(out, MANIFEST), "w") as f:
        f.write(json.dumps(manifest, indent=1))
    return manifest


def record_dataset(records: Records, *, class_mode: str, num_classes: int, image: ImageSpec,
                   batch_size: int = 32, shuffle: bool = False, seed: int = 0, cache: str = "none", augment=None,
                   shard: tuple[int, int] | None = None, labeled: bool = True) -> tf.data.Dataset:  # fmt: skip
    """Stream packed images (and targets) in batches.

    Without ``shuffle``, records come in the manifest's order. With it, the shard order is reshuffled every epoch,
    shards are read ``PARALLEL_CALLS`` at a time, interleaved, and records pass through a buffer of at most
    :data:`SHUFFLE_BUFFER_BYTES`, so memory stays bounded whatever the dataset's size (``cache="memory"`` keeps the
    parsed images instead; other values stream).

    Args:
        records: the shards (:class:`~imgclf.data.samples.Records`).
        class_mode, num_classes: how labels become targets (see :func:`imgclf.pipeline.tfdata.encode_labels`).
        image: what the model takes; its size and colour mode must be what the data was packed at.
        shard: ``(num_workers, worker_index)``: this worker's part, every ``num_workers``-th shard file from
            ``worker_index`` (files are not read twice), or every ``num_workers``-th record when there are fewer
            files than workers.
        labeled: ``(images, targets)`` batches, else images only.

    Returns:
        ``tf.data.Dataset`` of uint8 ``(batch, height, width, channels)`` images (with targets).

    Raises:
        ImgclfError: ``target_size``/``color_mode`` differ from the packed ones.
    """
    if image.input_shape != records.image.input_shape:
        raise ImgclfError(
            f"this data was packed at target_size {tuple(records.target_size)} {records.color_mode}: train at that "
            f"size (--target-size {records.target_size[0]} {records.target_size[1]} --color-mode {records.color_mode})"
            f" or pack it again. Received: {image.target_size} {image.color_mode}"
        )
    files, by_record = list(records.files), None
    if shard is not None and len(files) >= shard[0]:
        files = files[shard[1] :: shard[0]]
    elif shard is not None:
        by_record = shard
    height, width, depth = records.image.input_shape

    def parse(serialized):
        example = tf.io.parse_single_example(serialized, _FEATURES)
        image = tf.reshape(tf.io.decode_raw(example["image"], tf.uint8), (height, width, depth))
        label = tf.cast(example["label"], tf.int32)
        if class_mode == "binary":
            target = tf.cast(label, tf.float32)[None]
        elif class_mode == "categorical":
            target = tf.one_hot(label, num_classes, dtype=tf.float32)
        else:
            target = label
        return (image, target) if labeled else image

    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle and cache != "memory":
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    # Shuffled: shards read in parallel, interleaved. In order (validation, evaluation): one after the other, so
    # record k is the manifest's k-th (parsing is parallel either way).
    cycle = min(len(files), PARALLEL_CALLS) if shuffle else 1
    ds = ds.interleave(tf.data.TFRecordDataset, cycle_length=cycle, num_parallel_calls=cycle, deterministic=True)
    if by_record is not None:
        ds = ds.shard(*by_record)
    ds = ds.map(parse, num_parallel_calls=PARALLEL_CALLS, deterministic=True)
    if cache == "memory":
        ds = ds.cache()
    buffer = max(1, SHUFFLE_BUFFER_BYTES // (height * width * depth))
    return _batched(ds, buffer, batch_size, shuffle, seed, augment, labeled)


def in_memory(samples: Samples) -> Samples:
    """``samples`` with their pixels in ``images`` when they are packed records (evaluation, export checks and
    ``evaluate --ood`` keep their images in memory); other samples as they are."""
    if samples is None or samples.records is None:
        return samples
    return Samples(samples.paths, samples.labels, read_images(samples.records))


def read_images(records: Records) -> np.ndarray:
    """Every packed image of ``records``, in order: uint8 ``(n, height, width, channels)`` (for evaluation and
    prediction, which keep their images in memory)."""
    ds = record_dataset(records, class_mode="sparse", num_classes=1, image=records.image, batch_size=256,
                        labeled=False)  # fmt: skip
    batches = [b.numpy() for b in ds]
    return np.concatenate(batches) if batches else np.zeros((0, *records.image.input_shape), np.uint8)
