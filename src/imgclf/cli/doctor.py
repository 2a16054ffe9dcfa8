"""``imgclf doctor``: check, report, quarantine and restore."""

from __future__ import annotations

import json
import types
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from imgclf.cli._common import app, err, out
from imgclf.cli._settings import with_these_settings_options

#: The settings ``doctor`` takes too: how to read a label table, and the groups that must not cross the split.
TABLE_OPTIONS = ("images", "x_col", "y_col", "suffix", "class_names", "split_col", "group_col", "group_by")


@app.command()
@with_these_settings_options(*TABLE_OPTIONS)
def doctor(
    data: Annotated[Path, typer.Argument(help="Dataset folder or label table (as for `imgclf train`).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")] = False,
    fix: Annotated[bool, typer.Option(help="Move unusable files into DATA/.quarantine/ (with a manifest).")] = False,
    restore: Annotated[bool, typer.Option(help="Move quarantined files back.")] = False,
    quick: Annotated[bool, typer.Option(help="Read headers only (no full decode, no perceptual hashes).")] = False,
    suspects: Annotated[Path | None, typer.Option(help="With --fix, also quarantine the images flagged in this suspects.json (or its folder) of `imgclf suspects DATA --out DIR`.")] = None,
    **options,
):  # fmt: skip
    """Check every file: unreadable, non-images, odd modes, EXIF, tiny/huge, duplicates and train/validation leakage."""
    from imgclf.data import doctor as doc
    from imgclf.data.tables import TableColumns
    from imgclf.errors import ImgclfError

    flagged = None
    if suspects is not None:
        from imgclf.curation.relabel import quarantine_suspects
        from imgclf.curation.sheet import read_suspects

        if not fix:
            raise ImgclfError("--suspects quarantines the flagged images: use it with --fix.")
        flagged = read_suspects(suspects)
    if restore:
        restored = doc.restore(data)
        for rel in restored:
            err.print(f"restored {escape(rel)}")
        for rel, why in restored.kept:
            err.print(f"kept in the quarantine: {escape(rel)}: {escape(why)}")
        out.print(f"{len(restored)} file(s) restored{f', {len(restored.kept)} kept' if restored.kept else ''}.")
        return
    with Progress(TextColumn("Checking"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("check", total=None)
        report = doc.diagnose_folder(data, full=not quick, progress=lambda i, n: bar.update(task, completed=i, total=n),
                                     table=TableColumns.of(types.SimpleNamespace(**options)),
                                     group_by=options.get("group_by"))  # fmt: skip
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        _print_report(report)
    if fix and report["unusable"]:
        moved = doc.quarantine(data, report["unusable"], {f["path"]: f["problems"] for f in report["files"]})
        err.print(f"Moved {len(moved)} unusable file(s) to {Path(data) / doc.QUARANTINE_DIR} (see manifest.json).")
    if flagged is not None:
        moved = quarantine_suspects(data, flagged)
        err.print(f"Moved {len(moved)} suspected wrong label(s) to {Path(data) / doc.QUARANTINE_DIR} (see "
                  "manifest.json); `--restore` moves everything back.")  # fmt: skip


def _print_report(report: dict) -> None:
    from imgclf.data.doctor import PROBLEMS
    from imgclf.data.doctor_sources import TABLE_PROBLEMS

    files = report["files"]
    out.print(f"{len(files)} files in {report['root']}: {report['files_per_second']:.0f} files/s")
    counts = Table("split", "class", "usable images", "share")
    for split, classes in report["counts"].items():
        total = sum(classes.values())
        for name, n in classes.items():
            counts.add_row(split, escape(name), str(n), f"{100 * n / total:.1f} %")
    out.print(counts)
    if not report["problems"]:
        out.print("No problems found.")
        return
    table = Table("problem", "files", "unusable", "what it means", "examples")
    for code, paths in report["problems"].items():
        unusable, meaning = PROBLEMS.get(code) or (False, TABLE_PROBLEMS.get(code, code))
        examples = ", ".join(escape(p) for p in paths[:3]) + (" …" if len(paths) > 3 else "")
        table.add_row(code, str(len(paths)), "yes" if unusable else "", meaning, examples)
    out.print(table)
    if report["unusable"]:
        out.print(f"{len(report['unusable'])} unusable file(s): training skips them; `--fix` quarantines them.")
