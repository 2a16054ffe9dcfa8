"""What a run trained on, file by file: ``RUN/split.csv`` (``path, label, split, group`` — anyone can check that no
group crosses the split) and, for a label table, ``RUN/data_problems.csv`` (each row or file left out, and why)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from imgclf import _io
from imgclf.runs.record import PROBLEMS_FILE, SPLIT_FILE


def split_rows(dataset) -> list[dict]:
    """``{"path", "label", "split", "group"}`` of every image of ``dataset`` (a
    :class:`~imgclf.data.samples.Dataset`): training images first, then validation; ``group`` from a label table's
    group column or ``--group-by`` (:attr:`Dataset.groups`), else ``""``."""
    groups = getattr(dataset, "groups", None) or {}
    rows = []
    for split, samples in (("train", dataset.train), ("validation", dataset.validation)):
        if samples is None:
            continue
        for path, label in zip(samples.paths, samples.labels):
            rows.append({"path": path, "label": dataset.class_names[int(label)], "split": split,
                         "group": groups.get(path, "")})  # fmt: skip
    return rows


def _csv(fieldnames, rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_split(run: str | Path, dataset) -> list[Path]:
    """Write ``split.csv`` into ``run`` and, when ``dataset`` came from a label table with problems,
    ``data_problems.csv`` (``kind, row, value, detail``: :class:`~imgclf.data.tables.TableProblem`). Returns the
    files written."""
    run = Path(run)
    _io.write_text(run / SPLIT_FILE, _csv(["path", "label", "split", "group"], split_rows(dataset)))
    written = [run / SPLIT_FILE]
    source = getattr(dataset, "source", None)
    if source is not None and source.problems:
        rows = [{"kind": p.kind, "row": "" if p.row is None else p.row, "value": p.value, "detail": p.detail}
                for p in source.problems]  # fmt: skip
        _io.write_text(run / PROBLEMS_FILE, _csv(["kind", "row", "value", "detail"], rows))
        written.append(run / PROBLEMS_FILE)
    return written
