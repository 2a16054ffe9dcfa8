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
import re
from pathlib import Path

import numpy as np

from imgclf.data.files import IMAGE_EXTENSIONS, is_image_file, is_imgclf_output, list_images
from imgclf.data.packed import is_packed, load_packed
from imgclf.data.pixel_csv import find_csvs, is_pixel_csv_source
from imgclf.data.samples import (  # noqa: F401  (the dataset types live there; re-exported)
    DEFAULT_VALIDATION_SPLIT,
    MIN_IMAGES_TO_SPLIT,
    Dataset,
    Samples,
    check_validation_split,
    dataset_from_files,
    default_split,
    group_of,
    group_split,
    stratified_split,
)
from imgclf.data.tables import TableColumns, is_table, load_table
from imgclf.errors import ImgclfError

#: Folder names taken as the training split.
TRAIN_NAMES = ("train", "training")
#: Folder names taken as the held-out split, in order of preference for validation.
VALIDATION_NAMES = ("validation", "val", "valid", "test", "testing")
#: Folder names preferred by :func:`load_eval_samples` (a test set beats a validation set).
EVAL_NAMES = ("test", "testing", "validation", "val", "valid")
#: How a label is read from a file name in a flat folder (Kaggle's ``cat.123.jpg``, ``dog_7.png``,
#: ``golden-retriever-12.jpg``): everything before a separator and the trailing number.
DEFAULT_LABEL_PATTERN = r"^(?P<label>.+?)[._-]\d+\.[^.]+$"


def check_dir(path: str | os.PathLike, what: str = "DATA") -> Path:
    """``path`` as a :class:`~pathlib.Path` if it is a readable folder.

    Raises:
        ImgclfError: it does not exist, is a file, or cannot be read; the message calls it ``what``.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise ImgclfError(f"{what} folder does not exist. Received: {str(path)!r}")
    if not root.is_dir():
        raise ImgclfError(f"{what} must be a folder of class subfolders, not a file. Received: {str(path)!r}")
    if not os.access(root, os.R_OK | os.X_OK):
        raise ImgclfError(f"{what} folder is not readable (permission denied). Received: {str(path)!r}")
    return root


def _subdirs(folder: Path) -> list[Path]:
    """Class (or split) folders: not hidden, and not imgclf's own output (``runs/`` inside DATA is no class)."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".") and not is_imgclf_output(p))


def _flat_classes(folder: Path, label_pattern: str) -> dict[str, list[str]]:
    """Group a flat folder's images by the label in their names (Kaggle's ``cat.123.jpg`` layout)."""
    files = sorted(str(p) for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and is_image_file(p))
    if not files:
        return {}
    try:
        regex = re.compile(label_pattern)
    except re.error as exc:
        raise ImgclfError(
            f"label_pattern is not a valid regular expression ({exc}). Received: {label_pattern!r}"
        ) from None
    classes: dict[str, list[str]] = {}
    for path in files:
        match = regex.search(os.path.basename(path))
        label = match and (match.groupdict().get("label") or (match.group(1) if regex.groups else None))
        if not label:
            raise ImgclfError(
                f"{str(folder)!r} has no class subfolders, and file name {os.path.basename(path)!r} has no label "
                f"matching label_pattern {label_pattern!r}: expected DATA/<class>/<image> or images named like "
                f"cat.123.jpg."
            )
        classes.setdefault(label, []).append(path)
    return dict(sorted(classes.items()))


