"""Label tables: a CSV, TSV or Parquet file (or a ``pandas.DataFrame``) naming each picture and its label — Kaggle's
cassava (``train.csv``: ``image_id``, ``label`` as a number, ``train_images/``, ``label_num_to_disease_map.json``),
a dermoscopy set's ``metadata.csv`` (an unnamed index column, ids without the file extension, a ``patient_id``
column, labels as ``0.0`` / ``1.0``) — read as a :class:`~imgclf.data.samples.Dataset`.

The options have the field's names: ``images`` (Keras ``flow_from_dataframe``'s ``directory``), ``x_col`` and
``y_col`` (Keras'), ``suffix`` (fastai ``from_df``'s ``suff``), ``class_names`` (a JSON file mapping label values to
names), ``split_col`` (``train`` / ``valid`` / ``validation`` / ``test`` values, or booleans as fastai's
``is_valid``) and ``group_col`` (a patient, a plant, a burst of phone shots: every group inside one split,
stratified by label as far as the groups allow — scikit-learn's ``StratifiedGroupKFold``, seeded).

Nothing is hidden and nothing is fatal that need not be: rows naming no image, images no row names, a file named by
rows with different labels, empty labels and unknown split values are each one :class:`TableProblem`, counted in
:attr:`TableSource.summary` and kept out of training; an error only when a named column does not exist (the columns
that do are named) or nothing usable is left. The images folder is listed once (one ``scandir`` a folder, never one
``stat`` a row).
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from imgclf.data.files import IMAGE_EXTENSIONS
from imgclf.data.samples import Dataset, Samples, default_split, group_split, stratified_split
from imgclf.data.storage import sha256_of
from imgclf.errors import ImgclfError

#: File suffixes read as label tables.
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
#: Column names taken as the file column / the label column when none is named, in order of preference.
FILE_COLUMNS = ("image", "image_id", "image_name", "filename", "file", "path", "fname", "id", "isic_id")
LABEL_COLUMNS = ("label", "labels", "class", "target", "y", "category", "diagnosis")
#: Folders beside a table tried for its images, after the table's own folder.
IMAGE_FOLDERS = ("images", "train_images", "train")
#: Split values: the held-out split (validation), and the training split.
HELD_OUT = {"valid", "validation", "val", "test", "testing", "true", "1", "yes"}
TRAINING = {"train", "training", "false", "0", "no"}


@dataclass(frozen=True)
class TableColumns:
    """How to read a label table; every field ``None`` means "find it" (see :func:`load_table`)."""

    images: str | None = None
    x_col: str | None = None
    y_col: str | None = None
    suffix: str | None = None
    class_names: str | None = None
    split_col: str | None = None
    group_col: str | None = None

    @classmethod
    def of(cls, settings) -> TableColumns:
        """The table options of ``settings`` (an estimator, :class:`~imgclf.settings.Settings`, anything with
        those attributes)."""
        return cls(**{name: getattr(settings, name, None) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class TableProblem:
    """One row or file left out: ``kind`` (``no_image``, ``no_row``, ``conflicting_labels``, ``duplicate_row``,
    ``empty_label``, ``unknown_split``), the table's ``row`` (1-based data row, ``None`` for a file no row names),
    the ``value`` it names, and ``detail``."""

    kind: str
    row: int | None
    value: str
    detail: str = ""


@dataclass(frozen=True)
class TableSource:
    """Where a table dataset came from: the ``path`` (``None`` for a DataFrame) and its SHA-256, the columns used,
    the ``images`` folder, the :class:`TableProblem` list, each image's ``groups`` (path → group) and how the split
    was made (``split``: ``column``, ``groups`` or ``stratified``)."""

    path: str | None
    sha256: str | None
    x_col: str
    y_col: str
    images: str
    split_col: str | None = None
    group_col: str | None = None
    problems: tuple[TableProblem, ...] = ()
    groups: dict = field(default_factory=dict)
    split: str = "stratified"

    def kinds(self) -> dict[str, int]:
        """How many problems of each kind, sorted by kind."""
        return dict(sorted(Counter(p.kind for p in self.problems).items()))

    @property
    def summary(self) -> str:
        """One line: what was left out, by kind."""
        left = ", ".join(f"{n} {kind.replace('_', ' ')}" for kind, n in self.kinds().items())
        return f"left out: {left}" if left else "nothing left out"

    def to_record(self) -> dict:
        """``config.yaml``'s record of the table: path, SHA-256, columns, images folder, problems by kind."""
        return {"table": self.path, "sha256": self.sha256, "x_col": self.x_col, "y_col": self.y_col,
                "images": self.images, "split_col": self.split_col, "group_col": self.group_col,
                "split": self.split, "problems": self.kinds()}  # fmt: skip


