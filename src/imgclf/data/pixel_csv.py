"""Pixel CSVs in the sign-language-MNIST layout: a header row, then ``label,pixel1,...,pixelN`` per image.

``N`` must be a square (784 = 28x28); values are 0-255 grayscale. The label column is found by name
(default ``label``) anywhere in the row. A folder is searched for ``*train*.csv`` and ``*test*.csv`` /
``*valid*.csv`` files, as Kaggle's ``sign-language-mnist.zip`` unpacks.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np

from imgclf.data.files import is_image_file
from imgclf.errors import ImgclfError

DEFAULT_LABEL_COLUMN = "label"


def has_pixel_header(path: str | os.PathLike) -> bool:
    """True when a CSV's header names pixels: besides one label column, a square number (16 or more) of columns,
    most named with a number (``pixel1``, ``p17``, ``3``). A label table's header (``image_id,label``) is not."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            header = f.readline().strip().split(",")
    except OSError:
        return False
    n = len(header) - 1
    numbered = sum(bool(re.search(r"\d$", h.strip())) for h in header)
    return n >= 16 and math.isqrt(n) ** 2 == n and numbered >= 0.8 * n


def is_pixel_csv_source(path: str | os.PathLike) -> bool:
    """True for a ``.csv`` file with a pixel header (:func:`has_pixel_header`), or a folder with a
    ``*train*.csv`` and no class sub-folders of images."""
    p = Path(path)
    if p.is_file():
        return p.suffix.lower() == ".csv" and has_pixel_header(p)
    if not p.is_dir() or find_csvs(p)[0] is None:
        return False
    return next((q for q in p.rglob("*") if is_image_file(q)), None) is None  # images win over CSVs


def find_csvs(folder: Path) -> tuple[Path | None, Path | None]:
    """``(train_csv, held_out_csv)`` found below ``folder`` by name (``train``; ``test``/``valid``)."""
    csvs = sorted(q for q in folder.rglob("*.csv") if not any(part.startswith(".") for part in q.parts))
    train = next((q for q in csvs if "train" in q.name.lower()), None)
    held = next((q for q in csvs if q != train and any(w in q.name.lower() for w in ("test", "valid"))), None)
    return train, held


def read_pixel_csv(path: str | os.PathLike, label_column: str | None = DEFAULT_LABEL_COLUMN):
    """Read a pixel CSV.

    Args:
        path: the CSV file.
        label_column: header name of the label column; ``None`` (or absent from the header, for
            prediction) means every column is a pixel.

    Returns:
        ``(images, labels)``: uint8 ``(n, side, side, 1)`` and the labels, a list of ``n`` strings
        (``None`` without a label column).

    Raises:
        ImgclfError: no header, a pixel count that is not a square, non-numeric or out-of-range values.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            header = f.readline().strip().split(",")
        data = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ImgclfError(f"cannot read pixel CSV {str(path)!r}: {exc}") from None
    if data.shape[0] == 0:
        raise ImgclfError(f"pixel CSV {str(path)!r} has no rows.")
    if data.shape[1] != len(header) or any(not h for h in header):
        raise ImgclfError(f"pixel CSV {str(path)!r} needs a header row naming every column (label,pixel1,...).")
    labels = None
    if label_column is not None and label_column in header:
        col = header.index(label_column)
        raw = data[:, col]
        labels = [str(int(v)) if float(v).is_integer() else str(v) for v in raw]
        data = np.delete(data, col, axis=1)
    side = math.isqrt(data.shape[1])
    if side * side != data.shape[1]:
        raise ImgclfError(
            f"pixel CSV {str(path)!r} has {data.shape[1]} pixel columns: expected a square number (784 = 28x28)."
        )
    if data.min() < 0 or data.max() > 255:
        raise ImgclfError(f"pixel CSV {str(path)!r} has values outside 0-255.")
    return data.reshape(-1, side, side, 1).round().astype(np.uint8), labels


def class_order(labels) -> tuple[str, ...]:
    """Class names from label strings: numeric ones in numeric order, else alphabetical."""
    unique = {str(v) for v in labels}
    try:
        return tuple(sorted(unique, key=float))
    except ValueError:
        return tuple(sorted(unique))
