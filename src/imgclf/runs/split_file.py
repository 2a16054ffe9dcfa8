"""What a run trained on, file by file: ``RUN/split.csv`` (``path, label, split, group`` — anyone can check that no
group crosses the split) and, for a label table, ``RUN/data_problems.csv`` (each row or file left out, and why)."""

from __future__ import annotations

from pathlib import Path

from imgclf import _io
from imgclf.data.table_io import csv_text, dataset_rows
from imgclf.runs.record import PROBLEMS_FILE, SPLIT_FILE


def write_split(run: str | Path, dataset) -> list[Path]:
    """Write ``split.csv`` into ``run`` and, when ``dataset`` came from a label table with problems,
    ``data_problems.csv`` (``kind, row, value, detail``: :class:`~imgclf.data.tables.TableProblem`). Returns the
    files written."""
    run = Path(run)
    _io.write_text(run / SPLIT_FILE, csv_text(dataset_rows(dataset)))
    written = [run / SPLIT_FILE]
    source = getattr(dataset, "source", None)
    if source is not None and source.problems:
        rows = [{"kind": p.kind, "row": "" if p.row is None else p.row, "value": p.value, "detail": p.detail}
                for p in source.problems]  # fmt: skip
        _io.write_text(run / PROBLEMS_FILE, csv_text(rows, ["kind", "row", "value", "detail"]))
        written.append(run / PROBLEMS_FILE)
    return written
