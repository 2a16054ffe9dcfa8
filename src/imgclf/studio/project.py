"""A studio project: one folder holding data folders and ``runs/``, and the only place the studio reads or writes.

Every path a request names goes through :func:`inside`: relative to the project, no ``..``, no absolute path, no
symlink that leads out — checked on the resolved path, so URL-encoded and doubled forms end the same way.
Listing uses ``os.scandir`` only (no image is opened): a 25,000-image folder lists in a fraction of a second.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from imgclf.data.files import is_image_file, is_imgclf_output
from imgclf.errors import ImgclfError

#: Split folders of the ``DATA/<split>/<class>/`` layout, in the order shown.
SPLITS = ("train", "validation", "test")
#: The studio's own folder inside the project (thumbnails); never listed as data.
STUDIO_DIR = ".imgclf-studio"


def inside(root: str | os.PathLike, relative: str) -> Path:
    """``root/relative`` resolved, when it stays inside ``root``.

    Raises:
        ImgclfError: an absolute path, a ``..`` part, or a path that resolves (symlinks followed) outside ``root``.
    """
    root = Path(root).resolve()
    text = str(relative).replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if text.startswith("/") or any(p == ".." for p in parts) or (parts and ":" in parts[0]):
        raise ImgclfError(f"path must be relative to the project, without '..'. Received: {relative!r}")
    path = root.joinpath(*parts).resolve()
    if path != root and root not in path.parents:
        raise ImgclfError(f"path leads outside the project. Received: {relative!r}")
    return path


def relative(root: str | os.PathLike, path: str | os.PathLike) -> str | None:
    """``path`` (absolute, or relative to ``root``) relative to the project, through any link, when it is inside it;
    else ``None`` — for paths a command wrote (``suspects.json``, ``triage --json``), which the studio then serves."""
    root = Path(root).resolve()
    real = Path(os.path.realpath(root / path))  # an absolute path stays absolute under "/"
    return real.relative_to(root).as_posix() if root in real.parents else None


def _image_names(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in os.scandir(folder) if e.is_file() and is_image_file(e.name))
    except OSError:
        return []


def _class_dirs(folder: Path) -> list[Path]:
    try:
        dirs = sorted(Path(e.path) for e in os.scandir(folder) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        return []
    return [d for d in dirs if not is_imgclf_output(d)]


@dataclass(frozen=True)
class DataFolder:
    """A data folder of the project: ``name`` (its folder), ``splits`` ``{split or "": {class: image count}}``."""

    name: str
    splits: dict

    @property
    def classes(self) -> list[str]:
        return sorted({c for counts in self.splits.values() for c in counts})

    @property
    def images(self) -> int:
        return sum(sum(counts.values()) for counts in self.splits.values())


def read_data_folder(root: str | os.PathLike, name: str) -> DataFolder | None:
    """The data folder ``name`` of the project (``DATA/<class>/`` or ``DATA/<split>/<class>/``), or ``None`` when it
    holds no class folder with images."""
    folder = inside(root, name)
    if not folder.is_dir():
        return None
    splits = {}
    present = [s for s in SPLITS if (folder / s).is_dir()]
    for split in present or [""]:
        base = folder / split if split else folder
        counts = {d.name: len(_image_names(d)) for d in _class_dirs(base)}
        if any(counts.values()):
            splits[split] = counts
    return DataFolder(name, splits) if splits else None


def _top_folders(root: Path):
    """``(name, kind, data folder or loose-image count)`` of each folder directly inside the project; ``kind`` is
    ``"data"``, ``"inbox"`` or ``"unavailable"`` (a link leading out of the project). Hidden folders, the studio's own
    folder, ``runs/`` and run folders are left out; so is a folder with no image at all."""
    root = Path(root).resolve()
    for child in _class_dirs(root):
        if child.name in (STUDIO_DIR, "runs"):
            continue
        if not _leads_inside(root, child):
            yield child.name, "unavailable", None
            continue
        loose = len(_image_names(child))
        folder = read_data_folder(root, child.name)
        if folder is not None and folder.images >= loose:  # more pictures in class folders than loose: data
            yield child.name, "data", folder
        elif loose:
            yield child.name, "inbox", loose


def data_folders(root: str | os.PathLike) -> list[DataFolder]:
    """Every data folder directly inside the project: its images are in class folders (a folder whose loose images
    outnumber those is an inbox); hidden folders, run folders, ``runs/`` and links leading out left out."""
    return [found for _, kind, found in _top_folders(root) if kind == "data"]


def unavailable_folders(root: str | os.PathLike) -> list[str]:
    """Names of the folders directly inside the project that are links leading out of it: listed, never read (no
    folder is counted: every page asks)."""
    root = Path(root).resolve()
    return [d.name for d in _class_dirs(root) if d.is_symlink() and not _leads_inside(root, d)]


def _leads_inside(root: Path, folder: Path) -> bool:
    real = folder.resolve()
    return real == root or root in real.parents


def class_images(root: str | os.PathLike, name: str, split: str, cls: str, page: int = 1,
                 per_page: int = 60) -> tuple[list[str], int]:  # fmt: skip
    """``(paths relative to the project, total)`` of one class's images, page ``page`` (from 1) of ``per_page``.

    Raises:
        ImgclfError: a path outside the project, or a page below 1.
    """
    if page < 1 or per_page < 1:
        raise ImgclfError(f"page must be a positive int. Received: {page!r}")
    folder = inside(root, "/".join(p for p in (name, split, cls) if p))
    names = _image_names(folder)
    start = (page - 1) * per_page
    base = "/".join(p for p in (name, split, cls) if p)
    return [f"{base}/{n}" for n in names[start : start + per_page]], len(names)


def inbox_folders(root: str | os.PathLike) -> list[tuple[str, int]]:
    """``(name, images)`` of the folders directly inside the project whose pictures are mostly loose (an inbox of
    unlabelled pictures, never also a data folder); hidden folders, ``runs/`` and links leading out left out."""
    return [(name, count) for name, kind, count in _top_folders(root) if kind == "inbox"]


def capture_base(root: str | os.PathLike, data: str) -> Path:
    """The data folder ``data`` (one folder directly inside the project) that new pictures may be saved into.

    A data folder, or a folder with no picture yet (a new dataset's first class). Never ``runs/``, a run folder,
    the studio's own or a hidden folder, an inbox, a nested path or a link leading out of the project.

    Raises:
        ImgclfError: naming ``data`` and what it is instead.
    """
    root = Path(root).resolve()
    base = inside(root, data)
    kinds = {name: kind for name, kind, _ in _top_folders(root)}
    name = str(data).replace("\\", "/").strip("/")
    ok = base.is_dir() and base.parent == root and base.name == name and not name.startswith(".")
    ok = ok and name not in (STUDIO_DIR, "runs") and not is_imgclf_output(base)
    if not ok or kinds.get(name, "data") != "data":
        what = "an inbox of unlabelled pictures" if kinds.get(name) == "inbox" else "not a data folder of the project"
        raise ImgclfError(f"pictures are saved into a data folder's classes only; {data!r} is {what}.")
    return base
