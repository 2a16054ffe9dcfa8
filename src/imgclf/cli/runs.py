"""Commands over runs: ``runs`` (the list), ``compare`` (side by side)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from imgclf.cli._common import app, err, out


def _shown(column: str, value) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if column == "size_mb":
        return f"{value:.1f}"
    if isinstance(value, float):
        return f"{value:.3f}"
    return escape(str(value)[5:] if column == "date" else str(value))  # the year goes: MM-DD HH:MM


@app.command()
def runs(
    runs_dir: Annotated[Path, typer.Argument(help="Folder that holds run folders.")] = Path("runs"),
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per run.")] = False,
    sort: Annotated[str, typer.Option(help="Column to sort by: date (default, newest first), best_val_accuracy, val_accuracy, name, model, status, size_mb, ...")] = "date",
):  # fmt: skip
    """List the runs: name, date, data, model, recipe, epochs, status, validation accuracy, calibrated, size."""
    from imgclf.runs.listing import list_runs

    rows = list_runs(runs_dir, sort)
    if as_json:
        for row in rows:
            print(json.dumps(row))
        return
    if not rows:
        err.print(f"No runs in {escape(str(runs_dir))}.")
        return
    headers = {"name": "run", "date": "date", "data": "data", "model": "model", "recipe": "recipe", "epochs": "epochs",
               "status": "status", "best_val_accuracy": "best val", "val_accuracy": "final val",
               "calibrated": "calib.", "fast": "fast", "size_mb": "MB"}  # fmt: skip
    shown = [c for c in headers if c != "recipe" or any(r["recipe"] for r in rows)]  # no recipe anywhere: no column
    table = Table(box=None, pad_edge=False, show_edge=False)
    widths = {c: max(len(headers[c]), *(len(_shown(c, r[c])) for r in rows)) for c in shown}
    for optional in ("fast", "calibrated", "size_mb", "recipe", "data", "model"):  # a narrow terminal: fewer columns
        if sum(widths[c] + 2 for c in shown) <= out.width:
            break
        if optional in shown:
            shown.remove(optional)
    for column in shown:
        table.add_column(headers[column], no_wrap=True, overflow="ellipsis",
                         justify="right" if column in ("best_val_accuracy", "val_accuracy", "size_mb") else "left")  # fmt: skip
    for row in rows:
        table.add_row(*(_shown(c, row[c]) for c in shown))
    out.print(table)


@app.command()
def compare(
    runs_given: Annotated[list[Path], typer.Argument(metavar="RUN_A RUN_B [RUN...]", help="Two or more run folders.")],
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for compare.html (default: compare-A-vs-B beside RUN_A).")] = None,
):  # fmt: skip
    """Compare runs: the settings that differ, curves overlaid, per-class precision/recall, and the images on which
    their predictions differ (an HTML page)."""
    from imgclf.report.compare import compare_runs

    page = compare_runs(runs_given, out_dir)
    err.print(f"Compared {len(runs_given)} runs: {escape(str(page))}")
    print(page)
