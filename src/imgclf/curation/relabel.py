"""Relabel images by moving them to another class folder of the same split, with an undo that restores every byte.

Every call is one batch, checked whole before anything moves: each file must lie in a class folder of DATA (inside
it, not through a link out of it), the target class folder must exist in the file's own split (a move never crosses
between train and validation), and no file of the same name may be there (nothing is overwritten). The batch is
written to ``DATA/.relabel/manifest.json`` (each move with the file's SHA-256) before the first move and marked done
after the last; :func:`undo` moves the last batch back when every file is still the one that was moved.
"""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

from imgclf._io import read_json, write_json
from imgclf.data.doctor import quarantine
from imgclf.data.folders import TRAIN_NAMES, VALIDATION_NAMES
from imgclf.data.packed import sha256_of
from imgclf.errors import ImgclfError

RELABEL_DIR = ".relabel"
MANIFEST = "manifest.json"


def _manifest_path(root: Path) -> Path:
    return root / RELABEL_DIR / MANIFEST


def _read(root: Path) -> list[dict]:
    path = _manifest_path(root)
    if not path.is_file():
        return []
    try:
        batches = read_json(path)
        if not isinstance(batches, list) or not all(isinstance(b, dict) and "moves" in b for b in batches):
            raise ValueError("not a list of batches")
    except (OSError, ValueError) as exc:
        raise ImgclfError(f"relabel manifest {str(path)!r} is unreadable ({exc}); nothing was moved.") from None
    return batches


def _class_folder(root: Path, path: Path) -> tuple[Path, str]:
    """``(the folder holding class folders, the file's class)`` for an image file inside ``root``."""
    real_root, real = Path(os.path.realpath(root)), Path(os.path.realpath(path))
    if not path.is_file() or path.is_symlink():
        raise ImgclfError(f"relabel moves image files. Received: {str(path)!r} (not a regular file)")
    if real_root not in real.parents:
        raise ImgclfError(f"relabel moves files inside DATA ({str(root)!r}) only. Received: {str(path)!r}")
    parts = real.relative_to(real_root).parts
    if any(p.startswith(".") for p in parts):
        raise ImgclfError(f"relabel moves files of class folders, not hidden ones. Received: {str(path)!r}")
    split = len(parts) >= 3 and parts[0].lower() in TRAIN_NAMES + VALIDATION_NAMES
    if len(parts) != (3 if split else 2):
        raise ImgclfError(f"expected DATA/<class>/<file> or DATA/<split>/<class>/<file>. Received: {str(path)!r}")
    base = real_root / parts[0] if split else real_root
    return base, parts[-2]


def relabel(data: str | os.PathLike, paths, to: str) -> list[dict]:
    """Move image files of DATA into the class folder ``to`` of their own split, as one batch that :func:`undo`
    reverts.

    Args:
        data: the dataset folder (``DATA/<class>/`` or ``DATA/<split>/<class>/``).
        paths: image files inside it.
        to: an existing class folder's name.

    Returns:
        The moves, ``{"from", "to", "sha256"}`` with paths relative to DATA, in order.

    Raises:
        ImgclfError: DATA is not a folder; a path outside DATA, hidden, or not a class folder's file; ``to`` not
            a class of the file's split (or a path, not a name); a file of the same name already in the target;
            the same file twice; or an unreadable manifest. Nothing is moved then.
    """
    root = Path(data)
    if not root.is_dir():
        raise ImgclfError(f"DATA must be a folder. Received: {str(data)!r}")
    if not to or Path(to).name != to or to.startswith("."):
        raise ImgclfError(f"--to must be the name of a class folder. Received: {to!r}")
    batches = _read(root)
    moves, sources, seen = [], set(), set()
    for p in [Path(p) for p in paths]:
        base, label = _class_folder(root, p)
        target_dir = base / to
        if not target_dir.is_dir():
            known = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
            raise ImgclfError(f"{to!r} is not a class of {str(base)!r}: expected one of {known}. Nothing was moved.")
        source, target = Path(os.path.realpath(p)), target_dir / p.name
        if label == to:
            raise ImgclfError(f"{str(p)!r} is already in class {to!r}. Nothing was moved.")
        if source in sources:
            raise ImgclfError(f"{str(p)!r} was given twice. Nothing was moved.")
        if target.exists() or target in seen:
            raise ImgclfError(f"{str(target)!r} already exists: relabel never overwrites. Nothing was moved.")
        sources.add(source)
        seen.add(target)
        moves.append((source, target))
    if not moves:
        raise ImgclfError("relabel needs at least one image file to move.")
    return _commit(root, batches, to, moves)


def _commit(root: Path, batches: list[dict], to: str, moves: list[tuple[Path, Path]]) -> list[dict]:
    """Record a checked batch of ``(source, target)`` moves (real paths) in the manifest, move the files, mark it
    done. Paths inside DATA are recorded relative to it, others absolute."""
    real_root = Path(os.path.realpath(root))

    def rel(path: Path) -> str:
        return os.path.relpath(path, real_root) if real_root in path.parents else str(path)

    batch = {"time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"), "to": to, "done": False,
             "moves": [{"from": rel(source), "to": rel(target), "sha256": sha256_of(source)}
                       for source, target in moves]}  # fmt: skip
    _manifest_path(root).parent.mkdir(exist_ok=True)
    write_json(_manifest_path(root), [*batches, batch])  # written before the first move: a crash loses no file
    for source, target in moves:
        shutil.move(source, target)  # a rename on one file system; copy and delete across two (an inbox elsewhere)
    batch["done"] = True
    write_json(_manifest_path(root), [*batches, batch])
    return batch["moves"]


