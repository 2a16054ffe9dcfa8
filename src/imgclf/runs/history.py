"""``history.csv``: one row per finished epoch, written after every epoch and read by resume, reports and
``ImageClassifier.load``."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from imgclf._io import write_text
from imgclf.errors import ImgclfError

#: Columns of ``history.csv``, in order; metrics a run lacks (no validation) are left out.
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


def write_history_csv(path: str | Path, rows: list[dict]) -> None:
    """Write history rows (dicts keyed by :data:`HISTORY_COLUMNS`) to a CSV file atomically."""
    present = [c for c in HISTORY_COLUMNS if any(c in r for r in rows)]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=present, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items() if k in present})
    write_text(path, buf.getvalue())


def read_history_csv(path: str | Path) -> list[dict]:
    """Read ``history.csv`` back into rows (``epoch`` int, other columns float).

    Raises:
        ImgclfError: a row that is not numbers under the header's names (a garbled or hand-edited file), or a file
            that is not UTF-8 text; the message names the file and the row.
    """
    rows = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            for line, r in enumerate(csv.DictReader(f), start=2):
                if None in r or "epoch" not in r or any(v is None for v in r.values()):
                    raise ValueError(f"row {line} does not match the header")
                rows.append({k: (int(v) if k == "epoch" else float(v)) for k, v in r.items() if v != ""})
    except (ValueError, UnicodeDecodeError, csv.Error) as exc:
        raise ImgclfError(f"{str(path)!r} is garbled: {str(exc)[:200]}") from None
    return rows
