"""The home page (data folders and the runs table) and what a run offers: its report, a comparison of the runs
ticked (``imgclf compare``'s function), an export to a chosen format (``imgclf export``'s, its parity check
included) downloaded as a zip."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

import io
import zipfile
from pathlib import Path
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from imgclf.runs.listing import list_runs
from imgclf.studio.context import StudioHere
from imgclf.studio.project import data_folders, inbox_folders, inside
from imgclf.studio.schemas import CompareBody, ExportBody, Exported, Page

router = APIRouter()


@router.get("/", response_class=HTMLResponse)
def home(request: Request, studio: StudioHere):
    root = studio.root
    runs = list_runs(root / "runs") if (root / "runs").is_dir() else []
    return studio.page("home.html.j2", request, folders=data_folders(root), runs=runs, inboxes=inbox_folders(root))


@router.get("/runs/{name}/report", response_class=HTMLResponse)
def report(studio: StudioHere, name: str):
    page_file = inside(studio.root, f"runs/{name}/report.html")
    if not page_file.is_file():
        return JSONResponse({"error": f"run {name!r} has no report: imgclf report runs/{name}"}, status_code=404)
    return HTMLResponse(page_file.read_text(encoding="utf-8"))


@router.post("/api/compare", response_model=Page)
def compare(studio: StudioHere, body: CompareBody):
    from imgclf.report.compare import compare_runs

    written = compare_runs([inside(studio.root, f"runs/{n}") for n in body.runs])
    return {"page": "/file?path=" + quote(written.relative_to(studio.root).as_posix())}


@router.get("/file", response_class=HTMLResponse)
def file(studio: StudioHere, path: str):
    """A page imgclf wrote under ``runs/`` (a comparison): HTML with every picture embedded."""
    found = inside(studio.root, path)
    if (studio.root / "runs").resolve() not in found.parents or found.suffix != ".html" or not found.is_file():
        return JSONResponse({"error": f"no page at {path!r}"}, status_code=404)
    return HTMLResponse(found.read_text(encoding="utf-8"))


@router.post("/api/export", response_model=Exported)
def export(studio: StudioHere, body: ExportBody):
    """Export a run (``imgclf export``'s function, its parity check included); answers the download's URL."""
    from imgclf.deploy.export import export_run

    result = export_run(inside(studio.root, f"runs/{body.run}"), body.format, max_images=64)
    folder = Path(result["path"]).parent.resolve().relative_to(studio.root)
    return {"parity": result["parity"], "bytes": result["bytes"],
            "download": "/download?path=" + quote(folder.as_posix())}  # fmt: skip


@router.get("/download")
def download(studio: StudioHere, path: str):
    """An export folder of a run (``runs/RUN/export/FORMAT``) as one zip file."""
    folder = inside(studio.root, path)
    runs = (studio.root / "runs").resolve()
    if folder.parent.name != "export" or not folder.is_dir() or runs not in folder.parents:
        return JSONResponse({"error": f"no export at {path!r}"}, status_code=404)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for part in sorted(folder.rglob("*")):
            if part.is_file() and not part.is_symlink():
                archive.write(part, f"{folder.parent.parent.name}-{folder.name}/{part.relative_to(folder)}")
    name = f"{folder.parent.parent.name}-{folder.name}.zip"
    return Response(buffer.getvalue(), media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip
