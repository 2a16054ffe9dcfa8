"""``imgclf runs``: the run folders of a runs folder, one row each, read from their files alone.

Nothing here loads a model or imports TensorFlow: a row comes from ``config.yaml``, ``state.json``,
``history.csv``, ``metrics.json``, ``calibration.json``, the fast copy's ``export.json`` and the folder's size, and
a file that is missing or unreadable (an old run, a run killed while writing) leaves its columns empty instead of
failing the listing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from imgclf import _io
from imgclf.errors import ImgclfError, check_one_of
from imgclf.runs import record as runfiles
from imgclf.runs.folder import RUN_MARKER, lock_holder
from imgclf.runs.history import read_history_csv

#: The columns of a row, in order (``--json`` gives every one).
COLUMNS = ("name", "date", "data", "model", "recipe", "epochs", "status", "best_val_accuracy", "val_accuracy",
           "calibrated", "fast", "distribute", "size_mb", "path")  # fmt: skip
#: Columns sorted highest first (the rest lowest first).
DESCENDING = ("date", "best_val_accuracy", "val_accuracy", "epochs", "size_mb")


def is_run(folder: Path) -> bool:
    """Whether ``folder`` looks like a run folder (imgclf's marker, a config, a state or a model in it)."""
    names = (RUN_MARKER, runfiles.CONFIG_FILE, runfiles.STATE_FILE, runfiles.MODEL_FILE)
    return folder.is_dir() and not folder.name.startswith(".") and any((folder / n).is_file() for n in names)


def _read(reader, path: Path):
    try:
        return reader(path) if path.is_file() else None
    except Exception:  # noqa: BLE001 — unreadable in any way (bad YAML, JSON, CSV, bytes): the columns stay empty
        return None


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def _status(folder: Path, state: dict | None) -> str:
    """``state.json``'s status; ``running`` only while a live process holds the run, else ``killed``; a run without
    a state but with a model: ``finished`` (older runs); else ``incomplete``."""
    if state is None:
        return "finished" if (folder / runfiles.MODEL_FILE).is_file() else "incomplete"
    status = str(state.get("status", "unknown"))
    if status == "running" and lock_holder(folder) is None:
        return "killed"
    return status


def run_row(folder: str | os.PathLike) -> dict:
    """One run's row: every :data:`COLUMNS` entry (``None`` where the run's files do not say)."""
    folder = Path(folder)
    config = _read(_io.read_yaml, folder / runfiles.CONFIG_FILE)
    config = config if isinstance(config, dict) else {}
    state = _read(_io.read_json, folder / runfiles.STATE_FILE)
    state = state if isinstance(state, dict) else None
    history = _read(read_history_csv, folder / runfiles.HISTORY_FILE) or []
    resolved = config.get("resolved") if isinstance(config.get("resolved"), dict) else {}
    data = config.get("data") if isinstance(config.get("data"), dict) else {}
    scores = [r["val_accuracy"] for r in history if isinstance(r.get("val_accuracy"), float)]
    stamp = next((p for p in (folder / RUN_MARKER, folder / runfiles.CONFIG_FILE) if p.is_file()), folder)
    done = state.get("epochs_completed") if state else len(history) or None
    asked = (state or {}).get("epochs") or resolved.get("epochs")
    fast = _read(_io.read_json, folder / runfiles.FAST_DIR / "export.json")
    return {
        "name": folder.name,
        "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(stamp.stat().st_mtime)),
        "data": Path(str(data["path"])).name if data.get("path") else None,
        "model": resolved.get("backbone") or resolved.get("model") or config.get("backbone") or config.get("model"),
        "recipe": config.get("recipe"),
        "epochs": f"{done}/{asked}" if done is not None and asked else done,
        "status": _status(folder, state),
        "best_val_accuracy": max(scores) if scores else None,
        "val_accuracy": scores[-1] if scores else None,
        "calibrated": (folder / runfiles.CALIBRATION_FILE).is_file(),
        "fast": bool(fast and not fast.get("error")),
        "distribute": config.get("distribute") if config.get("distribute") not in (None, "none") else None,
        "size_mb": round(_size(folder) / 1e6, 1),
        "path": str(folder),
    }


def list_runs(runs_dir: str | os.PathLike = "runs", sort: str = "date") -> list[dict]:
    """The rows (:func:`run_row`) of every run folder directly inside ``runs_dir``, sorted by ``sort`` (one of
    :data:`COLUMNS`; dates and accuracies highest first, a run without the value last).

    Raises:
        ImgclfError: ``runs_dir`` is not a folder, or ``sort`` is not a column.
    """
    check_one_of("sort", sort, list(COLUMNS))
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        raise ImgclfError(f"runs folder {str(runs_dir)!r} does not exist or is not a folder.")
    rows = [run_row(child) for child in sorted(runs_dir.iterdir()) if is_run(child)]
    known = [r for r in rows if r[sort] is not None]
    key = (lambda r: _epochs_done(r[sort])) if sort == "epochs" else (lambda r: r[sort])
    known.sort(key=key, reverse=sort in DESCENDING)
    return known + [r for r in rows if r[sort] is None]


def _epochs_done(value) -> int:
    return int(str(value).split("/")[0])
