"""Relabel images by moving them to another class folder of the same split, with an undo that restores every byte.

Every call is one batch, checked whole before anything moves: each file must lie in a class folder of DATA (inside
it, not through a link out of it), the target class folder must exist in the file's own split (a move never crosses
between train and validation), and no file of the same name may be there (nothing is overwritten). The batch is
written to ``DATA/.relabel/manifest.json`` (each move with the file's SHA-256) before the first move and marked done
after the last; :func:`undo` moves the last batch back when every file is still the one that was moved.

The manifest is read back as untrusted input (a downloaded dataset can carry one): its paths must stay inside DATA,
in class folders; a batch filed from outside DATA (an inbox) carries this user's signature
(:func:`imgclf.data.moves.sign`), without which undo refuses to write outside DATA; every file's SHA-256 is checked
before anything moves. Writers hold DATA's lock and never replace a file (:mod:`imgclf.data.moves`).
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

from imgclf.data.doctor import quarantine
from imgclf.data.files import unreadable_reason
from imgclf.data.folders import TRAIN_NAMES, VALIDATION_NAMES
from imgclf.data.journal import Journal
from imgclf.data.moves import confined, locked, move_file, partials, sign, signature_ok
from imgclf.data.storage import sha256_of
from imgclf.errors import ImgclfError

RELABEL_DIR = ".relabel"
MANIFEST = "manifest.json"


def _manifest_path(root: Path) -> Path:
    return root / RELABEL_DIR / MANIFEST


def _journal(root: Path) -> Journal:
    return Journal(_manifest_path(root), "relabel manifest", _is_batch,
                   "a list of batches, each with its moves: from, to, sha256")  # fmt: skip


def _read(root: Path) -> list[dict]:
    return _journal(root).read()


def _is_batch(batch) -> bool:
    moves = batch.get("moves") if isinstance(batch, dict) else None
    return isinstance(moves, list) and all(
        isinstance(m, dict) and all(isinstance(m.get(k), str) for k in ("from", "to", "sha256")) for m in moves
    )


def _is_picture(path: Path) -> bool:
    """True when Pillow recognises the file's content as an image (its header: cheap enough for 3,000 files)."""
    from PIL import Image

    try:
        with Image.open(path):
            return True
    except Exception:  # noqa: BLE001  (any reason it is not an image)
        return False


def _class_folder(root: Path, path: Path) -> tuple[Path, str]:
    """``(the folder holding class folders, the file's class)`` for an image file inside ``root``."""
    real_root, real = Path(os.path.realpath(root)), Path(os.path.realpath(path))
    if not path.is_file() or path.is_symlink():
        raise ImgclfError(f"relabel moves image files. Received: {str(path)!r} (not a regular file)")
    if real_root not in real.parents:
        raise ImgclfError(f"relabel moves files inside DATA ({str(root)!r}) only. Received: {str(path)!r}")
    if not _is_picture(real):
        raise ImgclfError(f"relabel moves image files. Received: {str(path)!r} (not an image). Nothing was moved.")
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
    with locked(root):
        return _relabel(root, paths, to)


def _relabel(root: Path, paths, to: str) -> list[dict]:
    batches = _read(root)
    moves, sources, seen = [], set(), set()
    for p in [Path(p) for p in paths]:
        base, label = _class_folder(root, p)
        target_dir = base / to
        if not target_dir.is_dir() or target_dir.is_symlink():
            known = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
            raise ImgclfError(f"{to!r} is not a class of {str(base)!r}: expected one of {known}"
                              f"{' (a linked folder is not a class folder)' if target_dir.is_symlink() else ''}. "
                              "Nothing was moved.")  # fmt: skip
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
    if any(os.path.isabs(m["from"]) for m in batch["moves"]):  # filed from outside DATA: only this user's undo
        batch["signature"] = sign(batch["moves"])
    try:
        _journal(root).write([*batches, batch])  # written before the first move: a crash loses no file
    except OSError as exc:
        raise ImgclfError(f"cannot record the batch in {str(_manifest_path(root))!r}: {exc.strerror or exc}. Nothing "
                          "was moved.") from None  # fmt: skip
    try:
        for source, target in moves:
            move_file(source, target)  # a link + unlink, or a copy to a temporary name across file systems
    except FileExistsError as exc:
        raise ImgclfError(f"{exc.filename!r} appeared while moving: relabel never overwrites. The files moved so "
                          f"far are in the manifest; `imgclf relabel {str(root)!r} --undo` puts them back.") from None
    except OSError as exc:
        raise ImgclfError(f"cannot move files in {str(root)!r}: {exc.strerror} ({exc.filename!r}). The files "
                          f"moved so far are in the manifest; `imgclf relabel {str(root)!r} --undo` puts them "
                          "back.") from None  # fmt: skip
    batch["done"] = True
    try:
        _journal(root).write([*batches, batch])
    except OSError as exc:  # every file moved; the batch stays marked unfinished, which undo handles the same
        raise ImgclfError(f"all {len(moves)} file(s) moved, but {str(_manifest_path(root))!r} could not mark the batch "
                          f"done: {exc.strerror or exc}. `imgclf relabel {str(root)!r} --undo` still puts them "
                          "back.") from None  # fmt: skip
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
    with locked(root):
        return _file_into(root, items)