def scan_classes(folder: str | os.PathLike, label_pattern: str = DEFAULT_LABEL_PATTERN) -> dict[str, list[str]]:
    """Map each class of ``folder`` to its image files.

    Args:
        folder: a folder laid out as ``folder/<class>/<image>``, or a flat folder of images whose
            names carry the label (``cat.123.jpg``; see ``label_pattern``).
        label_pattern: regular expression reading the label from a flat folder's file names: its
            ``label`` group, or else its first group. Default :data:`DEFAULT_LABEL_PATTERN`.

    Returns:
        ``{class_name: [paths]}`` in sorted class order.

    Raises:
        ImgclfError: when ``folder`` has neither class subfolders nor labelled image names, a class
            folder holds no images, or a flat file name does not match ``label_pattern``.
    """
    folder = check_dir(folder)
    classes = {d.name: list_images(d) for d in _subdirs(folder)}
    if not classes:
        classes = _flat_classes(folder, label_pattern)
    if not classes:
        raise ImgclfError(
            f"{str(folder)!r} has no class subfolders: expected DATA/<class>/<image>, "
            f"DATA/train/<class>/<image> + DATA/validation/<class>/<image>, or images named <class>.<n>.jpg."
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


def unwrap_folder(root: Path) -> Path:
    """Step into a lone wrapper folder, as archives make: ``pet-images/PetImages/{Cat,Dog}``."""
    while True:
        subdirs = _subdirs(root)
        if len(subdirs) != 1 or any(p.is_file() and is_image_file(p) for p in root.iterdir()):
            return root
        inner = subdirs[0]
        if inner.name.lower() in TRAIN_NAMES + VALIDATION_NAMES or not _subdirs(inner):
            return root  # a lone split or class folder: not a wrapper
        root = inner


def load_folder(
    path: str | os.PathLike,
    validation_split: float | None = None,
    seed: int = 0,
    label_pattern: str | None = DEFAULT_LABEL_PATTERN,
    label_column: str = "label",
    table: TableColumns | None = None,
    group_by: str | None = None,
) -> Dataset:
    """Find the images and labels of a dataset folder, or of a label table (:mod:`imgclf.data.tables`).

    Args:
        path: ``DATA`` with ``train/`` + ``validation/`` class folders, ``DATA/<class>/...``, or a flat
            folder of images named ``<class>.<n>.jpg`` (Kaggle). A lone wrapper folder, as unpacked
            archives have (``PetImages/{Cat,Dog}`` inside ``DATA``), is stepped into.
        validation_split: fraction held out for validation when the data has no validation folder;
            ``None`` means 0.2; ``0`` trains without validation.
        seed: seed of the stratified split.
        label_pattern: how labels are read from flat file names (see :func:`scan_classes`); ``None`` means
            :data:`DEFAULT_LABEL_PATTERN`.
        label_column: the label column of pixel CSVs (see :func:`load_csv_dataset`).
        table: how to read a label table (``path`` a ``.csv`` / ``.tsv`` / ``.parquet`` table or a DataFrame):
            :class:`~imgclf.data.tables.TableColumns`; ``None`` finds its columns.
        group_by: a regex giving each file's group from its name (:func:`~imgclf.data.samples.group_of`): the
            held-out split keeps every group on one side (:func:`~imgclf.data.samples.group_split`).

    Returns:
        A :class:`Dataset`. Class names come from the training folders, sorted.

    Raises:
        ImgclfError: the path is missing, unreadable or not a folder; it has no class subfolders;
            a class folder is empty; there are fewer than two classes; the validation folder has
            a class the training folder lacks; or ``validation_split`` is not in ``[0, 1)``.
    """
    validation_split = check_validation_split(validation_split)
    label_pattern = label_pattern or DEFAULT_LABEL_PATTERN
    if is_table(path):  # first: a DataFrame is no path
        return load_table(path, table, validation_split, seed)[0]
    if is_packed(path):
        return load_packed(path)
    if Path(path).exists() and is_pixel_csv_source(path):
        return load_csv_dataset(path, validation_split, seed, label_column)
    root = unwrap_folder(check_dir(path))
    train_dir = _find_named(root, TRAIN_NAMES)
    train_dir = unwrap_folder(train_dir) if train_dir is not None else None  # train/rps/{rock,...}
    layout = "split" if train_dir is not None else "single"
    classes = scan_classes(train_dir or root, label_pattern)
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
        val_dir = unwrap_folder(val_dir)
        validation = _samples(scan_classes(val_dir, label_pattern), class_names, val_dir)
    else:
        used_split = default_split(train) if validation_split is None else validation_split
        if used_split > 0 and group_by:
            groups = [group_of(p, group_by) for p in train.paths]
            train, validation = group_split(train, groups, used_split, seed, f"group_by {group_by!r}")
        elif used_split > 0:
            train, validation = stratified_split(train, used_split, seed)
    groups = None
    if group_by:
        every = train.paths + (validation.paths if validation is not None else ())
        groups = {p: group_of(p, group_by) for p in every}
    return Dataset(root, class_names, train, validation, layout, used_split, groups=groups)


def _csv_samples(csv_path: Path, class_names, label_column: str) -> Samples:
    from imgclf.data.pixel_csv import read_pixel_csv

    images, raw = read_pixel_csv(csv_path, label_column)
    if raw is None:
        raise ImgclfError(f"pixel CSV {str(csv_path)!r} has no {label_column!r} column to learn from.")
    index = {name: i for i, name in enumerate(class_names)}
    unknown = sorted(set(raw) - set(index))
    if unknown:
        raise ImgclfError(
            f"{str(csv_path)!r} has label {unknown[0]!r}, which is not one of the classes {list(class_names)}."
        )
    paths = tuple(f"{csv_path}#row{k}" for k in range(1, len(raw) + 1))
    return Samples(paths, np.array([index[v] for v in raw], np.int32), images)


def load_csv_dataset(
    path: str | os.PathLike, validation_split: float | None = None, seed: int = 0, label_column: str = "label"
) -> Dataset:
    """A :class:`Dataset` from pixel CSVs (sign-language-MNIST layout; see :mod:`imgclf.data.pixel_csv`).

    ``path`` is a training CSV (validation held out by ``validation_split``, default 0.2) or a folder
    holding ``*train*.csv`` and, optionally, ``*test*.csv`` / ``*valid*.csv`` (used for validation).

    Raises:
        ImgclfError: no training CSV, unreadable CSVs, fewer than two classes.
    """
    from imgclf.data.pixel_csv import class_order, read_pixel_csv

    p = Path(path)
    train_csv, held_csv = (p, None) if p.is_file() else find_csvs(p)
    if train_csv is None:
        raise ImgclfError(f"no *train*.csv found in {str(path)!r}.")
    with open(train_csv, encoding="utf-8") as f:
        header = f.readline().strip().split(",")
    if label_column not in header:
        raise ImgclfError(
            f"pixel CSV {str(train_csv)!r} has no {label_column!r} column to learn from "
            f"(its first columns: {header[:3]}); name it with label_column."
        )
    _, raw = read_pixel_csv(train_csv, label_column)
    if raw is None:
        raise ImgclfError(f"pixel CSV {str(train_csv)!r} has no {label_column!r} column to learn from.")
    class_names = class_order(raw)
    if len(class_names) < 2:
        raise ImgclfError(
            f"need at least 2 classes to train a classifier; found 1 ({class_names[0]!r}) in {str(train_csv)!r}."
        )
    train = _csv_samples(train_csv, class_names, label_column)
    used_split, validation = None, None
    if held_csv is not None:
        validation = _csv_samples(held_csv, class_names, label_column)
    else:
        used_split = DEFAULT_VALIDATION_SPLIT if validation_split is None else validation_split
        if used_split > 0:
            train, validation = stratified_split(train, used_split, seed)
    return Dataset(p, class_names, train, validation, "csv", used_split)


def _table_eval_samples(path, class_names, table: TableColumns) -> Samples:
    dataset, _ = load_table(path, table, validation_split=None if table.split_col else 0.0)
    samples = dataset.validation if table.split_col and dataset.validation is not None else dataset.train
    unknown = sorted(set(dataset.class_names) - set(class_names))
    if unknown:
        raise ImgclfError(f"the label table {str(path)!r} has label {unknown[0]!r}, which is not one of the model's "
                          f"classes {list(class_names)} (give class_names= as the run was trained with).")  # fmt: skip
    index = {name: i for i, name in enumerate(class_names)}
    remap = np.array([index[name] for name in dataset.class_names], np.int32)
    return Samples(samples.paths, remap[samples.labels])


def load_eval_samples(path: str | os.PathLike, class_names: tuple[str, ...] | list[str],
                      table: TableColumns | None = None) -> Samples:  # fmt: skip
    """Samples to evaluate a trained model on, labelled with the model's ``class_names``.

    A folder with split subfolders gives its test split if it has one, else its validation split;
    a folder of class subfolders gives all its images; packed data (``imgclf pack``) its validation split, else its
    training split; a label table (read with ``table``) the rows its split column holds out, else every usable row.

    Raises:
        ImgclfError: the folder is unusable (see :func:`scan_classes`) or has a class the model
            does not know.
    """
    if is_table(path):
        return _table_eval_samples(path, class_names, table or TableColumns())
    if is_packed(path):
        packed = load_packed(path)
        if list(packed.class_names) != list(class_names):
            raise ImgclfError(f"packed data {str(path)!r} has classes {list(packed.class_names)}; the model has "
                              f"{list(class_names)}.")  # fmt: skip
        return packed.validation if packed.validation is not None else packed.train
    if Path(path).exists() and is_pixel_csv_source(path):
        p = Path(path)
        train_csv, held_csv = (p, None) if p.is_file() else find_csvs(p)
        return _csv_samples(held_csv or train_csv, class_names, "label")
    root = unwrap_folder(check_dir(path))
    split_dir = _find_named(root, EVAL_NAMES)
    if split_dir is None and _find_named(root, TRAIN_NAMES) is not None:
        raise ImgclfError(f"{str(root)!r} has a train/ folder but no validation/ or test/ folder to evaluate on.")
    folder = unwrap_folder(split_dir) if split_dir is not None else root
    return _samples(scan_classes(folder), tuple(class_names), folder)
