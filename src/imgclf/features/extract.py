"""Cached backbone features: with a frozen backbone and no augmentation the backbone runs once over the images,
and every epoch trains the head on its stored outputs (``bench/cached_features.py``: 66x faster epochs).

Features are kept on disk (``<imgclf home>/features/<key>.npz``) under a key of everything they depend on
(:func:`feature_cache_key`), so a second run on the same data skips the backbone pass too.
"""

from __future__ import annotations

import hashlib
import json
import weakref
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from imgclf import _io
from imgclf.data.cache import imgclf_home
from imgclf.data.folders import Dataset
from imgclf.data.storage import sha256_of


def file_shas(dataset: Dataset) -> list[str] | None:
    """The SHA-256 of every training then validation file of ``dataset``, or ``None`` when its images are pixels
    (CSV rows) or packed records rather than files."""
    splits = [s for s in (dataset.train, dataset.validation) if s is not None]
    if any(s.images is not None or s.records is not None for s in splits):
        return None
    return [sha256_of(path) for s in splits for path in s.paths]


def feature_cache_key(description: list, dataset: Dataset, shas: list[str] | None = None) -> str:
    """A key for a dataset's backbone features: ``description`` (backbone, weights — a file's SHA-256 —, input
    size, preprocessing, cut layer: anything JSON-serialisable) and the images' contents (SHA-256; ``shas``, from
    :func:`file_shas`, saves hashing the files again) and labels. Any change gives a new key (32 hex characters)."""
    digest = hashlib.sha256(json.dumps(description).encode())
    hashes = iter(shas) if shas is not None else None
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
                digest.update((next(hashes) if hashes is not None else sha256_of(path)).encode())
    return digest.hexdigest()[:32]


def weights_fingerprint(weights: str | None) -> str | None:
    """``weights`` as it enters a feature key: the SHA-256 of a local file, else the name (``imagenet``)."""
    if weights in (None, "imagenet"):
        return weights
    return sha256_of(weights)


def extract_features(extractor, ds) -> tuple[np.ndarray, np.ndarray]:
    """Run ``extractor`` (a ``keras.Model``) once over a labelled dataset of ``(images, targets)`` batches.

    The extractor is compiled with XLA (``tf.function(jit_compile=True)``) when the dataset has more than a few
    batches, and every batch is padded to the first one's size so that it compiles once: 1.7x faster than eager
    calls for SqueezeNet on a 2-core CPU (``bench/README.md``, suspects). A model XLA cannot compile runs eagerly.

    Returns:
        ``(features float32 (n, ...), targets (n, ...))``, in the dataset's order; ``n`` is 0 when no image
        could be read.
    """
    run = _compiled(extractor) if int(ds.cardinality()) < 0 or int(ds.cardinality()) > XLA_MIN_BATCHES else None
    feats, targets, size = [], [], None
    for images, y in ds:
        n = int(images.shape[0])
        size = size or n
        out = None
        if run is not None and n <= size:
            try:
                out = np.asarray(run(_pad(images, size)), dtype=np.float32)[:n]
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError):  # an op XLA has no kernel for
                run = None
        if out is None:
            out = np.asarray(extractor(images, training=False), dtype=np.float32)
        feats.append(out)
        targets.append(np.asarray(y))
    if not feats:
        target_spec = ds.element_spec[1]
        return (np.zeros((0, *extractor.output_shape[1:]), np.float32),
                np.zeros((0, *target_spec.shape[1:]), target_spec.dtype.as_numpy_dtype))  # fmt: skip
    return np.concatenate(feats), np.concatenate(targets)


#: Datasets of more batches than this are run through an XLA-compiled extractor (compiling costs ~2 s).
XLA_MIN_BATCHES = 8


#: The compiled function of each extractor, made once: the training and validation passes share its compilation.
_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(extractor):
    if extractor not in _COMPILED:
        model = weakref.ref(extractor)  # not the model itself: the cache must not keep it alive
        _COMPILED[extractor] = tf.function(lambda images: model()(images, training=False), jit_compile=True)
    return _COMPILED[extractor]


def _pad(images, size: int):
    missing = size - int(images.shape[0])
    if not missing:
        return images
    return tf.concat([images, tf.zeros((missing, *images.shape[1:]), images.dtype)], axis=0)


