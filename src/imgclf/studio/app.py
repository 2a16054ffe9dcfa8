"""The studio's FastAPI app: server-rendered pages (Jinja2) with a little plain JavaScript (``/static/studio.js``,
served from the package), no asset from a CDN, no OpenAPI pages.

The pages and their endpoints live in :mod:`imgclf.studio.pages`, one module an area (data, jobs, runs, try,
inbox); this module puts them together behind the guards: the ``Host`` check and body limit of ``imgclf serve``,
and :class:`~imgclf.deploy.serve.guards.WriteGuard` (same-origin writes only; a token off loopback). Every path a
request names goes through :func:`imgclf.studio.project.inside`; every refusal is one JSON line, ``{"error": …}``.
"""

import contextlib
import os
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
        from fastapi.responses import JSONResponse
        from fastapi.staticfiles import StaticFiles
    except ImportError:
        raise ImgclfError("the studio needs FastAPI: install the serve extra, pip install 'imgclf[serve]'.") from None
    from imgclf.deploy.serve.errors import answer_in_one_line
    from imgclf.deploy.serve.schemas import Health
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
    answer_in_one_line(app, _malformed)

    async def disk(request, exc: OSError):  # a read-only project, a full disk: one line, not a bare 500
        name = f" ({exc.filename!r})" if getattr(exc, "filename", None) else ""
        return JSONResponse({"error": f"the project cannot be changed: {exc.strerror or exc}{name}. Nothing else "
                                      "was changed."}, status_code=409)  # fmt: skip

    app.add_exception_handler(OSError, disk)
    app.add_api_route("/health", Health, methods=["GET"], response_model=Health)
    app.mount("/static", StaticFiles(packages=[("imgclf.studio", "static")]), name="static")
    for area in (runs, data, jobs, try_it, inbox):
        app.include_router(area.router)
    return app


def _malformed(errors: list[dict]) -> str:
    """A list or text body, a field of the wrong type, one no endpoint takes: ``where: what``."""
    first = (errors or [{}])[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "the request body"
    if first.get("type") == "extra_forbidden":
        return f"{where}: not a field this request takes (a setting the studio does not set, or a misspelt name)"
    return f"{where}: {first.get('msg', 'malformed request')}"


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
