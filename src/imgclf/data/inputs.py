"""What a user handed in: one function tells every kind of input apart, for training and prediction alike.

``fit(X, y)``, ``predict(X)``, ``imgclf train DATA`` and ``imgclf predict RUN ITEMS`` all ask :func:`input_kind`;
what each kind then means (a dataset's layout, the images to score) is decided by the stage that reads it.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imgclf.data.files import list_images
from imgclf.data.packed import is_packed
from imgclf.data.samples import Dataset
from imgclf.data.storage import is_url
from imgclf.errors import ImgclfError

#: The kinds :func:`input_kind` tells apart.
KINDS = ("dataset", "array", "packed", "csv", "folder", "file", "name", "paths")


def input_kind(X) -> str:
    """Which kind of input ``X`` is.

    Returns:
        ``dataset`` a loaded :class:`~imgclf.data.samples.Dataset`; ``array`` uint8 pixels (an ndarray not of
        strings); ``packed`` a folder or URL written by ``imgclf pack``; ``csv`` an existing ``.csv`` file (a pixel
        CSV, one image per row); ``folder`` an existing folder (images, class folders or pixel CSVs); ``file``
        another existing file (an image); ``name`` a path that does not exist (a named dataset, or a mistake the
        reader reports); ``paths`` anything else, a sequence of paths (an ndarray of strings, as scikit-learn
        passes them, included).
    """
    if isinstance(X, Dataset):
        return "dataset"
    if isinstance(X, np.ndarray) and X.dtype.kind not in "USO":
        return "array"
    if not isinstance(X, (str, os.PathLike)):
        return "paths"
    if is_packed(X):
        return "packed"
    if is_url(X):
        return "name"
    path = Path(X)
    if path.is_file():
        return "csv" if path.suffix.lower() == ".csv" else "file"
    return "folder" if path.is_dir() else "name"


def expand_image_paths(X) -> list[str]:
    """Turn a path or list of paths into image files: folders are searched recursively.

    Raises:
        ImgclfError: a path does not exist, or a folder holds no image files.
    """
    items = [X] if isinstance(X, (str, os.PathLike)) else list(X)
    paths: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = list_images(p)
            if not found:
                raise ImgclfError(f"folder {str(item)!r} holds no image files.")
            paths.extend(found)
        elif p.is_file():
            paths.append(os.fspath(p))
        else:
            raise ImgclfError(f"image path does not exist. Received: {str(item)!r}")
    return paths


__all__ = ["KINDS", "input_kind", "expand_image_paths"]
