"""Datasets from folders whose subdirectory names are the labels.

Two layouts are understood, as in the course and in ``keras.utils.image_dataset_from_directory``:

- split: ``DATA/train/<class>/<image>`` + ``DATA/validation/<class>/<image>``; the split folders may
  also be named ``training`` and ``val`` / ``valid`` / ``test`` / ``testing``;
- single: ``DATA/<class>/<image>``, with a stratified, seeded ``validation_split``.

Class names are the folder names sorted alphanumerically (Keras' order), so label ``i`` always
means ``class_names[i]``. Images are found recursively inside each class folder; hidden files and
folders (``.quarantine``, ``.DS_Store``) are skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imgclf.errors import ImgclfError

#: File extensions read as images (lower case). Source: Pillow's formats the issue asks for.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp")
#: Folder names taken as the training split.
TRAIN_NAMES = ("train", "training")
#: Folder names taken as the held-out split, in order of preference for validation.
VALIDATION_NAMES = ("validation", "val", "valid", "test", "testing")
#: Folder names preferred by :func:`load_eval_samples` (a test set beats a validation set).
EVAL_NAMES = ("test", "testing", "validation", "val", "valid")
#: Validation fraction used for the single layout when none is given.
DEFAULT_VALIDATION_SPLIT = 0.2


@dataclass(frozen=True)
class Samples:
    """Image files and their integer labels.

    Attributes:
        paths: image file paths, ``n`` strings.
        labels: array of shape ``(n,)`` int32; ``labels[i]`` indexes the dataset's ``class_names``.
    """

    paths: tuple[str, ...]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    def counts(self, num_classes: int) -> list[int]:
        """Number of images per class, a list of ``num_classes`` ints."""
        return np.bincount(self.labels, minlength=num_classes).tolist()


@dataclass(frozen=True)
class Dataset:
    """A dataset found on disk: class names plus training and (optional) validation samples.

    Attributes:
        root: the folder given by the user.
        class_names: label names in label order (sorted folder names).
        train: training samples.
        validation: validation samples, or ``None`` when training without validation.
        layout: ``"split"`` (train/ + validation/ folders) or ``"single"`` (one folder, split here).
        validation_split: the fraction held out for the single layout, else ``None``.
    """

    root: Path
    class_names: tuple[str, ...]
    train: Samples
    validation: Samples | None
    layout: str
    validation_split: float | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _check_dir(path: str | os.PathLike, what: str = "DATA") -> Path:
    root = Path(path).expanduser()
    if not root.exists():
        raise ImgclfError(f"{what} folder does not exist. Received: {str(path)!r}")
    if not root.is_dir():
        raise ImgclfError(f"{what} must be a folder of class subfolders, not a file. Received: {str(path)!r}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ImgclfError(f"{what} folder is not readable (permission denied). Received: {str(path)!r}")
    return root


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name ends in one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return str(path).lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files under ``folder``, recursively, sorted; hidden files and folders skipped."""
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        found.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".") and is_image_file(f))
    return found


def scan_classes(folder: str | os.PathLike) -> dict[str, list[str]]:
    """Map each class subfolder of ``folder`` to its image files.

    Args:
        folder: a folder laid out as ``folder/<class>/<image>``.

    Returns:
        ``{class_name: [paths]}`` in sorted class order.

    Raises:
        ImgclfError: when ``folder`` has no class subfolders, or a class folder holds no images.
    """
    folder = _check_dir(folder)
    classes = {d.name: list_images(d) for d in _subdirs(folder)}
    if not classes:
        raise ImgclfError(
            f"{str(folder)!r} has no class subfolders: expected DATA/<class>/<image> "
            f"or DATA/train/<class>/<image> + DATA/validation/<class>/<image>."
        )
    empty = [name for name, paths in classes.items() if not paths]
    if empty:
        raise ImgclfError(
            f"class folder {empty[0]!r} in {str(folder)!r} has no images "
            f"(expected files ending in {', '.join(IMAGE_EXTENSIONS)})."
        )
    return classes


def _samples(classes: dict[str, list[str]], class_names: tuple[str, ...], where: Path) -> Samples:
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(classes) - set(index))
    if unknown:
        raise ImgclfError(
            f"{str(where)!r} has class {unknown[0]!r}, which is not one of the known classes {list(class_names)}."
        )
    paths, labels = [], []
    for name, files in classes.items():
        paths.extend(files)
        labels.extend([index[name]] * len(files))
    return Samples(tuple(paths), np.asarray(labels, dtype=np.int32))