def cached_features(key: str | None, extractor, train_in_order, validation, skipped, announce=None, by_image=None):
    """Backbone outputs of the training and validation images, from the disk cache or computed once.

    Args:
        key: :func:`feature_cache_key`, or ``None`` to compute without the disk cache.
        extractor: ``keras.Model`` from uint8 images to the cut layer's output, or a function of no argument that
            builds one (called only when the cache has no features: a warm call builds no model).
        train_in_order: the training images, unshuffled and unaugmented, as ``(images, targets)`` batches.
        validation: the validation batches, or ``None``.
        skipped: the :class:`~imgclf.pipeline.skipped.SkippedFiles` the pipeline records into; features of a
            set with unreadable files are not cached (fixing a file must change the result).
        announce: called before the backbone pass, e.g. to print a line: with no argument for a pass over every
            image, with ``(new, total)`` for a pass over the ``new`` images ``by_image`` lacks.
        by_image: an :class:`~imgclf.features.store.ImageFeatures`, to take each image's features from
            the per-image store where it has them when the whole-dataset cache has none (a few images added, another
            draw): the backbone runs over the others only.

    Returns:
        ``((f_train, y_train), (f_val, y_val) or None, from_cache)``; ``from_cache`` is true when no image went
        through the backbone.
    """
    path = imgclf_home() / "features" / f"{key}.npz" if key else None
    if path is not None and path.is_file():
        with np.load(path) as z:
            val = (z["f_val"], z["y_val"]) if "f_val" in z else None
            return (z["f_train"], z["y_train"]), val, True
    models = []

    def model():  # built on first use: a run whose features are all stored builds none
        if not models:
            models.append(extractor if isinstance(extractor, keras.Model) else extractor())
        return models[0]

    found = by_image.features(lambda batches: extract_features(model(), batches), announce) if by_image else None
    if found is not None:
        train, val, new = found
        if path is not None:
            _store(path, train, val)
        return train, val, new == 0
    if announce is not None:
        announce()
    extractor = model()
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


def head_outputs(head: keras.Model, features: np.ndarray, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """What a transfer model's head (from :func:`imgclf.models.transfer.split_at_features`) gives for cached
    ``features``, layer by layer: ``(outputs, penultimate)``, float32 ``(n, 1)`` (binary) or ``(n, classes)``
    probabilities and the output layer's input ``(n, d)``.

    Raises:
        ValueError: ``head`` has no imgclf output layer.
    """
    from imgclf.models.precision import OUTPUT_LAYER

    output = head.get_layer(OUTPUT_LAYER)
    below = [layer for layer in head.layers if layer is not output and not isinstance(layer, keras.layers.InputLayer)]
    outs, penultimate = [], []
    for start in range(0, len(features), batch_size):
        x = features[start : start + batch_size]
        for layer in below:  # pooling, dropout (inference), unit normalisation: the output layer's input
            x = layer(x, training=False)
        penultimate.append(keras.ops.convert_to_numpy(x).astype(np.float32))
        outs.append(keras.ops.convert_to_numpy(output(x)).astype(np.float32))
    if not outs:
        return np.zeros((0, output.units), np.float32), np.zeros((0, output.kernel.shape[0]), np.float32)
    return np.concatenate(outs), np.concatenate(penultimate)


def feature_dataset(features, targets, batch_size: int, shuffle: bool, seed: int):
    """Batches of cached ``(features, targets)`` as a ``tf.data.Dataset`` (shuffled anew each epoch when asked)."""
    from imgclf.pipeline.tfdata import finish

    ds = tf.data.Dataset.from_tensor_slices((features, targets))
    if shuffle:
        ds = ds.shuffle(max(len(features), 1), seed=seed, reshuffle_each_iteration=True)
    return finish(ds.batch(batch_size))


def check_finite(features: np.ndarray, paths, what: str) -> None:
    """Refuse features with NaN or infinite values (a backbone that overflowed, damaged weights or a damaged cache):
    a head trained on them "finishes" with loss nan and answers nan.

    Args:
        features: float ``(n, ...)``.
        paths: the ``n`` images' files in order, or ``None`` (then they are named by position).
        what: ``training`` or ``validation``.

    Raises:
        ImgclfError: some row is not finite; the first few pictures are named.
    """
    from imgclf.errors import ImgclfError

    bad = np.flatnonzero(~np.isfinite(features.reshape(len(features), -1)).all(axis=1))
    if len(bad):
        names = [str(paths[i]) if paths is not None and len(paths) == len(features) else f"#{i + 1}" for i in bad[:5]]
        raise ImgclfError(f"the backbone's features of {len(bad)} {what} image(s) are not finite (NaN or infinite): "
                          f"{', '.join(names)}{' ...' if len(bad) > 5 else ''}. Check the weights file; nothing "
                          "was trained on them.")  # fmt: skip
