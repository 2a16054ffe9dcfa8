"""Small file helpers: atomic writes (temp file in the same folder + ``os.replace``)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import yaml


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path for ``path``, in a private folder beside it; on success it replaces ``path``
    atomically and the folder goes.

    A crash (or kill -9) part-way leaves the old file, never a half-written one; whatever the writer put beside
    its file (Keras writes large weights to a temporary HDF5 file next to the ``.keras`` it saves) stays inside
    the private folder ``.<name>.<random>``, which :func:`remove_stale_temporaries` deletes on the next start.

    Raises:
        OSError: the write failed (a full disk, a read-only folder); it names ``path`` when the error named no file
            or the private temporary one.
    """
    path = Path(path)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    tmp = folder / path.name
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as exc:  # a full disk mid-write names no file (or the private one): name the file being written
        if exc.filename is None or str(exc.filename).startswith(str(folder)):
            raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc
        raise
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_stale_temporaries(folder: str | os.PathLike, name: str) -> list[Path]:
    """Delete what :func:`atomic_path` left beside ``folder/name`` when a process was killed mid-write
    (``.<name>.<random>`` folders, and files of that form from earlier versions). Only such names are touched.
    Returns what was removed."""
    removed = []
    for tmp in Path(folder).glob(f".{name}.*"):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.is_file():
            tmp.unlink()
        else:
            continue
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


#: The most values (mappings, lists and scalars, counted through every alias) a YAML file imgclf reads may expand to:
#: a run's config.yaml holds a few hundred; a 376-byte "billion laughs" alias bomb expands to billions.
YAML_MAX_VALUES = 100_000


class YamlTooLarge(yaml.YAMLError):
    """A YAML document that expands to more than :data:`YAML_MAX_VALUES` values."""


def _check_expanded_size(obj, limit: int = YAML_MAX_VALUES) -> None:
    """Count the values of ``obj`` as if every alias were copied out, stopping past ``limit``.

    Raises:
        YamlTooLarge: more than ``limit``.
    """
    count, stack = 0, [obj]
    while stack:
        item = stack.pop()
        count += 1
        if count > limit:
            raise YamlTooLarge(f"it expands to more than {limit:,} values (YAML aliases repeating each other)")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def read_yaml(path: str | os.PathLike):
    """Read a YAML file as ``yaml.safe_load`` does (no tags that build Python objects), through libyaml's
    ``CSafeLoader`` when PyYAML has it (10x faster: ``imgclf runs`` reads every run's config).

    Raises:
        OSError: the file cannot be read; UnicodeDecodeError: it is not UTF-8 text.
        yaml.YAMLError: not YAML, or (:class:`YamlTooLarge`) aliases that expand it past :data:`YAML_MAX_VALUES`
            values — checked before anything else looks at it.
    """
    with open(path, encoding="utf-8") as f:
        obj = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 — a safe loader
    _check_expanded_size(obj)
    return obj


def read_json(path: str | os.PathLike):
    """Read a JSON file."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)
