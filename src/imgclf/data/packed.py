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
import re
from pathlib import Path

import numpy as np

from imgclf.data.samples import Dataset, Records, Samples
from imgclf.data.storage import is_url, join, read_text, sha256_of
from imgclf.errors import ImgclfError

MANIFEST = "manifest.json"
FORMAT = "imgclf-packed"
VERSION = 1
SPLITS = ("train", "validation")


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
    version = manifest.get("version")
    if type(version) is not int or version < 1:
        raise ImgclfError(
            f"the manifest of packed data {str(path)!r} has no version number. Received: {str(version)[:50]}"
        )
    if version > VERSION:
        raise ImgclfError(f"packed data {str(path)!r} is version {version}; this imgclf reads {VERSION}.")
    return manifest


_SHARD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a file inside the pack: no folder, no "..", no "/"


def manifest_problem(manifest: dict) -> str | None:
    """What in a manifest disagrees with what ``imgclf pack`` writes, or ``None``: classes (two or more distinct
    names, each with training images), the image settings, and per split the count, the labels (ints naming a
    class), the names, and the shards (plain file names inside the pack, record counts adding up to the split's,
    a SHA-256 each)."""
    from imgclf.data.images import INTERPOLATIONS

    classes = manifest.get("classes")
    if not isinstance(classes, list) or len(classes) < 2 or not all(isinstance(c, str) for c in classes):
        return f"classes must be a list of two or more names. Received: {str(classes)[:100]}"
    if len(set(classes)) != len(classes):
        return "classes must be distinct names"
    size = manifest.get("target_size")
    if not (isinstance(size, list) and len(size) == 2 and all(type(v) is int and 0 < v <= 4096 for v in size)):
        return f"target_size must be two ints in [1, 4096]. Received: {str(size)[:50]}"
    filter_name = manifest.get("interpolation")
    if manifest.get("color_mode") not in ("rgb", "grayscale") or not (
        isinstance(filter_name, str) and filter_name in INTERPOLATIONS
    ):
        return "color_mode or interpolation is not one imgclf writes"
    splits = manifest.get("splits")
    if not isinstance(splits, dict) or not isinstance(splits.get("train"), dict):
        return "splits must hold a train split"
    for split, part in splits.items():
        if split not in SPLITS or not isinstance(part, dict):
            return f"unknown split {str(split)[:30]!r}"
        count, labels, names, shards = (part.get(k) for k in ("count", "labels", "names", "shards"))
        if type(count) is not int or not isinstance(labels, list) or not isinstance(names, list):
            return f"the {split} split needs an int count and lists of labels and names"
        if len(labels) != count or len(names) != count:
            return f"the {split} split counts {count} images but lists {len(labels)} labels and {len(names)} names"
        if not all(type(v) is int and 0 <= v < len(classes) for v in labels):
            return f"a {split} label does not name one of the {len(classes)} classes"
        if not isinstance(shards, list) or not all(isinstance(s, dict) for s in shards):
            return f"the {split} shards must be a list of mappings"
        for shard in shards:
            name, digest = shard.get("file"), shard.get("sha256")
            if not isinstance(name, str) or not _SHARD_NAME.match(name):
                return f"shard file names must be plain names inside the pack. Received: {str(name)[:100]!r}"
            if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
                return f"shard {name!r} has no SHA-256"
            if type(shard.get("records")) is not int or shard["records"] < 0:
                return f"shard {name!r} needs a record count"
        if sum(s["records"] for s in shards) != count:
            return f"the {split} shards hold {sum(s['records'] for s in shards)} records, the split counts {count}"
    unused = sorted(set(range(len(classes))) - set(splits["train"]["labels"]))
    if unused:
        return f"class {classes[unused[0]]!r} has no training images (a class the data does not hold)"
    return None


def verify_shards(path, manifest: dict) -> None:
    """Check every shard's SHA-256 against the manifest (1-2 s per GB), before anything trains on it.

    Raises:
        ImgclfError: a shard missing, unreadable, or changed since it was packed (named).
    """
    for part in manifest["splits"].values():
        for shard in part["shards"]:
            file = join(path, shard["file"])
            try:
                digest = sha256_of(file)
            except OSError as exc:
                raise ImgclfError(f"cannot read shard {file!r} of packed data {str(path)!r}: {exc}") from None
            if digest != shard["sha256"]:
                raise ImgclfError(
                    f"shard {file!r} is not the one packed (its SHA-256 differs from manifest.json): it was changed, "
                    "truncated or swapped. Pack DATA again."
                )


def load_packed(path, verify: bool = True) -> Dataset:
    """The :class:`Dataset` of a packed folder: its classes, and its training and validation splits as they were
    packed (``validation_split`` does not apply), each :class:`Samples` with ``records`` and no pixels.

    Args:
        verify: check each shard's SHA-256 against the manifest first (:func:`verify_shards`).

    Raises:
        ImgclfError: as :func:`read_manifest`; a manifest imgclf would not write (:func:`manifest_problem`); a
            shard that fails its checksum.
    """
    manifest = read_manifest(path)
    problem = manifest_problem(manifest)
    if problem:
        raise ImgclfError(f"the manifest of packed data {str(path)!r} is not one imgclf pack writes: {problem}")
    if verify:
        verify_shards(path, manifest)
    records = {}
    for split in SPLITS:
        part = manifest["splits"].get(split)
        if not part or not part["count"]:
            records[split] = None
            continue
        labels = np.asarray(part["labels"], np.int32)
        files = tuple(join(path, shard["file"]) for shard in part["shards"])
        digests = tuple(shard["sha256"] for shard in part["shards"]) if verify else ()
        source = Records(files, tuple(manifest["target_size"]), manifest["color_mode"], manifest["interpolation"],
                         digests)  # fmt: skip
        records[split] = Samples(tuple(part["names"]), labels, None, source)
    if records["train"] is None:
        raise ImgclfError(f"packed data {str(path)!r} has no training images.")
    root = str(path) if is_url(path) else Path(path)
    return Dataset(root, tuple(manifest["classes"]), records["train"], records["validation"], "packed",
                   manifest.get("validation_split"))  # fmt: skip
