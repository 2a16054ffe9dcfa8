"""The inbox: a folder of unlabelled pictures, sorted by ``imgclf triage RUN FOLDER --json`` (run as a background
job; unknown first, then the least sure, diverse), shown one at a time; keys 1-9 file the picture under a class of
the chosen data folder (``triage --accept``'s function, :func:`imgclf.curation.triage.accept`), U skips it, Z
undoes the last filing (:func:`imgclf.curation.relabel.undo`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

import json
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from imgclf.errors import ImgclfError
from imgclf.runs.listing import list_runs
from imgclf.studio.context import StudioHere
from imgclf.studio.project import STUDIO_DIR, data_folders, inbox_folders, inside, read_data_folder, relative
from imgclf.studio.schemas import FileBody, JobState, Moved, TriageBody

router = APIRouter()


def triage_file(root: Path, run: str, folder: str) -> Path:
    """Where the triage of ``folder`` by ``run`` is kept (``triage --json``'s lines)."""
    return Path(root) / STUDIO_DIR / "inbox" / run / f"{folder}.jsonl"


class TriageLine(BaseModel):
    """One line of ``triage --json`` as the inbox page uses it, every field of its type (strict: ``"0.9"`` is not a
    probability, ``true`` is not a number), other fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore")
    path: str
    label: str
    probability: float
    margin: float
    unknown: bool
    priority: float
    ood_score: float | None = None


def read_triage(root: Path, run: str, folder: str) -> list[dict] | None:
    """The rows of the last triage of ``folder`` by ``run`` whose picture is still in the folder, highest priority
    first, ``path`` relative to the project; ``None`` when it was never sorted. A line that is not JSON, or not a
    :class:`TriageLine`, or names a picture outside the project is passed over (that picture is not offered)."""
    file = triage_file(root, run, folder)
    if not file.is_file():
        return None
    rows = []
    for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            row = TriageLine.model_validate(json.loads(line)).model_dump()
            path = relative(root, row["path"])
        except (ValueError, ValidationError):  # json's, Pydantic's, and a NUL in a path
            continue
        if path is not None and (root / path).is_file():
            rows.append({**row, "path": path})
    return rows


def _classes(root: Path, into: str) -> list[str]:
    """The classes of the data folder ``into`` that filing may choose (its training split's, or its own)."""
    folder = read_data_folder(root, into) if inside(root, into) != root else None
    if folder is None:
        raise ImgclfError(f"{into!r} is not a data folder of this project.")
    return sorted(folder.splits.get("train", folder.splits.get("", {})))


def _inbox_name(root: Path, folder: str) -> str:
    if folder not in dict(inbox_folders(root)):
        raise ImgclfError(f"{folder!r} is not a folder of unlabelled pictures in this project.")
    return folder


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, studio: StudioHere, folder: str = "", run: str = "", into: str = ""):
    root = studio.root
    inboxes = inbox_folders(root)
    listed = list_runs(root / "runs") if (root / "runs").is_dir() else []
    runs = [r["name"] for r in listed if r["status"] == "finished"]
    datas = [f.name for f in data_folders(root)]
    folder = folder or (inboxes[0][0] if inboxes else "")
    run = run or (runs[0] if runs else "")
    if run and run not in runs:
        raise ImgclfError(f"{run!r} is not a finished run of this project.")
    into = into or (datas[0] if datas else "")
    rows = read_triage(root, run, _inbox_name(root, folder)) if folder and run else None
    job = studio.jobs.latest("triage", f"{run}/{folder}")
    return studio.page("inbox.html.j2", request, inboxes=inboxes, runs=runs, datas=datas, folder=folder, run=run,
                       into=into, rows=rows, classes=_classes(root, into) if into else [],
                       job=job.to_dict() if job else None)  # fmt: skip


@router.post("/api/inbox/triage", response_model=JobState)
def sort(studio: StudioHere, body: TriageBody):
    """Start ``imgclf triage RUN FOLDER --json`` in the background, its lines kept for the inbox page."""
    from imgclf.studio.jobs import imgclf_command

    root = studio.root
    folder = _inbox_name(root, body.folder)
    run_dir = inside(root, f"runs/{body.run}")
    if not (run_dir / "model.keras").is_file():
        raise ImgclfError(f"{body.run!r} is not a trained run of this project.")
    command = imgclf_command("triage", str(run_dir), str(inside(root, folder)), "--json")
    job = studio.jobs.submit_command("triage", command, output=triage_file(root, body.run, folder),
                                     about=f"{body.run}/{folder}")  # fmt: skip
    return job.to_dict()


@router.post("/api/inbox/file", response_model=Moved)
def file(studio: StudioHere, body: FileBody):
    """File one picture of an inbox under ``label`` in the data folder ``into`` (undo: ``/api/undo``)."""
    from imgclf.curation.triage import accept

    root = studio.root
    picture = inside(root, body.path)
    if picture.parent.parent != root or picture.parent.name not in dict(inbox_folders(root)):
        raise ImgclfError(f"{body.path!r} is not a picture of an inbox folder. Nothing was moved.")
    _classes(root, body.into)
    moved = accept([{"path": str(picture), "label": body.label}], inside(root, body.into), folder=picture.parent)
    return {"moved": moved}
