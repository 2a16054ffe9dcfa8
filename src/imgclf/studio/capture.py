"""New pictures into a class folder: webcam frames and dropped files, saved as JPEG under new names.

Each picture is decoded by Pillow first (what is not an image is refused, nothing written), turned upright by its
EXIF orientation, flattened to RGB (transparency on white, as training reads it) and saved as JPEG at quality
:data:`JPEG_QUALITY` under a fresh name — ``capture-YYYYmmdd-HHMMSS-NNN.jpg`` — opened with exclusive creation, so
an existing file is never overwritten, even by two requests at the same instant.
"""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

from PIL import Image, ImageOps

from imgclf.data.images import image_to_array
from imgclf.errors import ImgclfError
from imgclf.studio.project import SPLITS, inside

#: JPEG quality of a saved picture (Pillow's scale, 1-95; 90 keeps webcam frames visually unchanged).
JPEG_QUALITY = 90
#: A class name the studio may create: letters, digits, ``_ - . space``, not starting with a dot.
CLASS_NAME = re.compile(r"^[\w][\w .\-]{0,63}$")
#: The largest picture taken, in pixels (Pillow's decompression-bomb limit is larger).
MAX_PIXELS = 40_000_000


def class_folder(root: str | os.PathLike, data: str, split: str, cls: str, create: bool = False) -> Path:
    """``PROJECT/DATA[/SPLIT]/CLASS``, created when ``create`` and missing.

    Raises:
        ImgclfError: a path outside the project, DATA not a folder, a split DATA does not have, a
            class name that is not a plain folder name, or a missing class when ``create`` is false.
    """
    root = Path(root).resolve()
    base = inside(root, data)
    if base == root or not base.is_dir():
        raise ImgclfError(f"data must be a data folder of the project. Received: {data!r}")
    present = [s for s in SPLITS if (base / s).is_dir()]
    if split not in (present or [""]):
        expected = f"one of {present}" if present else "empty (this folder has no splits)"
        raise ImgclfError(f"split must be {expected}. Received: {split!r}")
    if not CLASS_NAME.match(cls or ""):
        raise ImgclfError(f"class must be a folder name (letters, digits, '_-. ', not hidden). Received: {cls!r}")
    folder = inside(root, "/".join(p for p in (data, split, cls) if p))
    if not folder.is_dir():
        if not create:
            raise ImgclfError(f"{cls!r} is not a class of {data!r}: create it first.")
        folder.mkdir(parents=True)
    return folder


def _fresh_name(folder: Path, stamp: str, start: int) -> tuple[Path, int]:
    k = start
    while (folder / f"capture-{stamp}-{k:03d}.jpg").exists():
        k += 1
    return folder / f"capture-{stamp}-{k:03d}.jpg", k


def save_pictures(folder: str | os.PathLike, pictures) -> list[Path]:
    """Save encoded pictures (bytes of any image Pillow reads) as JPEGs in ``folder``, under new names.

    Args:
        folder: an existing class folder (see :func:`class_folder`).
        pictures: ``(name, bytes)`` pairs; ``name`` is only used in error messages.

    Returns:
        The files written, in the order given.

    Raises:
        ImgclfError: a picture Pillow cannot decode or larger than :data:`MAX_PIXELS` — checked for every picture
            before any file is written.
    """
    folder = Path(folder)
    decoded = []
    for name, data in pictures:
        try:
            with Image.open(io.BytesIO(data)) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise ImgclfError(f"{name!r} is {im.width} x {im.height} px: at most {MAX_PIXELS} pixels.")
                im.load()
                upright = ImageOps.exif_transpose(im)
        except (OSError, Image.DecompressionBombError, ValueError) as exc:
            raise ImgclfError(f"{name!r} is not an image Pillow can read ({exc}). Nothing was saved.") from None
        decoded.append(Image.fromarray(image_to_array(upright, (upright.height, upright.width), "rgb")))
    stamp, k, written = time.strftime("%Y%m%d-%H%M%S"), 1, []
    for picture in decoded:
        while True:
            path, k = _fresh_name(folder, stamp, k)
            try:
                with open(path, "xb") as out:  # exclusive: another writer's file is never replaced
                    picture.save(out, format="JPEG", quality=JPEG_QUALITY)
                break
            except FileExistsError:
                k += 1
        written.append(path)
        k += 1
    return written
