"""The studio's FastAPI app: server-rendered pages (Jinja2) with a little plain JavaScript (``/static/studio.js``,
served from the package), no asset from a CDN, no OpenAPI pages.

The pages and their endpoints live in :mod:`imgclf.studio.pages`, one module an area (data, jobs, runs, try,
inbox); this module puts them together behind the guards: the ``Host`` check and body limit of ``imgclf serve``,
and :class:`~imgclf.deploy.serve.guards.WriteGuard` (same-origin writes only; a token off loopback). Every path a
request names goes through :func:`imgclf.studio.project.inside`; every refusal is one JSON line, ``{"error": …}``.
"""

import contextlib
import os
from importlib import resources
from pathlib import Path

from imgclf.deploy.serve.guards import BodyLimit, ContentPolicy, HostCheck, WriteGuard, allowed_hosts
from imgclf.errors import ImgclfError

#: Largest request body the studio takes, bytes: a few dropped photos at once.
MAX_BODY = 64 * 1024 * 1024


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
        from fastapi import FastAPI
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import JSONResponse, Response
        from starlette.exceptions import HTTPException as StarletteHTTPException
    except ImportError:
        raise ImgclfError("the studio needs FastAPI: install the serve extra, pip install 'imgclf[serve]'.") from None
    from imgclf.studio.context import Studio
    from imgclf.studio.jobs import Jobs
    from imgclf.studio.pages import data, inbox, jobs, runs, try_it

    env = jinja2.Environment(loader=jinja2.PackageLoader("imgclf.studio", "templates"), autoescape=True)
    studio = Studio(root, env, Jobs(root), token)

    @contextlib.asynccontextmanager
    async def lifespan(_):
        yield
        studio.jobs.shutdown()  # a training still running is interrupted: resumable

    app = FastAPI(title="imgclf studio", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.studio = studio
    app.add_middleware(ContentPolicy)  # scripts from /static/ only: no inline script runs
    app.add_middleware(WriteGuard, token=token)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY)
    app.add_middleware(HostCheck, hosts=allowed_hosts(host))

    @app.exception_handler(ImgclfError)
    async def refused(request, exc: ImgclfError):
        return JSONResponse({"error": str(exc)}, status_code=getattr(exc, "status", 400))

    @app.exception_handler(StarletteHTTPException)
    async def not_there(request, exc: StarletteHTTPException):  # an unknown address: the same one-line answer
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def malformed(request, exc: RequestValidationError):  # a list or text body, a field of the wrong type
        first = (exc.errors() or [{}])[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request body"
        return JSONResponse({"error": f"{where}: {first.get('msg', 'malformed request')}"}, status_code=422)

    @app.exception_handler(OSError)
    async def disk(request, exc: OSError):  # a read-only project, a full disk: one line, not a bare 500
        name = f" ({exc.filename!r})" if getattr(exc, "filename", None) else ""
        return JSONResponse({"error": f"the project cannot be changed: {exc.strerror or exc}{name}. Nothing else "
                                      "was changed."}, status_code=409)  # fmt: skip

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    static = resources.files("imgclf.studio").joinpath("static")
    scripts = {f.name: f.read_bytes() for f in static.iterdir() if f.name.endswith(".js")}

    @app.get("/static/{name}")
    def static_script(name: str):
        if name not in scripts:
            raise StarletteHTTPException(404, f"no script {name!r} here (expected one of {sorted(scripts)})")
        return Response(scripts[name], media_type="text/javascript", headers={"Cache-Control": "no-cache"})

    for area in (runs, data, jobs, try_it, inbox):
        app.include_router(area.router(studio))
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