def is_table(path) -> bool:
    """True for a ``pandas.DataFrame``, or an existing file whose suffix is a label table's
    (:data:`TABLE_SUFFIXES`) — a ``.csv`` whose header names pixels is a pixel CSV instead
    (:func:`imgclf.data.pixel_csv.has_pixel_header`)."""
    from imgclf.data.pixel_csv import has_pixel_header

    if type(path).__name__ == "DataFrame":
        return True
    if not isinstance(path, (str, os.PathLike)) or not Path(path).is_file():
        return False
    suffix = Path(path).suffix.lower()
    return suffix in TABLE_SUFFIXES and not (suffix == ".csv" and has_pixel_header(path))


def read_table(path):
    """The table as a ``pandas.DataFrame`` of strings (every cell as written; empty cells ``""``).

    Raises:
        ImgclfError: pandas (or, for Parquet, pyarrow) is not installed, or the file cannot be parsed.
    """
    try:
        import pandas as pd
    except ImportError:
        raise ImgclfError("label tables need pandas: pip install pandas") from None
    if type(path).__name__ == "DataFrame":
        return path.astype(str).where(path.notna(), "")
    suffix = Path(path).suffix.lower()
    try:
        if suffix == ".parquet":
            try:
                frame = pd.read_parquet(path)
            except ImportError:
                raise ImgclfError("Parquet tables need pyarrow: pip install 'imgclf[parquet]'") from None
            return frame.astype(str).where(frame.notna(), "")
        return pd.read_csv(path, sep="\t" if suffix == ".tsv" else ",", dtype=str, keep_default_na=False,
                           skipinitialspace=True)  # fmt: skip
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise ImgclfError(f"cannot read the label table {str(path)!r}: {exc}") from None


def _listing(folder: Path) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``(relative posix path → path, path without its extension → paths)`` of every image under ``folder``
    (hidden files and folders skipped), one ``scandir`` a folder."""
    by_name: dict[str, str] = {}
    by_stem: dict[str, list[str]] = {}
    stack = [(folder, "")]
    while stack:
        here, prefix = stack.pop()
        try:
            entries = list(os.scandir(here))
        except OSError:
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            rel = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                stack.append((Path(entry.path), rel + "/"))
            elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS:
                by_name[rel] = entry.path
                by_stem.setdefault(os.path.splitext(rel)[0], []).append(entry.path)
    return by_name, by_stem


def _match(value: str, by_name, by_stem, suffix: str | None, folder_name: str) -> str | None:
    """The image a cell names: as written (``./`` and backslashes aside), with ``suffix``, without a leading folder
    of the images folder's own name, or — for a name without an image extension — the one image of that stem."""
    name = value.strip().replace("\\", "/").removeprefix("./")
    tries = [name + suffix] if suffix else []
    tries += [name, name.removeprefix(folder_name + "/")]
    for t in tries:
        if t in by_name:
            return by_name[t]
    if os.path.splitext(name)[1].lower() not in IMAGE_EXTENSIONS:
        found = by_stem.get(name) or by_stem.get(name.removeprefix(folder_name + "/"))
        if found and len(found) == 1:
            return found[0]
    return None


def normalise_label(value: str) -> str:
    """A label cell as a class name: surrounding spaces dropped, ``1.0`` → ``1`` (a float that is a whole number)."""
    text = str(value).strip()
    if re.fullmatch(r"[+-]?\d+\.0*", text):
        return str(int(float(text)))
    return text


def _column(frame, name: str | None, what: str, table: str) -> str | None:
    if name is not None and name not in frame.columns:
        raise ImgclfError(f"{what} {name!r} is not a column of {table}. Its columns: {list(frame.columns)}")
    return name


def _sub_listing(listing, prefix: str):
    """The part of a folder's :func:`_listing` under its subfolder ``prefix`` (``"train_images/"``), re-rooted."""
    by_name, by_stem = listing
    n = len(prefix)
    return ({k[n:]: v for k, v in by_name.items() if k.startswith(prefix)},
            {k[n:]: v for k, v in by_stem.items() if k.startswith(prefix)})  # fmt: skip


