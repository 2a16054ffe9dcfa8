"""``imgclf suspects`` (the images whose folder is probably wrong), ``imgclf relabel`` (move them, with undo) and
``imgclf triage`` (an inbox of unlabelled pictures: what to label first; file the confirmed ones)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from imgclf.cli._common import app, err, field, load_api


@app.command()
def suspects(
    data: Annotated[str, typer.Argument(help="Dataset folder (any layout `imgclf train` reads) or a named dataset.")],
    run: Annotated[Path | None, typer.Option(help="Judge with this run's trained model (its penultimate features) instead of a backbone; writes RUN/suspects/ for its report.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Pretrained backbone whose features judge the images (`imgclf backbones`; default squeezenet1_1). Not with --run.")] = None,
    weights: Annotated[str, typer.Option(help="Its weights: imagenet (downloaded once, then cached) or a weights file.")] = "imagenet",
    top: Annotated[int, typer.Option(help="Print at most this many suspects, most likely wrong first (0: all).")] = 30,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line: path, split, label, suggested, confidence.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the cross-validation folds.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Write suspects.json (all flagged) and suspects.png (a contact sheet of the first --top) here.")] = None,
):  # fmt: skip
    """Images whose folder (label) is probably wrong, most likely first: out-of-fold probabilities, cleanlab's ranking."""
    load_api()
    from imgclf.curation.sheet import MAX_SHEET, write_suspects
    from imgclf.curation.suspects import find_label_issues
    from imgclf.data.named import resolve
    from imgclf.errors import ImgclfError
    from imgclf.runs.record import SUSPECTS_DIR

    if top < 0:
        raise ImgclfError(f"top must be 0 (all) or a positive number of suspects. Received: {top}")
    if run is not None and backbone is not None:
        raise ImgclfError(f"--backbone judges without a run; --run judges with the run's own model. Received both: "
                          f"--run {str(run)!r} --backbone {backbone!r}")  # fmt: skip
    backbone = backbone or "squeezenet1_1"
    where = out if out is not None else (run / SUSPECTS_DIR if run is not None else None)
    if where is not None and Path(data).is_dir():
        real_data, real_out = os.path.realpath(data), os.path.realpath(where)
        if real_out == real_data or real_out.startswith(real_data + os.sep):
            raise ImgclfError(f"--out {str(where)!r} is inside DATA {data!r}: its contact sheet would become a "
                              "training picture. Give a folder outside the data.")  # fmt: skip

    judge = f"the penultimate features of {run}" if run is not None else f"{backbone} features"
    err.print(f"Judging every image with out-of-fold probabilities from {escape(judge)} ...")
    report = find_label_issues(resolve(data), backbone=backbone, weights=None if weights == "none" else weights,
                               run=run, seed=seed)  # fmt: skip
    shown = report.suspects if top == 0 else report.suspects[:top]
    for s in shown:
        if as_json:
            print(json.dumps({"path": s.path, "split": s.split, "label": s.label, "suggested": s.suggested,
                              "confidence": round(s.confidence, 4)}))  # fmt: skip
        else:
            print(f"{field(s.path)}\t{field(s.label)} -> {field(s.suggested)}\t{s.confidence:.4f}")
    if len(report.skipped):
        err.print(f"Skipped {len(report.skipped)} unreadable file(s) (run `imgclf doctor` on the data).")
    err.print(f"Looked at {report.looked_at:,} images; flagged {len(report.suspects):,}"
              f"{f' (showing {len(shown)})' if len(shown) < len(report.suspects) else ''}. Flagged is not proven "
              "wrong: look at each before moving it.")  # fmt: skip
    out = out if out is not None or run is None else run / SUSPECTS_DIR
    if out is not None:
        json_path, sheet = write_suspects(report, out, judge, top or MAX_SHEET)
        err.print(f"Wrote {escape(str(json_path))}{f' and {escape(str(sheet))}' if sheet else ''}"
                  f"{'; `imgclf report` shows them in the run report' if run is not None else ''}.")  # fmt: skip