def file_into(data: str | os.PathLike, items) -> list[dict]:
    """Move image files from outside DATA into its class folders (``DATA/<class>/``, or ``DATA/train/<class>/`` in a
    train/validation layout) as one batch that :func:`undo` reverts.

    Args:
        data: the dataset folder.
        items: ``(path, class name)`` pairs.

    Returns:
        The moves, ``{"from"`` (absolute), ``"to"`` (relative to DATA), ``"sha256"}``; ``[]`` when ``items`` is empty.

    Raises:
        ImgclfError: DATA is not a folder; a class that is not a folder of DATA; a path that is not a regular file,
            is inside DATA already (use :func:`relabel`), or given twice; a name taken in the class folder (nothing
            is overwritten) — nothing is moved then.
    """
    root = Path(data)
    if not root.is_dir():
        raise ImgclfError(f"DATA must be a folder. Received: {str(data)!r}")
    real_root = Path(os.path.realpath(root))
    train = next((d for d in sorted(root.iterdir()) if d.is_dir() and d.name.lower() in TRAIN_NAMES), None)
    base = train if train is not None else root
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    moves, seen = [], set()
    for path, label in items:
        path = Path(path)
        if label not in classes:
            raise ImgclfError(
                f"{label!r} is not a class of {str(base)!r}: expected one of {classes}. Nothing was moved."
            )
        if not path.is_file() or path.is_symlink():
            raise ImgclfError(f"{str(path)!r} is not a regular image file. Nothing was moved.")
        source = Path(os.path.realpath(path))
        if real_root in source.parents:
            raise ImgclfError(f"{str(path)!r} is inside DATA already: `imgclf relabel` moves those. Nothing was moved.")
        target = Path(os.path.realpath(base / label)) / path.name
        if source in {s for s, _ in moves}:
            raise ImgclfError(f"{str(path)!r} was given twice. Nothing was moved.")
        if target.exists() or target in seen:
            raise ImgclfError(f"{str(target)!r} already exists: nothing is overwritten. Nothing was moved.")
        seen.add(target)
        moves.append((source, target))
    return _commit(root, _read(root), "inbox", moves) if moves else []


def undo(data: str | os.PathLike) -> list[dict]:
    """Move the files of the last :func:`relabel` batch back, when each is still where it went, with the same
    SHA-256, and its old place is free; then drop the batch from the manifest.

    Returns:
        The moves undone (``from`` is where each file is back).

    Raises:
        ImgclfError: nothing to undo, an unreadable manifest, or a file changed, gone, or its old place taken —
            nothing is moved then.
    """
    root = Path(data)
    batches = _read(root)
    if not batches:
        raise ImgclfError(f"nothing to undo: no relabel recorded in {str(root)!r}.")
    real_root = Path(os.path.realpath(root))
    last = batches[-1]
    pending = []
    for m in last["moves"]:
        now, before = real_root / m["to"], real_root / m["from"]
        if not now.is_file() and before.is_file() and sha256_of(before) == m["sha256"]:
            continue  # a batch cut short by a crash: this one never moved
        if not now.is_file() or sha256_of(now) != m["sha256"]:
            raise ImgclfError(f"{str(now)!r} is gone or changed since it was moved: nothing was undone.")
        if before.exists():
            raise ImgclfError(f"{str(before)!r} is taken by another file: nothing was undone.")
        pending.append((now, before))
    for now, before in pending:
        shutil.move(now, before)
    write_json(_manifest_path(root), batches[:-1])
    return last["moves"]


def quarantine_suspects(data: str | os.PathLike, suspects) -> list[dict]:
    """Move flagged images into ``DATA/.quarantine/`` (:func:`imgclf.data.doctor.quarantine`: recorded with their
    SHA-256 and why, undone by ``imgclf doctor DATA --restore``), checked whole first.

    Args:
        data: the dataset folder.
        suspects: :class:`~imgclf.curation.suspects.Suspect` s, or their dicts from ``suspects.json``
            (``path``, ``label``, ``suggested``, ``confidence``).

    Returns:
        The quarantine manifest's new entries.

    Raises:
        ImgclfError: DATA is not a folder, or a suspect is not a regular file in a class folder of DATA (gone,
            outside it, through a link) — nothing is moved then.
    """
    root = Path(data)
    if not root.is_dir():
        raise ImgclfError(f"DATA must be a folder. Received: {str(data)!r}")
    real_root = os.path.realpath(root)
    why = {}
    for s in suspects:
        s = s if isinstance(s, dict) else vars(s)
        _class_folder(root, Path(s["path"]))
        rel = Path(os.path.relpath(os.path.realpath(s["path"]), real_root)).as_posix()
        why.setdefault(rel, [f"suspected wrong label: {s['label']} -> {s['suggested']} "
                             f"(confidence {float(s['confidence']):.3f})"])  # fmt: skip
    return quarantine(root, list(why), why)


__all__ = ["relabel", "undo", "file_into", "quarantine_suspects", "RELABEL_DIR"]
