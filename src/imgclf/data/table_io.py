"""Both ways between folders and label tables: the table of any dataset (``path, label, split, group`` — what
relabel and quarantine have made of a folder), written as CSV, TSV or Parquet so a cleaned dataset can leave imgclf
for any other tool; and a table's pictures laid out as class folders (copies or links, never moves) for tools that
need folders. ``imgclf table`` is the command."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from imgclf import _io
from imgclf.data.split import place_file
from imgclf.errors import ImgclfError, check_one_of

#: The columns of a dataset's table.
COLUMNS = ("path", "label", "split", "group")


def dataset_rows(dataset, relative_to: str | os.PathLike | None = None) -> list[dict]:
    """``{"path", "label", "split", "group"}`` of every image of ``dataset`` (a
    :class:`~imgclf.data.samples.Dataset`): training images first, then validation; ``group`` from
    :attr:`Dataset.groups`, else ``""``; ``path`` relative to ``relative_to`` when given (and inside it)."""
    groups = getattr(dataset, "groups", None) or {}
    base = os.path.realpath(relative_to) if relative_to is not None else None
    rows = []
    for split, samples in (("train", dataset.train), ("validation", dataset.validation)):
        for path, label in zip(samples.paths, samples.labels) if samples is not None else ():
            shown = path
            if base is not None and os.path.realpath(path).startswith(base + os.sep):
                shown = Path(os.path.relpath(os.path.realpath(path), base)).as_posix()
            rows.append({"path": shown, "label": dataset.class_names[int(label)], "split": split,
                         "group": groups.get(path, "")})  # fmt: skip
    return rows


def csv_text(rows: list[dict], columns=COLUMNS, delimiter: str = ",") -> str:
    """``rows`` as CSV text with a header (``delimiter`` ``"\\t"`` for TSV)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n", delimiter=delimiter)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def write_table(rows: list[dict], out: str | os.PathLike) -> Path:
    """Write ``rows`` to ``out`` (``.csv``, ``.tsv`` or ``.parquet``: pyarrow, the parquet extra), atomically.

    Raises:
        ImgclfError: another suffix, ``out`` already exists (never overwritten), or pyarrow missing for Parquet.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    check_one_of("the table's suffix", suffix, [".csv", ".tsv", ".parquet"])
    if out.exists():
        raise ImgclfError(f"{str(out)!r} already exists: a table is never written over. Choose another name.")
    if suffix == ".parquet":
        import pandas as pd

        try:
            with _io.atomic_path(out) as tmp:
                pd.DataFrame(rows, columns=list(COLUMNS)).to_parquet(tmp, index=False)
        except ImportError:
            raise ImgclfError("Parquet tables need pyarrow: pip install 'imgclf[parquet]'") from None
        return out
    _io.write_text(out, csv_text(rows, delimiter="\t" if suffix == ".tsv" else ","))
    return out


def table_to_folders(dataset, dest: str | os.PathLike, mode: str = "copy") -> dict:
    """Lay out ``dataset``'s pictures as ``dest/train/<class>/`` and ``dest/validation/<class>/`` (``dest/<class>/``
    without validation), by ``mode``: ``copy``, ``link`` (hard links) or ``symlink`` — the pictures themselves are
    never moved. Two pictures of one name in a class get ``name.1.jpg``, ``name.2.jpg``.

    Returns:
        ``{split: {class: n}}``.

    Raises:
        ImgclfError: ``dest`` not a new or empty folder, a bad ``mode``, or a file that cannot be placed.
    """
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ImgclfError(f"DEST must be an empty or new folder; refusing to overwrite. Received: {str(dest)!r}")
    counts: dict[str, dict[str, int]] = {}
    for row in dataset_rows(dataset):
        split = row["split"] if dataset.validation is not None else ""
        folder = dest / split / row["label"] if split else dest / row["label"]
        folder.mkdir(parents=True, exist_ok=True)
        name, k = Path(row["path"]).name, 1
        target = folder / name
        while target.exists():
            target, k = folder / f"{Path(name).stem}.{k}{Path(name).suffix}", k + 1
        place_file(row["path"], target, mode)
        counts.setdefault(split or "all", {}).setdefault(row["label"], 0)
        counts[split or "all"][row["label"]] += 1
    return counts
