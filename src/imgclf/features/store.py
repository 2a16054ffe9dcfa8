"""Backbone features kept image by image, by content: a run on changed data runs the backbone over the images it
has not seen, and only those.

The whole-dataset cache (:func:`imgclf.features.extract.cached_features`) answers a second run on the same data
with one file read, but any change to the data — a class added for ``--from``, 500 new pictures, another draw of ten
images a class — gives a new key, and used to mean a backbone pass over every image again (~35 s for the 3,000
images of cats_and_dogs_filtered on two cores). Here each image's pooled features (a vector: ``gap`` and
``prototypes`` heads) are kept under the SHA-256 of its file, for one description of the backbone (name, weights'
SHA-256, input size, resizing, cut layer, pooling), in shards ``<imgclf home>/features/images/<description>/*.npz``
(``sha256`` ``(n,)`` hex strings, ``features`` float32 ``(n, d)``), written atomically, read together, merged into
one when more than :data:`MAX_SHARDS` have piled up. The same image in another folder, under another name or
another label is the same row.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf import _io
from imgclf.data.cache import imgclf_home
from imgclf.data.samples import Dataset, Samples
from imgclf.pipeline.tfdata import encode_labels

#: Shards a store may hold before the next write merges them into one.
MAX_SHARDS = 16
#: Features longer than this a picture (an unpooled map: a ``course`` head's input) are not kept image by image.
MAX_DIMENSIONS = 8192


class ImageFeatureStore:
    """Features of single images by the SHA-256 of their files, for one backbone ``description`` (a JSON-ready
    list: what the features depend on besides the pixels)."""

    def __init__(self, description: list, root: Path | None = None):
        digest = hashlib.sha256(json.dumps(description).encode()).hexdigest()[:32]
        self.folder = (root or imgclf_home() / "features" / "images") / digest

    def _shards(self) -> list[Path]:
        return sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []

    def load(self, wanted: set[str]) -> dict[str, np.ndarray]:
        """The stored features float32 ``(d,)`` of the images whose SHA-256 is in ``wanted`` (those found)."""
        found: dict[str, np.ndarray] = {}
        for shard in self._shards():
            try:
                with np.load(shard) as z:
                    shas, features = z["sha256"], z["features"]
            except (OSError, ValueError, KeyError):  # merged away meanwhile, or damaged: computed again
                continue
            if features.ndim != 2 or len(features) != len(shas) or not np.issubdtype(features.dtype, np.floating):
                continue  # not this store's rows: skipped, as a damaged shard is
            for i in np.flatnonzero(np.isin(shas, list(wanted - found.keys()))):
                if np.isfinite(features[i]).all():  # a NaN row is computed again, never trained on
                    found[str(shas[i])] = features[i]
        widths = {len(v) for v in found.values()}
        if len(widths) > 1:  # shards of another width: keep the most common one, compute the rest again
            common = max(widths, key=lambda w: sum(len(v) == w for v in found.values()))
            found = {k: v for k, v in found.items() if len(v) == common}
        return found

    def add(self, shas: Sequence[str], features: np.ndarray) -> None:
        """Keep ``features`` float32 ``(n, d)`` of the images whose files have SHA-256 ``shas`` (n hex strings);
        nothing when the rows are not vectors of at most :data:`MAX_DIMENSIONS` floats."""
        if not len(shas) or features.ndim != 2 or features.shape[1] > MAX_DIMENSIONS:
            return
        self._write(np.asarray(shas, dtype="U64"), np.asarray(features, np.float32))
        shards = self._shards()
        if len(shards) > MAX_SHARDS:
            self._merge(shards)

    def _write(self, shas: np.ndarray, features: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.npz"
        with _io.atomic_path(self.folder / name) as tmp, open(tmp, "wb") as f:
            np.savez(f, sha256=shas, features=features)

    def _merge(self, shards: list[Path]) -> None:
        rows: dict[str, np.ndarray] = {}
        for shard in shards:
            try:
                with np.load(shard) as z:
                    rows.update(zip(map(str, z["sha256"]), z["features"]))
            except (OSError, ValueError, KeyError):
                continue
        if rows:
            self._write(np.asarray(list(rows), dtype="U64"), np.stack(list(rows.values())))
        for shard in shards:  # another process merging at the same time may have removed some already
            try:
                os.unlink(shard)
            except FileNotFoundError:
                pass


@dataclass
class ImageFeatures:
    """How a backbone pass (training's, or the label judge's) finds its images' features image by image.

    Attributes:
        store: where the features are kept.
        train, validation: the run's samples (files), and ``shas``: the SHA-256 of each, training then validation.
        targets: ``(y_train, y_val or None)``, encoded as the pipeline encodes labels
            (:func:`imgclf.pipeline.tfdata.encode_labels`).
        stream: the in-order, unaugmented ``(images, targets)`` batches of any samples, decoded as for training.
    """

    store: ImageFeatureStore
    train: Samples
    validation: Samples | None
    shas: list[str]
    targets: tuple
    stream: Callable[[Samples], object]

    def features(self, extract: Callable, announce: Callable[[int, int], None] | None = None):
        """``((f_train, y_train), (f_val, y_val) or None, new)``: every image's features, from the store where it
        has them and from ``extract(batches) -> (features, targets)`` (one backbone pass over the others, which it
        then keeps); ``new`` is how many were computed. ``announce(new, total)`` is called before that pass. ``None``
        when a file could not be decoded (the caller takes the whole pass, which says which)."""
        found = self.store.load(set(self.shas))
        missing = [i for i, sha in enumerate(self.shas) if sha not in found]
        if missing:
            if announce is not None:
                announce(len(missing), len(self.shas))
            splits = [s for s in (self.train, self.validation) if s is not None]
            paths = [path for s in splits for path in s.paths]
            labels = np.concatenate([np.asarray(s.labels) for s in splits])
            todo = Samples(tuple(paths[i] for i in missing), labels[missing].astype(np.int32))
            computed = extract(self.stream(todo))[0]
            if len(computed) != len(missing) or any(len(v) != computed.shape[1] for v in found.values()):
                return None
            self.store.add([self.shas[i] for i in missing], computed)
            found.update(zip((self.shas[i] for i in missing), computed))
        rows = np.stack([found[sha] for sha in self.shas]).astype(np.float32)
        n = len(self.train)
        val = (rows[n:], self.targets[1]) if self.validation is not None else None
        return (rows[:n], self.targets[0]), val, len(missing)


def image_features(dataset: Dataset, description: list, shas: list[str] | None, class_mode: str,
                   stream: Callable[[Samples], object]) -> ImageFeatures | None:  # fmt: skip
    """How a pass over ``dataset``'s training and validation files finds their features image by image: the store
    of ``description``, the files' SHA-256 (``shas``, from :func:`imgclf.features.extract.file_shas`), targets
    encoded for ``class_mode``, and ``stream(samples)``, their in-order batches. ``None`` when ``shas`` is ``None``
    (pixels or packed data)."""
    if shas is None:
        return None
    splits = (dataset.train, dataset.validation)
    targets = tuple(encode_labels(s.labels, class_mode, dataset.num_classes) if s is not None else None for s in splits)
    return ImageFeatures(ImageFeatureStore(description), dataset.train, dataset.validation, shas, targets, stream)
