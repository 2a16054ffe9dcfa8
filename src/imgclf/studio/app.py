"""The studio's FastAPI app: server-rendered pages (Jinja2) with a little plain JavaScript, no asset from a CDN.

Pages: ``/`` (the project's data folders and runs: open a report, compare the selected runs, try one),
``/data/NAME`` (classes with their counts, a paginated grid of thumbnails, select images and move them to another
class, undo), ``/try/RUN`` (drop a picture: label, probabilities, "unknown", from the run's TensorFlow-free copy when
it has one). Reads: ``/thumb?path=`` (cached JPEG),
``/image?path=``. Writes (JSON): ``POST /api/relabel`` and ``POST /api/undo``, through
:func:`imgclf.curation.relabel.relabel` and :func:`~imgclf.curation.relabel.undo` — the CLI's own manifest and undo.
Guards: the ``Host`` check and body limit of ``imgclf serve``, and :class:`~imgclf.deploy.serve.guards.WriteGuard`
(same-origin writes only; a token off loopback). Every path goes through :func:`imgclf.studio.project.inside`.
"""

import contextlib
import functools
import os
from pathlib import Path
from urllib.parse import quote

from imgclf.deploy.serve.guards import TOKEN_COOKIE, BodyLimit, HostCheck, WriteGuard, allowed_hosts
from imgclf.errors import ImgclfError
from imgclf.studio.project import class_images, data_folders, inside, read_data_folder
from imgclf.studio.thumbs import MAX_AGE, thumbnail

#: Largest request body the studio takes (JSON lists of paths), bytes.
MAX_BODY = 1024 * 1024
PER_PAGE = 60


