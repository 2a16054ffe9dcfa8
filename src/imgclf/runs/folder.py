"""Making a run folder safely: a new or emptied folder, locked while training writes it, marked as imgclf's.

``imgclf train --overwrite`` replaces a folder only when everything in it is something imgclf writes into a run
(:data:`OWN_NAMES`) and imgclf's marker (:data:`RUN_MARKER`, written when the run is made) is there: a folder of a
person's files that happens to hold a ``state.json`` is never deleted. A run being replaced is moved aside to
``.NAME.replaced-<pid>`` first; when the process dies before it could put it back or delete it (``kill -9``), the
next ``new_run`` in that runs folder restores it or says where it is (:func:`recover_replaced`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from contextlib import contextmanager
from pathlib import Path

from imgclf import _io
from imgclf.errors import ImgclfError
from imgclf.runs import record as runfiles

#: Written into a run folder when imgclf makes it: ``{"imgclf_version", "created"}``.
RUN_MARKER = ".imgclf-run.json"
LOCK_FILE = ".lock"
#: Every name imgclf writes at the top of a run folder: the run record (:mod:`imgclf.runs.record`), the
#: checkpoint, the report and its pictures (``report/html.py``, ``evaluation/interpretation.py``), further
#: evaluations, exports, Grad-CAM pictures and TensorBoard logs. A test trains, evaluates, reports, explains and
#: exports a run and checks that it holds nothing else.
OWN_NAMES = frozenset({
    runfiles.MODEL_FILE, runfiles.CLASSES_FILE, runfiles.CONFIG_FILE, runfiles.HISTORY_FILE, runfiles.SUMMARY_FILE,
    runfiles.METRICS_FILE, runfiles.SKIPPED_FILE, runfiles.CALIBRATION_FILE, runfiles.OOD_FILE, runfiles.LAST_FILE,
    runfiles.STATE_FILE, runfiles.PLOTS_DIR, runfiles.BEST_FILE, LOCK_FILE, RUN_MARKER, "report.html", "evaluation",
    runfiles.SPLIT_FILE, runfiles.PROBLEMS_FILE,
    "evaluations", "feature_maps", "explain", "export", "tensorboard", runfiles.SUSPECTS_DIR, runfiles.REHEARSAL_DIR,
    runfiles.UPDATE_FILE, runfiles.FAST_DIR, "benchmark.json", "tracking.json",
})  # fmt: skip
_REPLACED = re.compile(r"^\.(?P<name>.+)\.replaced-(?P<pid>\d+)$")


def _run_path(runs_dir: str | Path, name: str | None, prefix: str) -> Path:
    if name is None:
        name = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}"
        base, i = name, 2
        while (Path(runs_dir) / name).exists():
            name, i = f"{base}-{i}", i + 1
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ImgclfError(f"run name must be a plain folder name. Received: {name!r}")
    return Path(runs_dir) / name


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(path: Path) -> int | None:
    """The live process holding ``path``'s lock, or ``None`` (no lock, or a stale one left by a dead process)."""
    try:
        pid = int((path / LOCK_FILE).read_text().strip() or 0)
    except (OSError, ValueError):
        return None
    return pid if pid > 0 and pid != os.getpid() and _alive(pid) else None


def _own_temporary(name: str) -> bool:
    """``.<own name>.<random>`` (:func:`imgclf._io.atomic_path`) or ``.decoded-*`` (the on-disk image cache)."""
    return name.startswith(".decoded-") or any(name.startswith(f".{own}.") for own in OWN_NAMES)


def foreign_entries(folder: str | Path) -> list[str]:
    """The names at the top of ``folder`` that imgclf does not write into a run (sorted)."""
    return sorted(e.name for e in os.scandir(folder) if e.name not in OWN_NAMES and not _own_temporary(e.name))


