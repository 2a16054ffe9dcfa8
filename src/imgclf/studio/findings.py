"""What the studio knows about a data folder's images beyond their class: ``imgclf doctor``'s findings and
``imgclf suspects``' suspected wrong labels, kept in the project's studio folder and shown as filters of the data page.

Doctor's checks run in the server (Pillow only: thousands of images a second at header level, a few hundred fully
decoded); its answer is stored as ``PROJECT/.imgclf-studio/doctor/NAME.json``. Suspects need a backbone pass, so the
studio runs ``imgclf suspects NAME --out PROJECT/.imgclf-studio/suspects/NAME`` as a background job and reads its
``suspects.json``. Both are snapshots: a file moved or quarantined since drops out of the list (it is checked on disk
each time a list is shown), and the page says when the snapshot was taken.
"""

from __future__ import annotations

import functools
import os
import time
from pathlib import Path

from imgclf._io import read_json, write_json
from imgclf.curation.sheet import read_suspects
from imgclf.data.doctor import PROBLEMS, diagnose_folder
from imgclf.errors import ImgclfError
from imgclf.studio.project import STUDIO_DIR, inside, relative

#: The filter of the data page showing the suspected wrong labels (the others are ``doctor:CODE``).
SUSPECTS_VIEW = "suspects"


def doctor_file(root: Path, name: str) -> Path:
    """Where the doctor's findings about data folder ``name`` are kept."""
    return Path(root) / STUDIO_DIR / "doctor" / f"{name}.json"


def suspects_dir(root: Path, name: str) -> Path:
    """The ``--out`` folder of ``imgclf suspects`` for data folder ``name``."""
    return Path(root) / STUDIO_DIR / "suspects" / name


def check_folder(root: str | os.PathLike, name: str, full: bool = True) -> dict:
    """Run ``imgclf doctor``'s checks (:func:`imgclf.data.doctor.diagnose_folder`) on data folder ``name`` and keep
    ``{"time", "files", "problems": {code: [paths relative to the project]}, "unusable": [...], "copies": {duplicate:
    the file it copies}}``.

    Raises:
        ImgclfError: ``name`` is not a folder inside the project.
    """
    root = Path(root).resolve()
    folder = inside(root, name)
    found = diagnose_folder(folder, full=full)
    base = folder.relative_to(root).as_posix()
    copies = {f"{base}/{f['path']}": f"{base}/{f['duplicate_of']}" for f in found["files"] if f.get("duplicate_of")}
    kept = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "files": len(found["files"]),
            "problems": {code: [f"{base}/{p}" for p in paths] for code, paths in found["problems"].items()},
            "unusable": [f"{base}/{p}" for p in found["unusable"]], "copies": copies}  # fmt: skip
    doctor_file(root, name).parent.mkdir(parents=True, exist_ok=True)
    write_json(doctor_file(root, name), kept)
    return kept


def read_checks(root: str | os.PathLike, name: str) -> dict | None:
    """The doctor's findings kept for ``name`` (see :func:`check_folder`), or ``None`` when never checked."""
    file = doctor_file(Path(root), name)
    try:
        return _read_snapshot(file, file.stat().st_mtime_ns)
    except OSError:
        return None


@functools.lru_cache(maxsize=8)
def _read_snapshot(file: Path, _mtime_ns: int) -> dict | None:
    """One read a version of a snapshot (a 25,000-finding file is megabytes of JSON); callers must not mutate it."""
    try:
        return read_json(file)
    except ValueError:
        return None  # a half-written or damaged snapshot: check again


def read_suspected(root: str | os.PathLike, name: str) -> list[dict] | None:
    """The suspects of ``name``'s last ``imgclf suspects`` job, paths made relative to the project, or ``None``
    when it was never judged. A suspect outside the project (a linked dataset) is left out."""
    root = Path(root).resolve()
    folder = suspects_dir(root, name)
    try:
        suspects = read_suspects(folder)
    except ImgclfError:
        return None
    found = []
    for s in suspects:
        path = relative(root, s["path"])
        if path is not None:
            found.append({**s, "path": path})
    return found


def views(root: str | os.PathLike, name: str) -> list[tuple[str, str, int]]:
    """The data page's filters for ``name``: ``(view, title, images still there)``, suspects first, then each
    doctor finding in :data:`~imgclf.data.doctor.PROBLEMS`' order."""
    found = []
    suspected = read_suspected(root, name)
    if suspected is not None:
        found.append((SUSPECTS_VIEW, "suspected wrong labels", len(view_items(root, name, SUSPECTS_VIEW))))
    checks = read_checks(root, name) or {"problems": {}}
    for code, paths in checks["problems"].items():
        if code in PROBLEMS:
            found.append(
                (f"doctor:{code}", PROBLEMS[code][1], len(_still_there(Path(root), [{"path": p} for p in paths])))
            )
    return found


def view_items(root: str | os.PathLike, name: str, view: str) -> list[dict]:
    """The images a filter shows, still on disk: dicts with ``path`` (relative to the project) and ``note``
    (what was found), and for suspects ``label``, ``suggested``, ``confidence``; most suspect first.

    Raises:
        ImgclfError: ``view`` is neither ``suspects`` nor ``doctor:CODE`` of a known problem.
    """
    root = Path(root).resolve()
    if view == SUSPECTS_VIEW:
        rows = [{**s, "note": f"{s['label']} → {s['suggested']} ({float(s['confidence']):.2f})"}
                for s in read_suspected(root, name) or []]  # fmt: skip
    elif view.startswith("doctor:") and view[7:] in PROBLEMS:
        checks = read_checks(root, name) or {"problems": {}}
        copies = checks.get("copies", {})
        rows = [{"path": p, "note": f"copy of {copies[p].rsplit('/', 1)[-1]}" if p in copies else PROBLEMS[view[7:]][1]}
                for p in checks["problems"].get(view[7:], [])]  # fmt: skip
    else:
        raise ImgclfError(f"view must be 'suspects' or 'doctor:' and a doctor finding. Received: {view!r}")
    return _still_there(root, rows)


def _still_there(root: Path, rows: list[dict]) -> list[dict]:
    """The rows whose file is still on disk: one ``os.scandir`` a folder rather than a ``stat`` a file (25,000
    findings are checked in milliseconds)."""
    listed: dict[str, set] = {}
    kept = []
    for row in rows:
        folder, _, name = row["path"].rpartition("/")
        if folder not in listed:
            try:
                listed[folder] = {e.name for e in os.scandir(root / folder) if e.is_file()}
            except OSError:
                listed[folder] = set()
        if name in listed[folder]:
            kept.append(row)
    return kept
