"""Image quality: blurred, too dark, too bright, near-blank and oddly shaped pictures, each from one statistic.

The statistics are computed by Pillow and NumPy on the grayscale image at most :data:`SIDE` pixels on its longer side
(``imgclf doctor`` decodes JPEGs at a reduced scale already), so they do not depend on the file's resolution:

- ``blurry``: the variance of the Laplacian (Pech-Pacheco et al. 2000, the usual focus measure) below
  :data:`BLUR_VARIANCE`;
- ``dark`` / ``bright``: mean brightness (0-255) below :data:`DARK_MEAN` / above :data:`BRIGHT_MEAN`;
- ``low_information``: standard deviation of the brightness below :data:`BLANK_STD` (a near-uniform picture);
- ``odd_aspect``: the longer side over :data:`ODD_ASPECT` times the shorter.

Thresholds were chosen on generated pictures (``tests/data/test_quality.py``) and checked on cats_and_dogs_filtered,
where they flag a few images in a hundred (bench/README.md).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Longer side, in pixels, the statistics are measured at.
SIDE = 128
#: Variance of the Laplacian below which a picture is called blurred.
BLUR_VARIANCE = 40.0
#: Mean brightness (0-255) below which a picture is called dark, and above which bright.
DARK_MEAN, BRIGHT_MEAN = 30.0, 230.0
#: Standard deviation of the brightness below which a picture holds almost nothing.
BLANK_STD = 6.0
#: Ratio of the longer to the shorter side above which the shape is odd (resizing squashes it).
ODD_ASPECT = 3.0

#: Quality problem → its explanation (``imgclf doctor`` lists them with the others).
QUALITY_PROBLEMS = {
    "blurry": f"blurred (variance of the Laplacian below {BLUR_VARIANCE:g})",
    "dark": f"too dark (mean brightness below {DARK_MEAN:g} of 255)",
    "bright": f"too bright (mean brightness above {BRIGHT_MEAN:g} of 255)",
    "low_information": f"nearly blank (brightness standard deviation below {BLANK_STD:g})",
    "odd_aspect": f"one side more than {ODD_ASPECT:g}x the other: squashed when resized",
}


def statistics(im: Image.Image) -> dict[str, float]:
    """``{"laplacian_variance", "mean", "std", "aspect"}`` of a decoded image (any mode)."""
    width, height = im.size
    gray = im.convert("L")
    if max(gray.size) > SIDE:
        scale = SIDE / max(gray.size)
        gray = gray.resize((max(1, round(gray.width * scale)), max(1, round(gray.height * scale))),
                           Image.Resampling.BILINEAR)  # fmt: skip
    x = np.asarray(gray, np.float64)
    lap = x[1:-1, 1:-1] * -4 + x[:-2, 1:-1] + x[2:, 1:-1] + x[1:-1, :-2] + x[1:-1, 2:] if min(x.shape) > 2 else x * 0
    return {"laplacian_variance": float(lap.var()), "mean": float(x.mean()), "std": float(x.std()),
            "aspect": max(width, height) / max(1, min(width, height))}  # fmt: skip


def quality_problems(stats: dict[str, float]) -> list[str]:
    """The :data:`QUALITY_PROBLEMS` codes the :func:`statistics` show. A near-blank picture is not also called
    blurred, dark or bright: its one problem is that it holds nothing."""
    if stats["std"] < BLANK_STD:
        found = ["low_information"]
    else:
        found = ["blurry"] if stats["laplacian_variance"] < BLUR_VARIANCE else []
        found += ["dark"] if stats["mean"] < DARK_MEAN else []
        found += ["bright"] if stats["mean"] > BRIGHT_MEAN else []
    return found + (["odd_aspect"] if stats["aspect"] > ODD_ASPECT else [])


__all__ = ["statistics", "quality_problems", "QUALITY_PROBLEMS"]
