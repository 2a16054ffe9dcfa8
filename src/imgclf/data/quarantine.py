"""Quarantine: files set aside into ``DATA/.quarantine/`` (relative paths kept), recorded, restorable — never deleted.

``imgclf doctor --fix`` sets unusable files aside, ``doctor --fix --suspects`` suspected wrong labels, the studio what
a person picks. Each move is recorded in ``DATA/.quarantine/manifest.json`` (``original``, ``quarantined``,
``problems``, ``sha256``, ``time``); :func:`restore` moves them back. The manifest is read back as untrusted input:
``original`` must be a file of DATA outside hidden folders, ``quarantined`` a file under ``DATA/.quarantine/``, and a
file whose SHA-256 differs from the recorded one stays where it is. Writers hold DATA's lock and never replace a
file (:mod:`imgclf.data.moves`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from imgclf.data.folders import check_dir
from imgclf.data.journal import Journal
from imgclf.data.moves import confined, locked, move_file
from imgclf.data.storage import sha256_of
from imgclf.errors import ImgclfError

QUARANTINE_DIR = ".quarantine"
MANIFEST = "manifest.json"


def _is_entry(entry) -> bool:
    return isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("original", "quarantined"))


def _journal(path: Path) -> Journal:
    return Journal(path, "quarantine manifest", _is_entry, "a list of entries with original and quarantined paths")


def _read_manifest(path: Path) -> list:
    return _journal(path).read()


def _original(root: Path, rel, what: str) -> Path:
    """Where a file of DATA lies (``rel`` relative to DATA, never in a hidden folder, never through a link out)."""
    path = confined(root, rel, what)
    if any(part.startswith(".") for part in Path(rel).parts):
        raise ImgclfError(f"{what} names {rel!r}, inside a hidden folder of DATA. Nothing was moved.")
    return path


def _move(src: Path, dst: Path) -> None:
    """Move a file, or a link or special file (doctor quarantines those too), never over another one."""
    if src.is_file() and not src.is_symlink():
        move_file(src, dst)
    elif os.path.lexists(dst):
        raise FileExistsError(dst)
    else:
        os.rename(src, dst)  # a link (not followed) or a FIFO: under the lock, to a free name


def quarantine(data: str | os.PathLike, paths: list[str], problems: dict[str, list[str]] | None = None) -> list[dict]:
    """Move files (relative to ``data``) into ``data/.quarantine/``, keeping relative paths, under DATA's lock.

    Each move is recorded in ``data/.quarantine/manifest.json`` (``original``, ``quarantined``, ``problems`` — what
    ``problems`` says of that path: the doctor's codes, or why a suspect was set aside —, ``sha256`` of the file,
    ``time``) right after it. A path no longer there is passed over.

    Returns:
        The new manifest entries.

    Raises:
        ImgclfError: DATA is not a folder or is read-only; a path that is not relative to DATA, leads out of it or
            into a hidden folder (checked for every path before anything moves); an unreadable manifest.
    """
    root = check_dir(data)
    where = f"the list of files to quarantine in {str(root)!r}"
    sources = [(rel, _original(root, rel, where)) for rel in paths]
    with locked(root):
        return _quarantine(root, sources, problems or {})


def _quarantine(root: Path, sources: list[tuple[str, Path]], problems: dict) -> list[dict]:
    qroot = root / QUARANTINE_DIR
    manifest_path = qroot / MANIFEST
    manifest = _read_manifest(manifest_path) if manifest_path.is_file() else []
    added = []
    for rel, src in sources:
        if not os.path.lexists(src):
            continue
        dst = qroot / rel
        k = 1
        while os.path.lexists(dst):  # never overwrite an earlier quarantined file of the same name
            dst = (qroot / rel).with_name(f"{Path(rel).stem}.{k}{Path(rel).suffix}")
            k += 1
        try:
            digest = sha256_of(src) if src.is_file() else None
        except OSError:  # an unreadable file is quarantined all the same
            digest = None
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            _move(src, dst)
        except OSError as exc:
            raise ImgclfError(f"cannot quarantine {str(src)!r}: {exc.strerror or exc}. {len(added)} file(s) moved "
                              "before it are in the manifest.") from None  # fmt: skip
        entry = {"original": Path(rel).as_posix(), "quarantined": dst.relative_to(root).as_posix(),
                 "problems": problems.get(rel, []), "sha256": digest,
                 "time": time.strftime("%Y-%m-%dT%H:%M:%S")}  # fmt: skip
        manifest.append(entry)
        added.append(entry)
        _journal(manifest_path).write(manifest)  # after every move: a crash never loses track of a file
    return added


class Restored(list):
    """The relative paths :func:`restore` moved back, and ``kept``: ``(original, why)`` of the entries it left in
    the quarantine (and in the manifest)."""

    def __init__(self, restored, kept):
        super().__init__(restored)
        self.kept = list(kept)


def restore(data: str | os.PathLike) -> Restored:
    """Move every quarantined file back to where it was, under DATA's lock.

    A file is moved back only when its entry's paths stay inside DATA (``quarantined`` under ``.quarantine/``), its
    SHA-256 is the one recorded, and its original place is free; every other entry stays in the quarantine and in
    the manifest, with why (:class:`Restored`'s ``kept``). Class folders that went are made again, inside DATA only.

    Raises:
        ImgclfError: DATA is not a folder or is read-only; the manifest is unreadable or of the wrong shape.
    """
    root = check_dir(data)
    manifest_path = root / QUARANTINE_DIR / MANIFEST
    if not manifest_path.is_file():
        return Restored([], [])
    with locked(root):
        return _restore(root, manifest_path)


def _why_kept(root: Path, entry: dict, what: str) -> tuple[Path, Path] | str:
    """``(source, destination)`` of an entry that can go back, or why it cannot."""
    try:
        src = confined(root, entry["quarantined"], what, under=QUARANTINE_DIR)
        dst = _original(root, entry["original"], what)
    except ImgclfError as exc:
        return str(exc).removesuffix(" Nothing was moved.")
    if not os.path.lexists(src):
        return f"{str(src)!r} is not in the quarantine any more"  # (back already: see _restore)
    digest = entry.get("sha256")
    if isinstance(digest, str) and (not src.is_file() or sha256_of(src) != digest):
        return f"{str(src)!r} is not the file that was quarantined (its SHA-256 differs)"
    if os.path.lexists(dst):
        return "its place is taken (e.g. the same name quarantined twice)"
    return src, dst


def _back_already(root: Path, entry: dict) -> bool:
    """The entry's file is gone from the quarantine and its original place holds the same bytes."""
    try:
        src = confined(root, entry["quarantined"], "", under=QUARANTINE_DIR)
        dst = _original(root, entry["original"], "")
    except ImgclfError:
        return False
    digest = entry.get("sha256")
    return (not os.path.lexists(src) and isinstance(digest, str) and dst.is_file() and not dst.is_symlink()
            and sha256_of(dst) == digest)  # fmt: skip


def _restore(root: Path, manifest_path: Path) -> Restored:
    what = f"the quarantine manifest {str(manifest_path)!r}"
    restored, kept, left = [], [], []
    entries = _read_manifest(manifest_path)
    for k, entry in enumerate(entries):
        checked = _why_kept(root, entry, what)
        if isinstance(checked, str) and _back_already(root, entry):
            continue  # restored by a run that was killed before it wrote the manifest
        if isinstance(checked, str):
            kept.append((entry["original"], checked))
            left.append(entry)
            continue
        src, dst = checked
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            _move(src, dst)
        except OSError as exc:
            kept.append((entry["original"], f"cannot move it back: {exc.strerror or exc}"))
            left.append(entry)
            continue
        restored.append(entry["original"])
        _journal(manifest_path).write(left + entries[k + 1 :])  # after every move: a crash never loses track of it
    _journal(manifest_path).write(left)
    return Restored(restored, kept)
