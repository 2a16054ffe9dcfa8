"""Small file helpers: atomic writes (temp file in the same folder + ``os.replace``)."""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import yaml


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    A crash (or kill -9) part-way leaves the old file, never a half-written one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_stale_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Delete temporary files :func:`atomic_path` left beside ``folder/name`` when a process was killed mid-write
    (``.<name>.<random><suffix>``). Only such names are touched. Returns what was removed."""
    target = Path(folder) / name
    removed = []
    for tmp in Path(folder).glob(f".{target.name}.*{target.suffix}"):
        if tmp.is_file():
            tmp.unlink()
            removed.append(tmp)
    return removed


#: Marker written last into a folder made by :func:`atomic_dir`: its presence means "complete".
COMPLETE = ".complete"


def is_complete(folder: str | os.PathLike) -> bool:
    """True when ``folder`` was finished by :func:`atomic_dir`."""
    return (Path(folder) / COMPLETE).is_file()


@contextmanager
def atomic_dir(final: str | os.PathLike, note: str = ""):
    """Yield a temporary folder beside ``final``; on success mark it complete and rename it to ``final``.

    Whatever fails inside leaves no half-made ``final`` (the temporary folder is removed); an older
    ``final`` is replaced only at the end, in one rename.
    """
    import shutil

    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        yield staging
        (staging / COMPLETE).write_text(note + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2) + "\n")


def write_yaml(path: str | os.PathLike, obj) -> None:
    """Write ``obj`` as block-style YAML to ``path`` atomically (key order kept)."""
    write_text(path, yaml.safe_dump(obj, sort_keys=False, default_flow_style=None))


def read_yaml(path: str | os.PathLike):
    """Read a YAML file with ``yaml.safe_load``."""
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def read_json(path: str | os.PathLike):
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
