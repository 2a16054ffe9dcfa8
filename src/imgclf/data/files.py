"""What counts as an image file: one definition for training, prediction, ``doctor`` and ``split``.

A file is an image file when its extension is one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and its
name does not start with a dot; folders whose names start with a dot (``.quarantine``) are not searched.
Whether it can actually be read is :func:`unreadable_reason`'s question (a full decode).
"""

from __future__ import annotations

import functools
import os

#: Extensions of each Pillow format imgclf reads (JPEG, PNG, BMP, GIF's first frame, WebP, and MPO — the
#: multi-picture JPEGs some cameras write, read as their first picture).
EXTENSIONS_BY_FORMAT = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png",),
    "BMP": (".bmp",),
    "GIF": (".gif",),
    "WEBP": (".webp",),
    "MPO": (".jpg", ".jpeg", ".mpo"),
    "AVIF": (".avif",),  # Pillow 11.2+ reads it
    "HEIF": (".heic", ".heif"),  # phone photos: through pillow-heif (the heif extra), see needs_heif
}
#: Extensions of phone photos read through pillow-heif.
HEIF_EXTENSIONS = (".heic", ".heif")
#: File extensions read as images (lower case).
IMAGE_EXTENSIONS = tuple(dict.fromkeys(e for exts in EXTENSIONS_BY_FORMAT.values() for e in exts))


def needs_heif(path) -> None:
    """Before a HEIC/HEIF photo is opened: make sure Pillow can read it — pillow-heif's opener registered with
    Pillow (once; pillow-heif's documented ``register_heif_opener``, which adds the format and changes nothing
    else). A path of another kind (or bytes) needs nothing.

    Raises:
        ImgclfError: a ``.heic`` / ``.heif`` file and pillow-heif is not installed (the line names the extra).
    """
    if isinstance(path, (str, os.PathLike)) and os.fspath(path).lower().endswith(HEIF_EXTENSIONS):
        _register_heif()


@functools.cache
def _register_heif() -> None:
    from imgclf.errors import ImgclfError

    try:
        import pillow_heif
    except ImportError:
        raise ImgclfError("HEIC/HEIF photos need pillow-heif: pip install 'imgclf[heif]'") from None
    pillow_heif.register_heif_opener()


def is_image_file(path: str | os.PathLike) -> bool:
    """True when the file name ends in one of :data:`IMAGE_EXTENSIONS` (case-insensitive) and is not hidden."""
    name = os.path.basename(os.fspath(path))
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str | os.PathLike) -> list[str]:
    """Image files under ``folder``, recursively, sorted; hidden files and folders skipped.

    Linked folders are followed once each and only when they point inside ``folder``: a link to a parent
    (``cats/up -> ..``) or to the folder itself (``cats/self -> .``) is not walked, so the walk cannot loop or
    count an image twice. Only regular files count (a FIFO or device named ``.jpg`` would block a reader).
    """
    top = os.path.realpath(folder)
    seen = {top}
    found = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        keep = []
        for d in sorted(dirnames):
            real = os.path.realpath(os.path.join(dirpath, d))
            inside = real == top or real.startswith(top + os.sep)
            if not d.startswith(".") and inside and real not in seen:
                seen.add(real)
                keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            if is_image_file(f) and os.path.isfile(path):  # isfile: a regular file (links followed)
                found.append(path)
    return found


#: Files only an imgclf run folder holds together (``classes.json`` + ``config.yaml``), or its ``state.json``.
RUN_MARKERS = (("classes.json", "config.yaml"), ("state.json",))


def is_run_folder(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was written by imgclf as a run (it holds :data:`RUN_MARKERS`)."""
    return any(all(os.path.isfile(os.path.join(folder, m)) for m in markers) for markers in RUN_MARKERS)


def is_imgclf_output(folder: str | os.PathLike) -> bool:
    """True for a run folder or a folder of run folders (``runs/``): imgclf's own output, never a class of data."""
    if is_run_folder(folder):
        return True
    try:
        return any(e.is_dir() and is_run_folder(e.path) for e in os.scandir(folder))
    except OSError:
        return False


def unreadable_reason(path: str | os.PathLike) -> str | None:
    """Why an image file cannot be used, or ``None`` when Pillow decodes it fully.

    Zero-length files, non-images and truncated or corrupt images are caught (a full decode, not only the
    header).
    """
    from PIL import Image

    try:
        if os.path.getsize(path) == 0:
            return "zero-length file"
        needs_heif(path)
        with Image.open(path) as im:
            im.load()
    except Exception as exc:  # noqa: BLE001  (any decoder failure)
        return f"{type(exc).__name__}: {exc}"
    return None
