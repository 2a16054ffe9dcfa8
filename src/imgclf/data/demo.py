"""The embedded default dataset: scikit-learn's bundled handwritten digits as a folder of PNGs.

``load_digits`` ships inside scikit-learn (UCI "Optical Recognition of Handwritten Digits",
1,797 images of 8x8 pixels, 16 grey levels, 10 classes), so this dataset needs no download.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from imgclf._io import atomic_dir, is_complete
from imgclf.data.cache import imgclf_home


def write_digits(root: str | os.PathLike | None = None) -> Path:
    """Write the digits as ``root/<digit>/<index>.png`` (8x8 grayscale PNG, 0-255) and return ``root``.

    Args:
        root: destination folder; default ``<imgclf cache>/datasets/digits``. If it already
            holds a finished copy, it is returned untouched.

    Returns:
        The dataset folder, with class folders ``0`` ... ``9`` (1,797 images in all).
    """
    from sklearn.datasets import load_digits

    root = Path(root) if root is not None else imgclf_home() / "datasets" / "digits"
    if is_complete(root):
        return root
    digits = load_digits()
    with atomic_dir(root, "sklearn.datasets.load_digits") as tmp:
        # 16 grey levels (0..16) stretched to 0..255, ink bright on black as in the source.
        pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
        for i, (image, label) in enumerate(zip(pixels, digits.target)):
            folder = tmp / str(label)
            folder.mkdir(exist_ok=True)
            Image.fromarray(image, "L").save(folder / f"{i:04d}.png")
    return root