def _find_file_column(frame, folders, suffix, only=None):
    """``(column, images folder, listing)``: the column (of ``only``, else any) whose values name the most images,
    in the first folder of ``folders`` where any does (preferring :data:`FILE_COLUMNS` names on a tie). The first
    folder is listed once; the others, inside it, are cut from its listing. A named column (``only``) that finds no
    image is taken all the same, in the first folder (its rows are then problems)."""
    sample, first, fallback = frame.head(200), None, (None, None, None)
    for folder in folders:
        if not folder.is_dir():
            continue
        if first is None:
            first = (folder, _listing(folder))
            listing = first[1]
        elif first[0] in folder.parents:
            listing = _sub_listing(first[1], folder.relative_to(first[0]).as_posix() + "/")
        else:
            listing = _listing(folder)
        scores = []
        for k, col in enumerate(only or frame.columns):
            hits = sum(_match(v, *listing, suffix, folder.name) is not None for v in sample[col])
            scores.append((hits, str(col).lower() in FILE_COLUMNS, -k, col))
        best = max(scores, default=(0, False, 0, None))
        if best[0] > 0:
            return best[3], folder, listing
        fallback = fallback if fallback[0] else ((only or [None])[0], folder, listing)
    return fallback


def load_table(path, columns: TableColumns | None = None, validation_split: float | None = None,
               seed: int = 0) -> tuple[Dataset, TableSource]:  # fmt: skip
    """A :class:`~imgclf.data.samples.Dataset` from a label table (see the module's description).

    Args:
        path: a ``.csv``, ``.tsv`` or ``.parquet`` file, or a ``pandas.DataFrame`` (with ``columns.images`` given).
        columns: how to read it (:class:`TableColumns`); ``None`` finds every column.
        validation_split: the fraction held out when the table has no split column (default 0.2; 0: none).
        seed: seed of the held-out split.

    Returns:
        ``(dataset, source)``: the dataset (``layout="table"``; class names the labels in their order — numbers in
        numeric order, else alphanumeric — or the names ``class_names`` maps them to) and its :class:`TableSource`.

    Raises:
        ImgclfError: a named column or the images folder does not exist (the ones that do are named); no column
            names an image; a ``class_names`` file that is not a JSON object; fewer than two classes left; a split
            impossible with these groups.
    """
    columns = columns or TableColumns()
    frame = read_table(path)
    in_memory = type(path).__name__ == "DataFrame"
    table = "the table" if in_memory else repr(str(path))
    home = Path(columns.images) if in_memory and columns.images else (Path(path).parent if not in_memory else None)
    if home is None:
        raise ImgclfError("a DataFrame names its images relative to a folder: give images=FOLDER.")
    frame = frame[[c for c in frame.columns if not re.fullmatch(r"Unnamed: \d+", str(c))]]  # an index column
    for what, name in (("x_col", columns.x_col), ("y_col", columns.y_col), ("split_col", columns.split_col),
                       ("group_col", columns.group_col)):  # fmt: skip
        _column(frame, name, what, table)
    if columns.images is not None:
        folders = [Path(columns.images)]
        if not folders[0].is_dir():
            raise ImgclfError(f"images must be a folder. Received: {columns.images!r}")
    else:
        folders = [home] + [home / name for name in IMAGE_FOLDERS]
    only = [columns.x_col] if columns.x_col is not None else None
    x_col, folder, listing = _find_file_column(frame, folders, columns.suffix, only)
    if x_col is None:
        where = ", ".join(repr(str(f)) for f in folders if f.is_dir())
        raise ImgclfError(f"no column of {table} names an image in {where or 'its folder'}: give x_col (its "
                          f"columns: {list(frame.columns)}) and images=FOLDER.")  # fmt: skip
    used = {x_col, columns.split_col, columns.group_col}
    y_col = columns.y_col or _find_label_column(frame, used, table)
    names = _names_map(columns.class_names)
    return _build(frame, path if not in_memory else None, x_col, y_col, folder, listing, names, columns,
                  validation_split, seed)  # fmt: skip


def _find_label_column(frame, used, table: str) -> str:
    rest = [c for c in frame.columns if c not in used]
    if len(rest) == 1:
        return rest[0]
    named = [c for c in rest if str(c).lower() in LABEL_COLUMNS]
    if named:
        return named[0]
    raise ImgclfError(f"which column of {table} holds the label? Give y_col (one of {rest}).")


def _names_map(file: str | None) -> dict[str, str]:
    if file is None:
        return {}
    try:
        mapping = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ImgclfError(
            f"class_names must be a JSON file mapping labels to names. Received: {file!r} ({exc})"
        ) from None
    if not isinstance(mapping, dict) or not all(isinstance(v, str) for v in mapping.values()):
        raise ImgclfError(f"class_names must map each label to a name (a JSON object of strings). Received: {file!r}")
    return {normalise_label(k): v for k, v in mapping.items()}