@app.command()
def relabel(
    data: Annotated[Path, typer.Argument(help="Dataset folder (DATA/<class>/ or DATA/<split>/<class>/).")],
    paths: Annotated[list[Path] | None, typer.Argument(help="Image files of DATA to move.")] = None,
    to: Annotated[str | None, typer.Option(help="The class folder to move them into (in each file's own split).")] = None,
    undo: Annotated[bool, typer.Option("--undo", help="Move the last relabelled batch back (every byte checked).")] = False,
):  # fmt: skip
    """Move images into another class folder, recorded in DATA/.relabel/manifest.json; --undo moves them back."""
    from imgclf.curation import relabel as moves
    from imgclf.errors import ImgclfError

    if undo:
        if paths or to is not None:
            raise ImgclfError("--undo takes only DATA: it moves the last relabelled batch back.")
        done = moves.undo(data)
        for m in done:
            err.print(f"back: {escape(m['to'])} -> {escape(m['from'])}")
        print(f"{len(done)} file(s) moved back.")
        if done.discarded:
            err.print(f"Removed {len(done.discarded)} leftover(s) of an interrupted batch (a second name, a partial "
                      "copy); their originals are intact.")  # fmt: skip
        return
    if not paths or to is None:
        raise ImgclfError("relabel needs image files and --to CLASS (or --undo).")
    done = moves.relabel(data, paths, to)
    for m in done:
        print(f"{field(m['from'])}\t->\t{field(m['to'])}")
    err.print(
        f"{len(done)} file(s) moved to {escape(to)}; `imgclf relabel {escape(str(data))} --undo` moves them back."
    )


@app.command()
def triage(
    run: Annotated[Path | None, typer.Argument(help="The run whose model scores the pictures.")] = None,
    folder: Annotated[Path | None, typer.Argument(help="Folder of unlabelled pictures (searched recursively).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line, highest priority first: path, label, probability, margin, ood_score, unknown, priority, selected.")] = False,
    budget: Annotated[int | None, typer.Option(help="Choose this many to label this round (diverse, unsure, never unknown).")] = None,
    accept: Annotated[Path | None, typer.Option(help="File the images of this JSON-lines file (triage --json, checked by a person) under their label.")] = None,
    into: Annotated[Path | None, typer.Option(help="With --accept: the dataset folder whose class folders receive them.")] = None,
    min_probability: Annotated[float | None, typer.Option(help="With --accept: file only lines at least this probable and not unknown (the model's answers, taken as they are).")] = None,
):  # fmt: skip
    """Order unlabelled pictures for labelling (unknown first, then the unsure, spread out); --accept files them."""
    from imgclf.errors import ImgclfError

    if accept is not None:
        from imgclf.curation.triage import accept as file_rows

        if into is None or run is not None or folder is not None:
            raise ImgclfError("--accept FILE needs --into DATA and no RUN or FOLDER.")
        done = file_rows(_json_lines(accept), into, min_probability)
        for m in done:
            print(f"{field(m['from'])}\t->\t{field(m['to'])}")
        err.print(f"{len(done)} file(s) filed into {escape(str(into))}; `imgclf relabel {escape(str(into))} --undo` "
                  "moves them back.")  # fmt: skip
        return
    if run is None or folder is None:
        raise ImgclfError("triage needs RUN and FOLDER (or --accept FILE --into DATA).")
    load_api()
    from imgclf.curation.triage import triage as order

    rows = order(run, folder, budget)
    for r in rows:
        if as_json:
            print(json.dumps(r.to_dict(os.path.realpath(folder))))
        else:
            mark = "unknown" if r.unknown else ("label" if r.selected else "")
            print(f"{r.priority:.3f}\t{field(r.path)}\t{field(r.label)}\t{r.probability:.3f}\t{mark}")
    for path in rows.unreadable:
        err.print(f"unreadable, left out: {escape(str(path))}")
    unknown = sum(r.unknown for r in rows)
    err.print(f"{len(rows)} picture(s): {unknown} unknown (look at them: a new class, or not for this model)"
              f"{f'; selected {sum(r.selected for r in rows)} to label' if budget else ''}.")  # fmt: skip


def _json_lines(path: Path) -> list:
    from imgclf.errors import ImgclfError

    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ImgclfError(f"cannot read {str(path)!r}: {exc}") from None
    for k, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise ImgclfError(f"line {k} of {str(path)!r} is not JSON: expected triage --json's lines.") from None
    return rows
