"""Thumbnails for the studio's grids: made once with Pillow, kept in ``PROJECT/.imgclf-studio/thumbs/``.

A thumbnail is keyed by the image's path, size and modification time, so a file that changes (or is relabelled:
its path changes) gets a new one; the browser may cache each for a day (``Cache-Control``) for the same reason.
"""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

from PIL import Image, ImageOps

from imgclf._io import atomic_path
from imgclf.studio.project import STUDIO_DIR, inside

#: Longest side of a thumbnail, in pixels.
SIDE = 160
#: Seconds a browser may keep a thumbnail.
MAX_AGE = 86400


def thumbnail(root: str | os.PathLike, relative: str) -> bytes:
    """The JPEG thumbnail of the project image ``relative`` (made and stored on first use).

    Raises:
        ImgclfError: a path outside the project (:func:`imgclf.studio.project.inside`).
        OSError: the file is missing or not an image Pillow reads.
    """
    path = inside(root, relative)
    stat = path.stat()
    key = hashlib.sha1(f"{relative}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()
    cached = Path(root).resolve() / STUDIO_DIR / "thumbs" / key[:2] / f"{key}.jpg"
    if cached.is_file():
        return cached.read_bytes()
    with Image.open(path) as img:
        img.draft("RGB", (SIDE, SIDE))  # JPEG: decode at a reduced DCT scale
        small = ImageOps.exif_transpose(img).convert("RGB")
        small.thumbnail((SIDE, SIDE))
    out = io.BytesIO()
    small.save(out, format="JPEG", quality=85)
    data = out.getvalue()
    cached.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cached) as tmp:
        tmp.write_bytes(data)
    return data
