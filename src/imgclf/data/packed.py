"""Packed data: a folder of TFRecord shards of decoded images, written by ``imgclf pack`` (see
:mod:`imgclf.pipeline.records`), read as a :class:`~imgclf.data.samples.Dataset`.

Layout of a packed folder (local, or any URL ``tf.io.gfile`` understands: ``gs://``, ``s3://``, ``ram://``)::

    manifest.json                  format, version, classes, the settings used, per split: counts, labels, names,
                                   shards (file, records, bytes, sha256); files skipped at pack time and why
    train-00000-of-00004.tfrecord  tf.train.Example records: image (raw uint8 bytes, height x width x channels),
    ...                            label (int64), name (the file's path relative to DATA)
    validation-00000-of-00001.tfrecord

TFRecord and ``tf.train.Example`` are TensorFlow's own formats ("TFRecord and tf.train.Example" guide), so a packed
folder is also readable without imgclf.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from imgclf.data.samples import Dataset, Records, Samples
from imgclf.errors import ImgclfError

MANIFEST = "manifest.json"
FORMAT = "imgclf-packed"
VERSION = 1
SPLITS = ("train", "validation")


def is_url(path) -> bool:
    """True for ``scheme://...`` paths (read through ``tf.io.gfile``)."""
    return "://" in str(path)


def join(folder, name: str) -> str:
    """``folder/name`` for a local path or a URL."""
    return f"{str(folder).rstrip('/')}/{name}" if is_url(folder) else os.path.join(os.fspath(folder), name)


def open_file(path, mode: str = "r"):
    """Open a local file, or a URL through ``tf.io.gfile`` (TensorFlow imported only then).

    Raises:
        OSError: it cannot be opened.
    """
    if not is_url(path):
        return open(path, mode)
    import tensorflow as tf

    try:
        return tf.io.gfile.GFile(str(path), mode)
    except tf.errors.OpError as exc:
        raise OSError(str(exc)) from None


def read_text(path) -> str:
    """A text file's content, local or through ``tf.io.gfile``.

    Raises:
        OSError: it cannot be read.
    """
    try:
        with open_file(path) as f:
            return f.read()
    except OSError:
        raise
    except Exception as exc:  # noqa: BLE001  (tf.errors.OpError raised while reading a URL)
        raise OSError(str(exc)) from None


def is_packed(path) -> bool:
    """True when ``path`` is a folder written by ``imgclf pack`` (it holds a ``manifest.json`` of that format)."""
    try:
        if not is_url(path) and not Path(path, MANIFEST).is_file():
            return False
        return json.loads(read_text(join(path, MANIFEST))).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        return False


def read_manifest(path) -> dict:
    """The manifest of a packed folder.

    Raises:
        ImgclfError: no manifest, an unreadable one, or one of another format or a newer version.
    """
    try:
        manifest = json.loads(read_text(join(path, MANIFEST)))
    except (OSError, ValueError) as exc:
        raise ImgclfError(f"cannot read the manifest of packed data {str(path)!r}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ImgclfError(f"{str(path)!r} holds no imgclf-packed manifest.json (written by `imgclf pack`).")
    if manifest.get("version", 0) > VERSION:
        raise ImgclfError(f"packed data {str(path)!r} is version {manifest['version']}; this imgclf reads {VERSION}.")
    return manifest


def load_packed(path) -> Dataset:
    """The :class:`Dataset` of a packed folder: its classes, and its training and validation splits as they were
    packed (``validation_split`` does not apply), each :class:`Samples` with ``records`` and no pixels.

    Raises:
        ImgclfError: as :func:`read_manifest`, or a manifest whose splits do not add up.
    """
    manifest = read_manifest(path)
    records = {}
    for split in SPLITS:
        part = manifest["splits"].get(split)
        if not part or not part["count"]:
            records[split] = None
            continue
        labels = np.asarray(part["labels"], np.int32)
        if len(labels) != part["count"] or len(part["names"]) != part["count"]:
            raise ImgclfError(f"the manifest of {str(path)!r} is inconsistent: {split} counts differ.")
        files = tuple(join(path, shard["file"]) for shard in part["shards"])
        source = Records(files, tuple(manifest["target_size"]), manifest["color_mode"], manifest["interpolation"])
        records[split] = Samples(tuple(part["names"]), labels, None, source)
    if records["train"] is None:
        raise ImgclfError(f"packed data {str(path)!r} has no training images.")
    root = str(path) if is_url(path) else Path(path)
    return Dataset(root, tuple(manifest["classes"]), records["train"], records["validation"], "packed",
                   manifest.get("validation_split"))  # fmt: skip