def _build(frame, path, x_col, y_col, folder: Path, listing, names, columns: TableColumns, validation_split, seed):
    problems: list[TableProblem] = []
    by_name, by_stem = listing
    chosen: dict[str, tuple[str, str, str, int]] = {}  # image → (label, split, group, row)
    conflicted: set[str] = set()
    named: set[str] = set()  # every image some row names, whatever became of the row
    for row, record in enumerate(frame.to_dict("records"), start=1):
        value = str(record[x_col])
        image = _match(value, by_name, by_stem, columns.suffix, folder.name)
        if image is None:
            problems.append(TableProblem("no_image", row, value, f"in {folder}"))
            continue
        named.add(image)
        label = normalise_label(record[y_col])
        if not label:
            problems.append(TableProblem("empty_label", row, value))
            continue
        split = "train"
        if columns.split_col is not None:
            cell = str(record[columns.split_col]).strip().lower()
            if cell not in HELD_OUT | TRAINING:
                problems.append(TableProblem("unknown_split", row, value, f"{columns.split_col}={cell!r}"))
                continue
            split = "validation" if cell in HELD_OUT else "train"
        group = str(record[columns.group_col]).strip() if columns.group_col is not None else ""
        if image in chosen:
            first = chosen[image]
            if first[0] != label:
                conflicted.add(image)
                problems.append(TableProblem("conflicting_labels", row, value,
                                             f"{first[0]!r} in row {first[3]}, {label!r} here"))  # fmt: skip
            else:
                problems.append(TableProblem("duplicate_row", row, value, f"the same as row {first[3]}"))
            continue
        chosen[image] = (label, split, group, row)
    for image in conflicted:
        del chosen[image]
    problems += [TableProblem("no_row", None, rel) for rel, image in sorted(by_name.items()) if image not in named]
    raw = sorted({v[0] for v in chosen.values()}, key=_label_order)  # the table's order: 0, 1, 2, ..., 10
    labels = [names.get(label, label) for label in raw]
    if len(set(labels)) < len(labels):
        raise ImgclfError(f"class_names gives two labels the same name: {dict(zip(raw, labels))}")
    if len(labels) < 2:
        raise ImgclfError(f"need at least 2 classes to train a classifier; the table gives {labels} from "
                          f"{len(chosen)} usable rows "
                          f"({TableSource(None, None, '', '', '', problems=tuple(problems)).summary}).")  # fmt: skip
    index = {label: i for i, label in enumerate(raw)}
    images = list(chosen)
    all_samples = Samples(tuple(images), np.array([index[chosen[i][0]] for i in images], np.int32))
    groups = {i: chosen[i][2] for i in images} if columns.group_col is not None else {}
    train, validation, used_split, how = _split(all_samples, chosen, columns, validation_split, seed)
    source = TableSource(str(Path(path).resolve()) if path is not None else None,
                         sha256_of(path) if path is not None else None, x_col, y_col, str(folder.resolve()),
                         columns.split_col, columns.group_col, tuple(problems), groups, how)  # fmt: skip
    root = Path(path).resolve() if path is not None else folder.resolve()
    return Dataset(root, tuple(labels), train, validation, "table", used_split, source, groups or None), source


def _label_order(label: str):
    return (0, int(label), "") if re.fullmatch(r"[+-]?\d+", label) else (1, 0, label)


def _split(samples: Samples, chosen, columns: TableColumns, validation_split, seed):
    """``(train, validation, fraction held out or None, how)``: the table's split column, else groups kept whole
    (StratifiedGroupKFold), else a stratified split."""
    if columns.split_col is not None:
        held = np.array([chosen[p][1] == "validation" for p in samples.paths])
        train, val = samples.subset(np.flatnonzero(~held)), samples.subset(np.flatnonzero(held))
        return train, (val if len(val) else None), None, "column"
    fraction = default_split(samples) if validation_split is None else validation_split
    if fraction <= 0:
        return samples, None, fraction, "none"
    if columns.group_col is not None:
        groups = [chosen[p][2] for p in samples.paths]
        train, val = group_split(samples, groups, fraction, seed, f"group_col {columns.group_col!r}")
        return train, val, fraction, "groups"
    train, val = stratified_split(samples, fraction, seed)
    return train, val, fraction, "stratified"


__all__ = ["TableColumns", "TableProblem", "TableSource", "is_table", "load_table", "normalise_label", "read_table"]