def _find_named(root: Path, names: tuple[str, ...]) -> Path | None:
    by_name = {d.name.lower(): d for d in _subdirs(root)}
    return next((by_name[n] for n in names if n in by_name), None)


def check_validation_split(validation_split: float | None) -> float | None:
    """Validate ``validation_split``: ``None`` (automatic) or a float in ``[0, 1)``.

    Raises:
        ImgclfError: when it is outside ``[0, 1)``.
    """
    if validation_split is None:
        return None
    if (
        isinstance(validation_split, bool)
        or not isinstance(validation_split, (int, float))
        or not (0.0 <= float(validation_split) < 1.0)
    ):
        raise ImgclfError(f"validation_split must be a float in [0, 1). Received: {validation_split!r}")
    return float(validation_split)


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
        tr_p, va_p, tr_y, va_y = train_test_split(
            list(samples.paths),
            samples.labels,
            test_size=validation_split,
            stratify=samples.labels,
            random_state=seed,
        )
    except ValueError as exc:
        raise ImgclfError(
            f"cannot make a stratified validation_split={validation_split} of {len(samples)} images: {exc}"
        ) from None
    order_tr, order_va = np.argsort(tr_p, kind="stable"), np.argsort(va_p, kind="stable")
    return (
        Samples(tuple(np.asarray(tr_p)[order_tr]), np.asarray(tr_y, np.int32)[order_tr]),
        Samples(tuple(np.asarray(va_p)[order_va]), np.asarray(va_y, np.int32)[order_va]),
    )


def load_folder(path: str | os.PathLike, validation_split: float | None = None, seed: int = 0) -> Dataset:
    """Find the images and labels of a dataset folder.

    Args:
        path: ``DATA`` with ``train/`` + ``validation/`` class folders, or ``DATA/<class>/...``.
        validation_split: fraction of a single-layout folder held out for validation; ``None``
            means 0.2 for the single layout. ``0`` trains without validation. Ignored when the
            folder has its own validation split, unless it only has ``train/``.
        seed: seed of the stratified split.

    Returns:
        A :class:`Dataset`. Class names come from the training folders, sorted.

    Raises:
        ImgclfError: the path is missing, unreadable or not a folder; it has no class subfolders;
            a class folder is empty; there are fewer than two classes; the validation folder has
            a class the training folder lacks; or ``validation_split`` is not in ``[0, 1)``.
    """
    root = _check_dir(path)
    validation_split = check_validation_split(validation_split)
    train_dir = _find_named(root, TRAIN_NAMES)
    layout = "split" if train_dir is not None else "single"
    classes = scan_classes(train_dir or root)
    class_names = tuple(classes)
    if len(class_names) < 2:
        raise ImgclfError(
            f"need at least 2 classes (one subfolder each) to train a classifier; "
            f"found 1 ({class_names[0]!r}) in {str(train_dir or root)!r}."
        )
    train = _samples(classes, class_names, train_dir or root)
    validation = None
    val_dir = _find_named(root, VALIDATION_NAMES) if train_dir is not None else None
    used_split = None
    if val_dir is not None:
        validation = _samples(scan_classes(val_dir), class_names, val_dir)
    else:
        used_split = DEFAULT_VALIDATION_SPLIT if validation_split is None else validation_split
        if used_split > 0:
            train, validation = stratified_split(train, used_split, seed)
    return Dataset(root, class_names, train, validation, layout, used_split)


def load_eval_samples(path: str | os.PathLike, class_names: tuple[str, ...] | list[str]) -> Samples:
    """Samples to evaluate a trained model on, labelled with the model's ``class_names``.

    A folder with split subfolders gives its test split if it has one, else its validation split;
    a folder of class subfolders gives all its images.

    Raises:
        ImgclfError: the folder is unusable (see :func:`scan_classes`) or has a class the model
            does not know.
    """
    root = _check_dir(path)
    split_dir = _find_named(root, EVAL_NAMES)
    if split_dir is None and _find_named(root, TRAIN_NAMES) is not None:
        raise ImgclfError(f"{str(root)!r} has a train/ folder but no validation/ or test/ folder to evaluate on.")
    folder = split_dir or root
    return _samples(scan_classes(folder), tuple(class_names), folder)
