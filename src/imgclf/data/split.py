"""``imgclf split``: the course's ``split_data`` helper done right.

Stratified and seeded (scikit-learn's ``train_test_split``), it skips zero-length and undecodable files and
says which, never overwrites, and copies (or links) into ``DEST/train/<class>`` + ``DEST/validation/<class>``.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from imgclf.data.files import unreadable_reason
from imgclf.data.folders import DEFAULT_LABEL_PATTERN, Samples, check_dir, scan_classes, stratified_split, unwrap_folder
from imgclf.errors import ImgclfError, check_one_of

MODES = ("copy", "link", "symlink")


def place_file(path: str | os.PathLike, target: str | os.PathLike, mode: str = "copy") -> None:
    """Put the file ``path`` at ``target`` by ``mode`` (:data:`MODES`: a copy, a hard link, a symlink to its absolute
    path); the original stays where it is.

    Raises:
        ImgclfError: ``mode`` not one of :data:`MODES`, or the file cannot be placed (named, with why).
    """
    check_one_of("mode", mode, list(MODES))
    place = {"copy": shutil.copy2, "link": os.link, "symlink": lambda a, b: os.symlink(os.path.abspath(a), b)}[mode]
    try:
        place(path, target)
    except OSError as exc:
        raise ImgclfError(f"cannot {mode} {str(path)!r} to {str(target)!r}: {exc.strerror}; try mode='copy'.") from None


def split_folder(
    source: str | os.PathLike,
    dest: str | os.PathLike,
    ratio: float = 0.9,
    seed: int = 42,
    mode: str = "copy",
    label_pattern: str = DEFAULT_LABEL_PATTERN,
    workers: int | None = None,
) -> dict:
    """Split a folder of class folders into ``dest/train/<class>`` and ``dest/validation/<class>``.

    Args:
        source: ``SOURCE/<class>/<image>`` (or a flat folder of ``<class>.<n>.jpg``, or a wrapper).
        dest: an empty or missing folder.
        ratio: fraction of each class's usable images that go to ``train``, in (0, 1).
        seed: seed of the stratified split; the same seed gives the same split.
        mode: ``copy`` (default), ``link`` (hard links) or ``symlink``.
        label_pattern: labels of a flat source (see :func:`imgclf.data.folders.scan_classes`).
        workers: decoding threads (default: one per CPU).

    Returns:
        ``{"train": {class: n}, "validation": {class: n}, "skipped": [{"path", "reason"}]}``.

    Raises:
        ImgclfError: bad ``ratio`` or ``mode``, ``dest`` not empty, or an unusable ``source``.
    """
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise ImgclfError(f"ratio must be a float in (0, 1): the share of images for training. Received: {ratio!r}")
    check_one_of("mode", mode, list(MODES))
    dest = Path(dest)
    src_real, dest_real = os.path.realpath(source), os.path.realpath(dest)
    if dest_real == src_real or dest_real.startswith(src_real + os.sep) or src_real.startswith(dest_real + os.sep):
        raise ImgclfError(
            f"dest must be outside source (the split would become part of its own data). Received: {str(dest)!r}"
        )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ImgclfError(f"DEST must be an empty or new folder; refusing to overwrite. Received: {str(dest)!r}")
    classes = scan_classes(unwrap_folder(check_dir(source, "SOURCE")), label_pattern)
    names = tuple(classes)
    all_paths = [p for paths in classes.values() for p in paths]
    with ThreadPoolExecutor(workers or os.cpu_count() or 2) as pool:
        reasons = list(pool.map(unreadable_reason, all_paths))
    skipped = [{"path": p, "reason": r} for p, r in zip(all_paths, reasons) if r]
    bad = {s["path"] for s in skipped}
    labels = [i for i, paths in enumerate(classes.values()) for p in paths if p not in bad]
    good = Samples(tuple(p for p in all_paths if p not in bad), np.asarray(labels, np.int32))
    train, validation = stratified_split(good, 1.0 - ratio, seed)
    summary = {"skipped": skipped}
    for split, samples in (("train", train), ("validation", validation)):
        counts = dict.fromkeys(names, 0)
        for path, label in zip(samples.paths, samples.labels):
            target = dest / split / names[label] / os.path.basename(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            place_file(path, target, mode)
            counts[names[label]] += 1
        summary[split] = counts
    return summary
