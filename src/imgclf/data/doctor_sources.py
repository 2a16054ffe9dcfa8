"""What ``imgclf doctor`` checks besides a folder's files: the pictures a label table names (its rows' problems as
findings) and the groups that must not cross the split — a table's ``group_col``, or ``--group-by REGEX`` on file
names — reported as leakage (``group_leak``)."""

from __future__ import annotations

import os
from pathlib import Path

from imgclf.data.samples import group_of
from imgclf.data.tables import TableColumns, load_table

#: The doctor's findings of a label table, with what they mean (:class:`imgclf.data.tables.TableProblem` kinds).
TABLE_PROBLEMS = {
    "no_image": "a row of the label table names no picture",
    "no_row": "a picture of the images folder no row of the table names",
    "conflicting_labels": "rows of the label table give one picture different labels (left out of training)",
    "duplicate_row": "the same row twice in the label table",
    "empty_label": "a row of the label table has no label",
    "unknown_split": "a row's split value is none of train / valid / validation / test / true / false",
}
GROUP_LEAK = "a group (a patient, a burst of shots) has pictures in training and in validation/test"


def table_files(table, columns: TableColumns | None = None):
    """``(images folder, [(split, label, path)], {path relative to the folder: group}, problems)`` of a label table:
    every picture its rows name and keep, in the table's split (``train`` / ``validation``) when it has a split
    column, else all in one (``""``); ``problems`` is ``{kind: [values]}`` of its :class:`TableProblem` list.

    Raises:
        ImgclfError: as :func:`imgclf.data.tables.load_table`.
    """
    columns = columns or TableColumns()
    dataset, source = load_table(table, columns, validation_split=None if columns.split_col else 0.0)
    root = Path(source.images)
    real_root = os.path.realpath(root)
    files, groups = [], {}
    for split, samples in (("train" if columns.split_col else "", dataset.train), ("validation", dataset.validation)):
        for path, label in zip(samples.paths, samples.labels) if samples is not None else ():
            rel = os.path.relpath(os.path.realpath(path), real_root)
            files.append((split, dataset.class_names[int(label)], root / rel))
            if dataset.groups:
                groups[Path(rel).as_posix()] = dataset.groups[path]
    problems: dict[str, list[str]] = {}
    for p in source.problems:
        problems.setdefault(p.kind, []).append(p.value if p.row is None else f"row {p.row}: {p.value}")
    return root, files, groups, problems


def group_leaks(checks, groups: dict | None, group_by: str | None) -> list[str]:
    """The paths of ``checks`` (doctor's :class:`FileCheck` list) whose group has files in more than one split:
    groups from ``groups`` (path → group) or ``group_by`` (a regex on file names, :func:`group_of`)."""
    if not groups and not group_by:
        return []

    def group(path: str) -> str:
        return groups[path] if groups and path in groups else group_of(path, group_by) if group_by else path

    splits: dict[str, set] = {}
    for c in checks:
        splits.setdefault(group(c.path), set()).add(c.split.lower() in ("train", "training", ""))
    return [c.path for c in checks if len(splits[group(c.path)]) > 1]
