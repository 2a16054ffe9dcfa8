"""New pictures into a class folder: webcam frames and dropped files, saved as JPEG under new names.

Pictures go into a data folder's classes only (:func:`imgclf.studio.project.capture_base`), under the data folder's
writer lock. Every header is read first (sizes bounded: :data:`MAX_PIXELS` a picture, :data:`MAX_REQUEST_PIXELS` a
request); then each picture is decoded by Pillow, turned upright by its EXIF orientation, flattened to RGB
(transparency on white, as training reads it) and saved as JPEG at quality :data:`JPEG_QUALITY` to a hidden
temporary file, which is then linked to a fresh name — ``capture-YYYYmmdd-HHMMSS-NNN.jpg`` — so an existing file is
never overwritten, even by two requests at the same instant, and a kill part-way never leaves half a picture.
One picture is decoded at a time; one that fails removes what the request wrote.
"""

from __future__ import annotations

import io
import os
import re
import secrets
import time
from pathlib import Path

from PIL import Image, ImageOps

from imgclf.data.images import image_to_array
from imgclf.data.moves import PARTIAL, locked, move_file
from imgclf.errors import ImgclfError
from imgclf.studio.project import SPLITS, capture_base, inside

#: JPEG quality of a saved picture (Pillow's scale, 1-95; 90 keeps webcam frames visually unchanged).
JPEG_QUALITY = 90
#: A class name the studio may create: letters, digits, ``_ - . space``, not starting with a dot.
CLASS_NAME = re.compile(r"^[\w][\w .\-]{0,63}$")
#: The largest picture taken, in pixels (Pillow's decompression-bomb limit is larger).
MAX_PIXELS = 40_000_000
#: The most pixels one request may bring, in all (about twenty 12-megapixel phone photos; a webcam frame is 0.3-2 MP).
MAX_REQUEST_PIXELS = 250_000_000


def class_folder(root: str | os.PathLike, data: str, split: str, cls: str, create: bool = False) -> Path:
    """``PROJECT/DATA[/SPLIT]/CLASS``, created when ``create`` and missing.

    Raises:
        ImgclfError: DATA not a data folder of the project (see :func:`imgclf.studio.project.capture_base`: never
            ``runs/``, a run, the studio's folder or an inbox), a split DATA does not have, a class name that is not
            a plain folder name, a class folder that is a link, or a missing class when ``create`` is false.
    """
    root = Path(root).resolve()
    base = capture_base(root, data)
    present = [s for s in SPLITS if (base / s).is_dir()]
    if split not in (present or [""]):
        expected = f"one of {present}" if present else "empty (this folder has no splits)"
        raise ImgclfError(f"split must be {expected}. Received: {split!r}")
    if not CLASS_NAME.match(cls or ""):
        raise ImgclfError(f"class must be a folder name (letters, digits, '_-. ', not hidden). Received: {cls!r}")
    parent = base / split if split else base
    folder = parent / cls
    if parent.is_symlink() or folder.is_symlink() or inside(root, folder.relative_to(root).as_posix()) != folder:
        raise ImgclfError(f"{cls!r} of {data!r} is a link: pictures are saved into real class folders only.")
    if not folder.is_dir():
        if not create:
            raise ImgclfError(f"{cls!r} is not a class of {data!r}: create it first.")
        folder.mkdir()
    return folder


def _fresh_name(folder: Path, stamp: str, start: int) -> tuple[Path, int]:
    k = start
    while (folder / f"capture-{stamp}-{k:03d}.jpg").exists():
        k += 1
    return folder / f"capture-{stamp}-{k:03d}.jpg", k


def _unreadable(name: str, exc: BaseException) -> ImgclfError:
    return ImgclfError(f"{name!r} is not an image Pillow can read ({exc}). Nothing was saved.")


def _size(name: str, data: bytes) -> int:
    """Pixels of one encoded picture, from its header alone (nothing decoded)."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            pixels = im.width * im.height
            if pixels > MAX_PIXELS:
                raise ImgclfError(f"{name!r} is {im.width} x {im.height} px: at most {MAX_PIXELS} pixels. Nothing was "
                                  "saved.")  # fmt: skip
            return pixels
    except (OSError, Image.DecompressionBombError, ValueError) as exc:
        raise _unreadable(name, exc) from None


def _upright_rgb(name: str, data: bytes) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()
            upright = ImageOps.exif_transpose(im)
    except (OSError, Image.DecompressionBombError, ValueError) as exc:
        raise _unreadable(name, exc) from None
    return Image.fromarray(image_to_array(upright, (upright.height, upright.width), "rgb"))


def save_pictures(folder: str | os.PathLike, pictures, data: str | os.PathLike | None = None) -> list[Path]:
    """Save encoded pictures (bytes of any image Pillow reads) as JPEGs in ``folder``, under new names.

    Every header is read first (sizes checked, nothing decoded); then each picture is decoded and written before the
    next is decoded, so memory holds one picture at a time. A picture that fails to decode removes the files this
    call wrote: a request is saved whole or not at all.

    Args:
        folder: an existing class folder (see :func:`class_folder`).
        pictures: ``(name, bytes)`` pairs; ``name`` is only used in error messages.
        data: the data folder holding ``folder``, locked while writing (:func:`imgclf.data.moves.locked`), as
            every writer of a dataset is; default: ``folder``'s parent, or its grandparent below a split folder.

    Returns:
        The files written, in the order given.

    Raises:
        ImgclfError: a picture Pillow cannot read, one larger than :data:`MAX_PIXELS`, more than
            :data:`MAX_REQUEST_PIXELS` in all, or another command holding the data folder's lock.
    """
    folder = Path(folder)
    pictures = list(pictures)
    total = sum(_size(name, blob) for name, blob in pictures)
    if total > MAX_REQUEST_PIXELS:
        raise ImgclfError(f"{len(pictures)} pictures of {total} pixels in all: at most {MAX_REQUEST_PIXELS} pixels a "
                          "request; send fewer at a time. Nothing was saved.")  # fmt: skip
    stamp, k, written = time.strftime("%Y%m%d-%H%M%S"), 1, []
    if data is None:
        data = folder.parent.parent if folder.parent.name in SPLITS else folder.parent
    with locked(data):
        try:
            for name, blob in pictures:
                picture = _upright_rgb(name, blob)
                tmp = folder / f".capture{PARTIAL}{secrets.token_hex(4)}"
                try:
                    with open(tmp, "xb") as out:  # a kill -9 part-way leaves a hidden partial, never a bad picture
                        picture.save(out, format="JPEG", quality=JPEG_QUALITY)
                    del picture
                    while True:
                        path, k = _fresh_name(folder, stamp, k)
                        try:
                            move_file(tmp, path)  # a hard link: another writer's file is never replaced
                            break
                        except FileExistsError:
                            k += 1
                finally:
                    tmp.unlink(missing_ok=True)
                written.append(path)
                k += 1
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return written
