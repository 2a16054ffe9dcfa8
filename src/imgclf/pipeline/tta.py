"""Test-time augmentation: predict several flipped and cropped views of an image and average them.

The views (fastai's ``tta`` idea, made deterministic): the whole image and its mirror, the centre crop
and its mirror, and the four corner crops, each crop :data:`CROP_FRACTION` of the width and height. Each
view goes through the same :func:`~imgclf.data.images.image_to_array` as training.
"""

from __future__ import annotations

import os

import numpy as np
from PIL import ImageOps

from imgclf.data.images import ImageSpec, check_crop, image_to_array, open_image

#: Side of the crops, as a fraction of the image's width and height.
CROP_FRACTION = 0.9
#: Number of views :func:`tta_views` makes.
NUM_VIEWS = 8


def tta_views(
    path: str | os.PathLike,
    image: ImageSpec,
    crop: tuple[int, int, int, int] | None = None,
) -> np.ndarray:
    """The :data:`NUM_VIEWS` views of one image file (after an optional ``crop`` box ``(x, y, w, h)``).

    Returns:
        uint8 ``(8, height, width, channels)``: full, full mirrored, centre, centre mirrored, then the
        top-left, top-right, bottom-left and bottom-right crops.
    """
    im = open_image(path, image.color_mode)
    if crop is not None:
        x, y, w, h = check_crop(crop, im.size)
        im = im.crop((x, y, x + w, y + h))
    width, height = im.size
    cw, ch = max(1, round(width * CROP_FRACTION)), max(1, round(height * CROP_FRACTION))
    dx, dy = width - cw, height - ch
    centre = im.crop((dx // 2, dy // 2, dx // 2 + cw, dy // 2 + ch))
    corners = [im.crop((x, y, x + cw, y + ch)) for y in (0, dy) for x in (0, dx)]
    views = [im, ImageOps.mirror(im), centre, ImageOps.mirror(centre), *corners]
    return np.stack([image_to_array(v, image.target_size, image.color_mode, image.interpolation) for v in views])
