"""The dataset types every loader returns: :class:`Samples` (images and integer labels) and :class:`Dataset`
(class names, training and validation samples), with the stratified validation split and ``fit(X, y)``'s
datasets made from file paths and labels.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.data.images import ImageSpec
from imgclf.errors import ImgclfError
from imgclf.settings import check_setting

#: Validation fraction held out when none is given and the data has no validation folder.
DEFAULT_VALIDATION_SPLIT = 0.2


@dataclass(frozen=True)
class Records:
    """TFRecord shards of decoded images written by ``imgclf pack`` (:mod:`imgclf.data.packed`).

    Attributes:
        files: shard paths or URLs (anything ``tf.io.gfile`` reads: local, ``gs://``, ``s3://``...), in order.
        target_size: ``(height, width)`` in pixels the images were resized to when packed.
        color_mode: ``rgb`` or ``grayscale``.
        interpolation: the resize filter used when packing.
        sha256: each file's SHA-256 (hex), as the manifest records it and loading verified; ``()`` if unknown.
    """

    files: tuple[str, ...]
    target_size: tuple[int, int]
    color_mode: str
    interpolation: str
    sha256: tuple[str, ...] = ()

    @property
    def image(self) -> ImageSpec:
        """How the images were read when packed (a model must take this size and colour mode)."""
        return ImageSpec(self.target_size, self.color_mode, self.interpolation)


@dataclass(frozen=True)
class Samples:
    """Images and their integer labels: files, decoded pixels (pixel-CSV datasets), or TFRecord shards
    (``imgclf pack``).

    Attributes:
        paths: image file paths, ``n`` strings (for pixel rows, ``<file.csv>#row<k>`` names; for packed
            records, the packed files' paths relative to the data they were packed from).
        labels: array of shape ``(n,)`` int32; ``labels[i]`` indexes the dataset's ``class_names``.
        images: ``None`` for files, else the pixels, uint8 ``(n, height, width, channels)``.
        records: for packed data, the shards that hold the decoded images, in ``paths`` order.
    """

    paths: tuple[str, ...]
    labels: np.ndarray
    images: np.ndarray | None = None
    records: Records | None = None

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, index) -> Samples:
        """The samples at positions ``index`` (an int array), in that order.

        Raises:
            ImgclfError: packed samples (their records are read in shard order, whole).
        """
        if self.records is not None:
            raise ImgclfError("packed data keeps the split it was packed with: pack it again to split it otherwise.")
        index = np.asarray(index, dtype=np.int64)
        images = self.images[index] if self.images is not None else None
        return Samples(tuple(self.paths[i] for i in index), np.asarray(self.labels)[index].astype(np.int32), images)

    def counts(self, num_classes: int) -> list[int]:
        """Number of images per class, a list of ``num_classes`` ints."""
        return np.bincount(self.labels, minlength=num_classes).tolist()


@dataclass(frozen=True)
class Dataset:
    """A dataset found on disk: class names plus training and (optional) validation samples.

    Attributes:
        root: the folder given by the user (a ``str`` URL for packed data read through ``tf.io.gfile``).
        class_names: label names in label order (sorted folder names).
        train: training samples.
        validation: validation samples, or ``None`` when training without validation.
        layout: ``"split"`` (train/ + validation/ folders), ``"single"`` (one folder, split here), ``"table"`` (a
            label table), ``"csv"`` (pixel CSVs), ``"packed"`` or ``"files"`` (paths and labels in memory).
        validation_split: the fraction held out for the single layout, else ``None``.
        source: for a label table (``layout="table"``), its :class:`~imgclf.data.tables.TableSource` (columns,
            problems); else ``None``.
        groups: each image's group (path → group: a table's ``group_col``, or ``--group-by`` on file names), or
            ``None``.
    """

    root: Path | str
    class_names: tuple[str, ...]
    train: Samples
    validation: Samples | None
    layout: str
    validation_split: float | None = None
    source: object | None = None
    groups: dict | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


#: The default validation split holds out nothing when a class has fewer images than this (a few-shot folder).
MIN_IMAGES_TO_SPLIT = 5


def default_split(train: Samples) -> float:
    """:data:`DEFAULT_VALIDATION_SPLIT`, or 0 when a class has fewer than :data:`MIN_IMAGES_TO_SPLIT` images: a
    handful of pictures a class is all there is to learn from (the few-shot head works from one)."""
    counts = np.bincount(train.labels) if len(train) else np.zeros(1, int)
    return DEFAULT_VALIDATION_SPLIT if counts.min() >= MIN_IMAGES_TO_SPLIT else 0.0


def check_validation_split(validation_split: float | None) -> float | None:
    """Validate ``validation_split``: ``None`` (automatic) or a float in ``[0, 1)``.

    Raises:
        ImgclfError: when it is outside ``[0, 1)``.
    """
    return check_setting("validation_split", validation_split)


def stratified_split(samples: Samples, validation_split: float, seed: int) -> tuple[Samples, Samples]:
    """Split samples into training and validation, keeping each class's share (scikit-learn).

    Args:
        samples: the samples to split.
        validation_split: fraction in ``(0, 1)`` held out for validation.
        seed: random seed; the same seed gives the same split.

    Raises:
        ImgclfError: when a class has too few images to appear on both sides.
    """
    from sklearn.model_selection import train_test_split

    try:
        train_idx, val_idx = train_test_split(
            np.arange(len(samples)), test_size=validation_split, stratify=samples.labels, random_state=seed
        )
    except ValueError as exc:
        raise ImgclfError(
            f"cannot make a stratified validation_split={validation_split} of {len(samples)} images: {exc}"
        ) from None
    return samples.subset(np.sort(train_idx)), samples.subset(np.sort(val_idx))


def group_split(samples: Samples, groups, validation_split: float, seed: int, what: str = "groups"):
    """Split samples into training and validation with every group on one side, each label's share kept as far as
    the groups allow (scikit-learn's ``StratifiedGroupKFold``, shuffled with ``seed``: its first fold held out, of
    ``round(1 / validation_split)`` folds).

    Args:
        groups: the group of each sample, ``len(samples)`` strings (a patient, a plant, a burst of shots).
        what: the groups' name in errors (``group_col 'patient_id'``).

    Raises:
        ImgclfError: fewer than two groups.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.asarray(groups)
    folds = min(max(2, round(1 / validation_split)), len(set(groups.tolist())))
    if folds < 2:
        raise ImgclfError(f"{what} gives one group: a held-out split needs two or more.")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    train_idx, val_idx = next(splitter.split(np.zeros(len(samples)), samples.labels, groups))
    return samples.subset(np.sort(train_idx)), samples.subset(np.sort(val_idx))


def group_of(path: str, pattern: str) -> str:
    r"""The group a file belongs to by its name (``--group-by REGEX``, searched in the file name without its
    extension): the regex's group ``group``, else its first group, else what it matched; a name it does not match
    is a group of its own. ``IMG_1234_burst03.jpg`` with ``(.*)_burst\d+`` is ``IMG_1234``."""
    stem = os.path.splitext(os.path.basename(path))[0]
    found = re.search(pattern, stem)
    if found is None:
        return stem
    if "group" in found.re.groupindex:
        return found.group("group")
    return found.group(1) if found.re.groups else found.group(0)


def dataset_from_files(paths, labels, validation_split: float | None = None, seed: int = 0) -> Dataset:
    """A :class:`Dataset` from image file paths and their labels (scikit-learn's ``fit(X, y)``).

    Class names are the distinct labels as strings, sorted; ``validation_split`` (default 0.2, ``0`` for none)
    holds out a stratified, seeded share for validation.

    Raises:
        ImgclfError: the lengths differ, there are fewer than two classes, or the split is impossible.
    """
    paths = tuple(os.fspath(p) for p in paths)
    labels = [str(v) for v in np.asarray(labels).ravel()]
    if len(paths) != len(labels):
        raise ImgclfError(f"X and y must have the same length. Received: {len(paths)} paths and {len(labels)} labels")
    class_names = tuple(sorted(set(labels)))
    if len(class_names) < 2:
        raise ImgclfError(f"need at least 2 classes to train a classifier. Received: {list(class_names)}")
    index = {name: i for i, name in enumerate(class_names)}
    train = Samples(paths, np.array([index[v] for v in labels], np.int32))
    used_split = DEFAULT_VALIDATION_SPLIT if check_validation_split(validation_split) is None else validation_split
    validation = None
    if used_split > 0:
        train, validation = stratified_split(train, used_split, seed)
    root = Path(os.path.commonpath([os.path.abspath(p) for p in paths])) if paths else Path(".")
    return Dataset(root, class_names, train, validation, "files", used_split)