def create_studio(project: str | os.PathLike, host: str = "127.0.0.1", token: str | None = None):
    """The studio app for the folder ``project``.

    Args:
        host: the address it is served on (which ``Host`` names it answers: :func:`allowed_hosts`).
        token: required of every request when given (a server bound off loopback).

    Raises:
        ImgclfError: ``project`` is not a folder, or the serve extra (FastAPI) is missing.
    """
    root = Path(project).resolve()
    if not root.is_dir():
        raise ImgclfError(f"PROJECT must be a folder. Received: {str(project)!r}")
    try:
        import jinja2
        from fastapi import FastAPI, Request, UploadFile
        from fastapi.responses import HTMLResponse, JSONResponse, Response
    except ImportError:
        raise ImgclfError("the studio needs FastAPI: install the serve extra, pip install 'imgclf[serve]'.") from None
    from imgclf.runs.listing import list_runs
    from imgclf.studio.jobs import FORM_SETTINGS, Trainer

    env = jinja2.Environment(loader=jinja2.PackageLoader("imgclf.studio", "templates"), autoescape=True)
    trainer = Trainer(root)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        yield
        trainer.shutdown()  # a training still running is interrupted: resumable

    app = FastAPI(title="imgclf studio", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.trainer = trainer
    app.add_middleware(WriteGuard, token=token)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    app.add_middleware(HostCheck, hosts=allowed_hosts(host))

    @app.exception_handler(ImgclfError)
    async def refused(request, exc: ImgclfError):
        return JSONResponse({"error": str(exc)}, status_code=400)

    def page(template: str, request, **context):
        answer = HTMLResponse(env.get_template(template).render(project=root.name, **context))
        if token is not None and request.query_params.get("token") == token:
            answer.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="strict")
        return answer

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request):
        runs = list_runs(root / "runs") if (root / "runs").is_dir() else []
        return page("home.html.j2", request, folders=data_folders(root), runs=runs)

    @app.get("/data/{name}", response_class=HTMLResponse)
    async def data(request: Request, name: str, split: str = "", cls: str = "", page_number: int = 1):
        folder = read_data_folder(root, name)
        if folder is None:
            raise ImgclfError(f"{name!r} is not a data folder of this project.")
        split = split if split in folder.splits else next(iter(folder.splits))
        classes = folder.splits[split]
        cls = cls if cls in classes else next(iter(classes))
        paths, total = class_images(root, name, split, cls, page_number, PER_PAGE)
        pages = max(1, -(-total // PER_PAGE))
        return page("data.html.j2", request, folder=folder, split=split, cls=cls, paths=paths, total=total,
                    page_number=page_number, pages=pages)  # fmt: skip

    @app.get("/thumb")
    async def thumb(path: str):
        try:
            body = thumbnail(root, path)
        except OSError:
            return JSONResponse({"error": f"no image at {path!r}"}, status_code=404)
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": f"private, max-age={MAX_AGE}"})

    @app.get("/image")
    async def image(path: str):
        from fastapi.responses import FileResponse

        from imgclf.data.files import is_image_file

        file = inside(root, path)
        if not file.is_file() or not is_image_file(file.name):
            return JSONResponse({"error": f"no image at {path!r}"}, status_code=404)
        return FileResponse(file)

    @app.post("/api/relabel")
    async def relabel(body: dict):
        from imgclf.curation.relabel import relabel as move

        data_root = inside(root, str(body.get("data", "")))
        files = [inside(root, str(f)) for f in body.get("files") or []]
        moves = move(data_root, files, str(body.get("to", "")))
        return {"moved": moves}

    @app.get("/runs/{name}/report", response_class=HTMLResponse)
    async def report(name: str):
        page_file = inside(root, f"runs/{name}/report.html")
        if not page_file.is_file():
            return JSONResponse({"error": f"run {name!r} has no report: imgclf report runs/{name}"}, status_code=404)
        return HTMLResponse(page_file.read_text(encoding="utf-8"))

    @app.post("/api/compare")
    async def compare(body: dict):
        import asyncio

        from imgclf.report.compare import compare_runs

        runs = [inside(root, f"runs/{n}") for n in body.get("runs") or []]
        written = await asyncio.to_thread(compare_runs, runs)
        return {"page": "/file?path=" + quote(written.relative_to(root).as_posix())}

    @app.get("/file", response_class=HTMLResponse)
    async def file(path: str):
        """A page imgclf wrote under ``runs/`` (a comparison): HTML with every picture embedded."""
        found = inside(root, path)
        runs_dir = (root / "runs").resolve()
        if runs_dir not in found.parents or found.suffix != ".html" or not found.is_file():
            return JSONResponse({"error": f"no page at {path!r}"}, status_code=404)
        return HTMLResponse(found.read_text(encoding="utf-8"))

    @app.post("/api/export")
    async def export(body: dict):
        """Export a run (``imgclf export``'s function, its parity check included); answers the download's URL."""
        import asyncio

        from imgclf.deploy.export import export_run

        run = inside(root, f"runs/{body.get('run', '')}")
        result = await asyncio.to_thread(export_run, run, str(body.get("format", "")), max_images=64)
        folder = Path(result["path"]).parent.resolve().relative_to(root)
        return {"parity": result["parity"], "bytes": result["bytes"],
                "download": "/download?path=" + quote(folder.as_posix())}  # fmt: skip

    @app.get("/download")
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

    @app.get("/try/{name}", response_class=HTMLResponse)
    async def try_page(request: Request, name: str):
        return page("try.html.j2", request, run=name)

    @app.post("/api/predict/{name}")
    async def predict(name: str, file: UploadFile):
        import asyncio

        from imgclf.deploy.runtime import ExportedModel
        from imgclf.deploy.serve.app import decode_upload

        predictor = await asyncio.to_thread(predictor_of, name)
        image = decode_upload(await file.read(), file.filename or "upload", predictor)
        result = await asyncio.to_thread(predictor.predict, image[None])
        row = result.probabilities[0]
        answer = {"label": str(predictor.classes[int(row.argmax())]),
                  "probabilities": {c: round(float(p), 6) for c, p in zip(predictor.classes, row)},
                  "engine": "fast copy" if isinstance(predictor.model, ExportedModel) else "keras"}  # fmt: skip
        if result.ood_score is not None:
            answer |= {"ood_score": round(float(result.ood_score[0]), 6), "unknown": bool(result.unknown[0])}
        return answer

    @functools.cache
    def predictor_of(name: str):
        """The run's predictor, made once: its TensorFlow-free copy when it passed its check, else Keras."""
        from imgclf.deploy.fast import choose_engine
        from imgclf.deploy.runtime import open_predictor

        run = inside(root, f"runs/{name}")
        model, _ = choose_engine(run)
        return open_predictor(model if model is not None else run)

    @app.get("/train", response_class=HTMLResponse)
    async def train_page(request: Request):
        from imgclf.recipes import list_recipes

        return page("train.html.j2", request, folders=data_folders(root), recipes=list_recipes())

    @app.post("/api/train")
    async def train(body: dict):
        return trainer.submit(body).to_dict()

    @app.get("/api/jobs/{job_id}")
    async def job(job_id: int):
        return trainer.get(job_id).to_dict()

    @app.post("/api/jobs/{job_id}/stop")
    async def stop(job_id: int):
        return trainer.stop(job_id).to_dict()

    @app.get("/api/jobs/{job_id}/events")
    async def events(job_id: int):
        """Server-sent events: the job (status, log, history) each time it changes, until it ends."""
        import asyncio
        import json

        from fastapi.responses import StreamingResponse

        watched = trainer.get(job_id)

        async def stream():
            last = None
            while True:
                state = json.dumps(watched.to_dict())
                if state != last:
                    yield f"data: {state}\n\n"
                    last = state
                if watched.status not in ("queued", "running"):
                    return
                await asyncio.sleep(0.5)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    async def job_page(request: Request, job_id: int):
        return page("job.html.j2", request, job=trainer.get(job_id).to_dict(), settings=FORM_SETTINGS)

    @app.post("/api/undo")
    async def undo(body: dict):
        from imgclf.curation.relabel import undo as put_back

        return {"undone": put_back(inside(root, str(body.get("data", ""))))}

    return app


def serve_studio(project: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, announce=None) -> None:
    """Serve the studio with uvicorn until interrupted; off loopback with a token, which ``announce`` (called with
    the address to open) shows.

    Raises:
        ImgclfError: a bad or busy address, not a folder, or the serve extra missing.
    """
    import secrets

    from imgclf.deploy.serve.guards import LOOPBACK_NAMES, check_address, header_timeout_protocol

    try:
        import uvicorn
    except ImportError:
        raise ImgclfError("the studio needs uvicorn: install the serve extra, pip install 'imgclf[serve]'.") from None
    check_address(host, port)
    loopback = host in LOOPBACK_NAMES or host.startswith("127.")
    token = None if loopback else secrets.token_urlsafe(16)
    app = create_studio(project, host, token)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    if announce is not None:
        announce(f"http://{shown}:{port}/" + (f"?token={token}" if token else ""))
    uvicorn.run(app, host=host, port=port, log_level="warning", http=header_timeout_protocol())
