"""The home page (data folders and the runs table) and what a run offers: its report, a comparison of the runs
ticked (``imgclf compare``'s function), an export to a chosen format (``imgclf export``'s, its parity check
included) downloaded as a zip."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

from pathlib import Path
from urllib.parse import quote

from imgclf.studio.context import Studio
from imgclf.studio.project import data_folders, inbox_folders, inside


def router(studio: Studio):
    import asyncio

    from fastapi import APIRouter, Request
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    from imgclf.runs.listing import list_runs

    api = APIRouter()
    root = studio.root

    @api.get("/", response_class=HTMLResponse)
    async def home(request: Request):
        runs = list_runs(root / "runs") if (root / "runs").is_dir() else []
        return studio.page("home.html.j2", request, folders=data_folders(root), runs=runs,
                           inboxes=inbox_folders(root))  # fmt: skip

    @api.get("/runs/{name}/report", response_class=HTMLResponse)
    async def report(name: str):
        page_file = inside(root, f"runs/{name}/report.html")
        if not page_file.is_file():
            return JSONResponse({"error": f"run {name!r} has no report: imgclf report runs/{name}"}, status_code=404)
        return HTMLResponse(page_file.read_text(encoding="utf-8"))

    @api.post("/api/compare")
    async def compare(body: dict):
        from imgclf.report.compare import compare_runs

        runs = [inside(root, f"runs/{n}") for n in body.get("runs") or []]
        written = await asyncio.to_thread(compare_runs, runs)
        return {"page": "/file?path=" + quote(written.relative_to(root).as_posix())}

    @api.get("/file", response_class=HTMLResponse)
    async def file(path: str):
        """A page imgclf wrote under ``runs/`` (a comparison): HTML with every picture embedded."""
        found = inside(root, path)
        runs_dir = (root / "runs").resolve()
        if runs_dir not in found.parents or found.suffix != ".html" or not found.is_file():
            return JSONResponse({"error": f"no page at {path!r}"}, status_code=404)
        return HTMLResponse(found.read_text(encoding="utf-8"))

    @api.post("/api/export")
    async def export(body: dict):
        """Export a run (``imgclf export``'s function, its parity check included); answers the download's URL."""
        from imgclf.deploy.export import export_run

        run = inside(root, f"runs/{body.get('run', '')}")
        result = await asyncio.to_thread(export_run, run, str(body.get("format", "")), max_images=64)
        folder = Path(result["path"]).parent.resolve().relative_to(root)
        return {"parity": result["parity"], "bytes": result["bytes"],
                "download": "/download?path=" + quote(folder.as_posix())}  # fmt: skip

    @api.get("/download")
    async def download(path: str):
        """An export folder of a run (``runs/RUN/export/FORMAT``) as one zip file."""
        import io
        import zipfile

        folder = inside(root, path)
        if folder.parent.name != "export" or not folder.is_dir() or (root / "runs").resolve() not in folder.parents:
            return JSONResponse({"error": f"no export at {path!r}"}, status_code=404)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(folder.rglob("*")):
                if file.is_file() and not file.is_symlink():
                    archive.write(file, f"{folder.parent.parent.name}-{folder.name}/{file.relative_to(folder)}")
        name = f"{folder.parent.parent.name}-{folder.name}.zip"
        return Response(buffer.getvalue(), media_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip

    return api