def check_replaceable(path: Path) -> None:
    """Refuse to replace ``path`` unless imgclf made it as a run (its :data:`RUN_MARKER`) and it holds nothing
    else (:func:`foreign_entries`).

    Raises:
        ImgclfError: no marker (not made by ``imgclf train``, or by an imgclf older than the marker), a marker
            that is not imgclf's JSON, or entries imgclf did not write (named, up to three).
    """
    marker = path / RUN_MARKER
    try:
        ok = marker.is_file() and "imgclf_version" in json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError, TypeError):
        ok = False
    if not ok:
        raise ImgclfError(
            f"refusing to replace {str(path)!r}: it has no {RUN_MARKER} written by imgclf train (not an imgclf run "
            "folder, or one made before imgclf marked its runs); choose another name, or move it away yourself."
        )
    foreign = foreign_entries(path)
    if foreign:
        shown = ", ".join(repr(n) for n in foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        raise ImgclfError(
            f"refusing to replace {str(path)!r}: it holds {shown}, which imgclf did not write; choose another name."
        )


def recover_replaced(runs_dir: str | Path) -> list[str]:
    """Deal with the runs that ``--overwrite`` moved aside (``.NAME.replaced-<pid>``) in a process that then died
    before it could put them back or delete them. Returns one message per such folder:

    - ``NAME`` is gone (the process died before training wrote anything to keep): the old run is put back;
    - ``NAME`` is a finished run (its ``model.keras`` is there): the replacement was done, the old run is deleted,
      as ``--overwrite`` asked;
    - otherwise (``NAME`` is the unfinished new run): both are kept and the message says how to continue either.

    Folders of live processes are left alone.
    """
    runs_dir = Path(runs_dir)
    messages = []
    if not runs_dir.is_dir():
        return messages
    for entry in sorted(runs_dir.iterdir()):
        m = _REPLACED.match(entry.name)
        if m is None or not entry.is_dir() or _alive(int(m["pid"])) and int(m["pid"]) != os.getpid():
            continue
        current = runs_dir / m["name"]
        if not current.exists():
            os.replace(entry, current)
            messages.append(f"Restored {str(current)!r}: an --overwrite of it was killed before the new run began.")
        elif (current / runfiles.MODEL_FILE).is_file() and lock_holder(current) is None:
            shutil.rmtree(entry, ignore_errors=True)
            messages.append(f"Deleted {str(entry)!r}: the run {str(current)!r} that replaced it has finished.")
        else:
            messages.append(
                f"{str(entry)!r} holds the run that an --overwrite of {str(current)!r} was replacing when it was "
                f"killed; {str(current)!r} is the unfinished new run (imgclf train --resume {current}). To keep "
                f"the old one instead: rm -r {current} && mv {entry} {current}"
            )
    return messages


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("imgclf")
    except PackageNotFoundError:  # run from a source tree
        return "unknown"


def _say(messages: list[str]) -> None:
    if messages:
        from rich.markup import escape

        from imgclf._console import console as make_console

        console = make_console()
        for message in messages:
            console.print(escape(message), soft_wrap=True)


def mark_run(path: str | Path) -> Path:
    """Make the folder ``path`` (and its parents) when missing and write imgclf's :data:`RUN_MARKER` into it unless it
    is there: every run imgclf writes carries it, whoever started it (``new_run``, ``ImageClassifier.fit(run_dir=…)``).
    Returns the folder."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / RUN_MARKER).exists():
        created_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        _io.write_json(path / RUN_MARKER, {"imgclf_version": _version(), "created": created_at})
    return path


@contextmanager
def new_run(runs_dir: str | Path = "runs", name: str | None = None, overwrite: bool = False, prefix: str = "run",
            protect=(), restart: bool = False):  # fmt: skip
    """A run folder to write into, marked as imgclf's (:data:`RUN_MARKER`) and locked while the block runs; an
    existing run is replaced only safely.

    With ``overwrite``, an existing folder of that name is replaced only if imgclf made it as a run and it holds
    nothing else (:func:`check_replaceable`), no process is writing it, and it neither is nor holds any path in
    ``protect`` (paths, or ``(path, what it is)`` pairs: the data being trained on, the run ``--from`` starts
from). It is moved aside first and deleted only when the block succeeds; if the
    block fails (an error, Ctrl-C), the new folder is removed and the old run put back (after ``kill -9``, the next
    ``new_run`` does: :func:`recover_replaced`). A new run that fails before its first checkpoint (``last.keras``) is
    removed too (nothing to resume); one that fails later stays, for ``--resume``. With ``restart`` (a restarted
    multi-worker cluster), a folder holding an unfinished run (:func:`imgclf.runs.record.unfinished_state`) is
    handed back as it is, for training to continue.

    Raises:
        ImgclfError: a bad name; the folder exists and is not empty (without ``overwrite``); it is not replaceable,
            is in use by another process, or holds protected data (with ``overwrite``).
    """
    _say(recover_replaced(runs_dir))
    path = _run_path(runs_dir, name, prefix)
    aside = None
    holder = lock_holder(path) if path.is_dir() else None
    if holder is not None:
        raise ImgclfError(f"run folder {str(path)!r} is being written by process {holder}; choose another name.")
    if restart and runfiles.unfinished_state(path) is not None:
        (path / LOCK_FILE).unlink(missing_ok=True)  # left by a killed process (a live one was refused above)
    elif path.exists() and any(path.iterdir()):
        if not overwrite:
            raise ImgclfError(
                f"run folder {str(path)!r} already exists and is not empty; choose another name or pass overwrite=True."
            )
        real = os.path.realpath(path)
        for p in protect:
            p, what = p if isinstance(p, tuple) else (p, "the data")
            q = os.path.realpath(p)
            if q == real or q.startswith(real + os.sep):
                raise ImgclfError(f"refusing to replace {str(path)!r}: it holds {what} {str(p)!r}; choose another "
                                  "name.")  # fmt: skip
        check_replaceable(path)
        aside = path.with_name(f".{path.name}.replaced-{os.getpid()}")
        os.replace(path, aside)
    created = aside is not None or not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    lock = path / LOCK_FILE
    try:
        fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise ImgclfError(
            f"run folder {str(path)!r} is being written by another process; choose another name."
        ) from None
    with os.fdopen(fd, "w") as f:
        f.write(str(os.getpid()))
    try:
        mark_run(path)
        yield path
    except BaseException:
        if aside is not None:  # put the old run back
            shutil.rmtree(path, ignore_errors=True)
            os.replace(aside, path)
        elif created and not (path / runfiles.LAST_FILE).exists():  # nothing to resume: leave no half-written folder
            shutil.rmtree(path, ignore_errors=True)
        raise
    else:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    finally:
        if lock.exists():
            lock.unlink(missing_ok=True)


__all__ = ["RUN_MARKER", "OWN_NAMES", "new_run", "mark_run", "check_replaceable", "foreign_entries", "recover_replaced"]
