"""Cached backbone features: with a frozen backbone and no augmentation the backbone runs once over the images,
and every epoch trains the head on its stored outputs (``bench/cached_features.py``: 66x faster epochs).

Features are kept on disk (``<imgclf home>/features/<key>.npz``) under a key of everything they depend on
(:func:`feature_cache_key`), so a second run on the same data skips the backbone pass too.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.data.cache import imgclf_home
from imgclf.data.folders import Dataset
from imgclf.data.packed import sha256_of


def feature_cache_key(description: list, dataset: Dataset) -> str:
    """A key for a dataset's backbone features: ``description`` (backbone, weights — a file's SHA-256 —, input
    size, preprocessing, cut layer: anything JSON-serialisable) and the images' contents (SHA-256) and labels.
    Any change gives a new key (32 hex characters)."""
    digest = hashlib.sha256(json.dumps(description).encode())
    for samples in (dataset.train, dataset.validation):
        if samples is None:
            digest.update(b"-")
            continue
        digest.update(np.asarray(samples.labels).tobytes())
        if samples.images is not None:
            digest.update(samples.images.tobytes())
        elif samples.records is not None:  # packed: the shards hold the pixels (hashed once, when loaded)
            for shard in samples.records.sha256 or map(sha256_of, samples.records.files):
                digest.update(shard.encode())
        else:
            for path in samples.paths:
                digest.update(sha256_of(path).encode())
    return digest.hexdigest()[:32]


def weights_fingerprint(weights: str | None) -> str | None:
    """``weights`` as it enters a feature key: the SHA-256 of a local file, else the name (``imagenet``)."""
    if weights in (None, "imagenet"):
        return weights
    return sha256_of(weights)


def extract_features(extractor, ds) -> tuple[np.ndarray, np.ndarray]:
    """Run ``extractor`` (a ``keras.Model``) once over a labelled dataset of ``(images, targets)`` batches.

    Returns:
        ``(features float32 (n, ...), targets (n, ...))``, in the dataset's order; ``n`` is 0 when no image
        could be read.
    """
    feats, targets = [], []
    for images, y in ds:
        feats.append(np.asarray(extractor(images, training=False), dtype=np.float32))
        targets.append(np.asarray(y))
    if not feats:
        target_spec = ds.element_spec[1]
        return (np.zeros((0, *extractor.output_shape[1:]), np.float32),
                np.zeros((0, *target_spec.shape[1:]), target_spec.dtype.as_numpy_dtype))  # fmt: skip
    return np.concatenate(feats), np.concatenate(targets)


def cached_features(key: str | None, extractor, train_in_order, validation, skipped, announce=None):
    """Backbone outputs of the training and validation images, from the disk cache or computed once.

    Args:
        key: :func:`feature_cache_key`, or ``None`` to compute without the disk cache.
        extractor: ``keras.Model`` from uint8 images to the cut layer's output.
        train_in_order: the training images, unshuffled and unaugmented, as ``(images, targets)`` batches.
        validation: the validation batches, or ``None``.
        skipped: the :class:`~imgclf.pipeline.skipped.SkippedFiles` the pipeline records into; features of a
            set with unreadable files are not cached (fixing a file must change the result).
        announce: called with no argument before the backbone pass, e.g. to print a line.

    Returns:
        ``((f_train, y_train), (f_val, y_val) or None, from_cache)``.
    """
    path = imgclf_home() / "features" / f"{key}.npz" if key else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            val = (z["f_val"], z["y_val"]) if "f_val" in z else None
            return (z["f_train"], z["y_train"]), val, True
    if announce is not None:
        announce()
    train = extract_features(extractor, train_in_order)
    val = extract_features(extractor, validation) if validation is not None else None
    if path is not None and not len(skipped):
        _store(path, train, val)
    return train, val, False


def _store(path: Path, train, val) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"f_train": train[0], "y_train": train[1]}
    if val is not None:
        arrays |= {"f_val": val[0], "y_val": val[1]}
    with _io.atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