def _file_into(root: Path, items) -> list[dict]:
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
        if (base / label).is_symlink():
            raise ImgclfError(f"{str(base / label)!r} is a linked folder, not a class folder. Nothing was moved.")
        source = Path(os.path.realpath(path))
        why = unreadable_reason(source)
        if why is not None:
            raise ImgclfError(f"{str(path)!r} is not a readable image ({why}). Nothing was moved.")
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


class Undone(list):
    """The moves an undo made (a list of ``{"from", "to", "sha256"}``), and ``discarded``: the leftovers of an
    interrupted batch it removed (a second name of a file, a partial copy), whose originals are intact."""

    def __init__(self, moves, discarded):
        super().__init__(moves)
        self.discarded = list(discarded)


def undo(data: str | os.PathLike) -> Undone:
    """Move the files of the last :func:`relabel` batch back, when each is still where it went, with the same
    SHA-256, and its old place is free; then drop the batch from the manifest.

    A batch cut short (kill -9) is undone as far as it went: files that never moved are left, a second name a move
    left behind is dropped, and a partial copy across file systems (``.NAME.imgclf-partial-*``) is discarded when
    its original is intact.

    Returns:
        The moves undone (``from`` is where each file is back), an :class:`Undone`; those that never moved are
        not in it.

    Raises:
        ImgclfError: nothing to undo; an unreadable manifest; a path in it that leads out of DATA or out of a class
            folder, or a move from outside DATA that this user's imgclf did not sign; a file changed, gone, or its
            old place taken — nothing is moved then.
    """
    root = Path(data)
    with locked(root):
        return _undo(root)


def _place(root: Path, rel: str, what: str) -> Path:
    """Where a manifest's relative path ``rel`` lies: a file of a class folder of DATA, never a hidden one."""
    path = confined(root, rel, what)
    if any(part.startswith(".") for part in Path(rel).parts):
        raise ImgclfError(f"{what} names {rel!r}, not a file of a class folder. Nothing was moved.")
    return path


def _undo(root: Path) -> Undone:
    batches = _read(root)
    if not batches:
        raise ImgclfError(f"nothing to undo: no relabel recorded in {str(root)!r}.")
    last, what = batches[-1], f"the relabel manifest {str(_manifest_path(root))!r}"
    if any(os.path.isabs(m["from"]) for m in last["moves"]) and not signature_ok(last["moves"], last.get("signature")):
        raise ImgclfError(f"{what} moves files back to places outside DATA that this user's imgclf did not record "
                          "(no valid signature): nothing was undone.")  # fmt: skip
    pending, stray, undone = [], [], []
    for m in last["moves"]:
        now = _place(root, m["to"], what)
        before = Path(m["from"]) if os.path.isabs(m["from"]) else _place(root, m["from"], what)
        if os.path.join(os.path.realpath(before.parent), before.name) == os.path.join(os.path.realpath(now.parent),
                                                                                      now.name):  # fmt: skip
            raise ImgclfError(f"{what} moves {m['to']!r} onto itself: not a move imgclf made. Nothing was undone.")
        linked = before.is_symlink() or now.is_symlink()  # two names of one file are two real names, never a link
        if not linked and before.is_file() and now.is_file() and os.path.samefile(before, now):
            stray.append(now)  # killed between the link and the unlink: the original still has its name
            continue
        if not now.is_file() and before.is_file() and sha256_of(before) == m["sha256"]:
            stray += partials(now)  # a batch cut short by a crash: this one never moved (a partial copy at most)
            continue
        if not now.is_file() or now.is_symlink() or sha256_of(now) != m["sha256"]:
            raise ImgclfError(f"{str(now)!r} is gone or changed since it was moved: nothing was undone.")
        if os.path.lexists(before):
            raise ImgclfError(f"{str(before)!r} is taken by another file: nothing was undone.")
        if not before.parent.is_dir():
            raise ImgclfError(f"{str(before.parent)!r}, where {str(now)!r} came from, is gone: nothing was undone.")
        pending.append((now, before))
        undone.append(m)
    for path in stray:
        os.unlink(path)
    for now, before in pending:
        move_file(now, before)
    _journal(root).write(batches[:-1])
    return Undone(undone, stray)


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


__all__ = ["relabel", "undo", "Undone", "file_into", "quarantine_suspects", "RELABEL_DIR"]
