"""``imgclf serve``: a local web app and JSON API over a trained run (FastAPI + uvicorn).

- ``POST /predict`` — multipart, one or more images in the field ``file`` → ``{"predictions": [{"filename",
  "label", "probabilities": {class: p}, "ood_score", "unknown"}], "model", "ms"}`` (the last two when the run has
  an out-of-distribution detector; ``unknown`` means unlike every training image);
- ``POST /explain`` — one ``file`` → PNG: the image with its Grad-CAM heat-map;
- ``GET /model`` — classes, input size, metrics, training date; ``GET /health``; the OpenAPI description at
  ``/openapi.json`` (no ``/docs`` or ``/redoc`` pages: they load their scripts from a CDN, and nothing here does);
- ``GET /`` — one page (no external resources; its script is ``/static/serve.js``, under a ``script-src 'self'``
  Content-Security-Policy) to drop images on and see labels, bars and heat-maps.

Uploads are untrusted: the body is counted as it arrives and refused past ``max_upload_bytes`` (413); content
is sniffed by decoding it (never by its name); decompression bombs, non-images and truncated files get a 400
with a JSON ``{"error": ...}`` that says what was wrong (every error answer has that form); the pixels one
request may declare are bounded (:data:`MAX_REQUEST_PIXELS`, 413), and images are decoded off the event loop, so
``/health`` answers while a large request decodes; no endpoint reads a path the client names. Only requests whose
``Host`` is a name the server was bound to are answered (400 otherwise: a web page elsewhere cannot reach the API
through DNS rebinding). Inference runs off the event loop, and requests that arrive together are micro-batched
(:class:`~imgclf.deploy.serve.batching.MicroBatcher`). A connection that has not sent its request's headers within
:data:`~imgclf.deploy.serve.guards.HEADER_TIMEOUT_S` is
closed (:func:`serve_run`).
"""

import functools
import time
from pathlib import Path

from imgclf.deploy.serve.guards import (
    LOOPBACK_NAMES,
    BodyLimit,
    ContentPolicy,
    HostCheck,
    allowed_hosts,
    check_address,
    header_timeout_protocol,
)
from imgclf.deploy.serve.uploads import MAX_REQUEST_PIXELS
from imgclf.errors import ImgclfError
from imgclf.predict.predictor import Predictor

#: Largest request body accepted, in bytes (the whole multipart body: all files of one request).
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: How long the batcher waits for more requests before running a batch, in milliseconds.
DEFAULT_BATCH_WINDOW_MS = 5.0


def check_serve_options(max_upload_bytes, batch_window_ms, max_request_pixels=MAX_REQUEST_PIXELS) -> None:
    """Refuse limits that would make the server useless or unbounded.

    Raises:
        ImgclfError: ``max_upload_bytes`` or ``max_request_pixels`` not a positive number, ``batch_window_ms``
            negative or above 10 s.
    """
    for label, value in (("max_upload_bytes", max_upload_bytes), ("max_request_pixels", max_request_pixels)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ImgclfError(f"{label} must be a positive number. Received: {value!r}")
    ok = not isinstance(batch_window_ms, bool) and isinstance(batch_window_ms, (int, float))
    if not ok or not 0 <= batch_window_ms <= 10_000:
        raise ImgclfError(
            f"batch_window_ms must be a number of milliseconds in [0, 10000]. Received: {batch_window_ms!r}"
        )


def create_app(predictor: Predictor, *, name: str = "model", info: dict | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS, hosts=LOOPBACK_NAMES,
               max_request_pixels: int = MAX_REQUEST_PIXELS, explainer=None):  # fmt: skip
    """The FastAPI application serving ``predictor`` (its endpoints: :mod:`imgclf.deploy.serve.routes`).

    Args:
        predictor: the model and how to read images for it.
        name: the model's name in answers.
        info: what ``GET /model`` adds (metrics, training date, ...).
        max_upload_bytes: largest request body accepted (413 beyond it), counted while it arrives.
        batch_window_ms: how long concurrent requests are gathered into one forward pass.
        hosts: the ``Host`` header values answered (:func:`allowed_hosts`; ``["*"]`` for any).
        max_request_pixels: most pixels the images of one request may declare (413 beyond).
        explainer: when ``predictor`` is not a Keras model (a run's TensorFlow-free copy), a function of no argument
            giving the run's Keras :class:`~imgclf.predict.predictor.Predictor`, called once, on the first Grad-CAM
            request (TensorFlow is imported then, not at start-up).

    Raises:
        ImgclfError: the ``serve`` extra (FastAPI, python-multipart) is not installed, or a limit out of range
            (:func:`check_serve_options`).
    """
    check_serve_options(max_upload_bytes, batch_window_ms, max_request_pixels)
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI's form parser)
    except ImportError:
        raise ImgclfError("serving needs FastAPI: install the serve extra, pip install 'imgclf[serve]'.") from None
    import html

    from fastapi import FastAPI
    from fastapi.staticfiles import StaticFiles

    from imgclf.deploy.serve import routes
    from imgclf.deploy.serve.errors import answer_in_one_line

    batcher = routes.batcher_for(predictor, batch_window_ms)
    described = html.escape(f"Image classifier {name!r}: {', '.join(predictor.classes)}")  # rendered as HTML
    app = FastAPI(title="imgclf", description=described, lifespan=batcher.lifespan, docs_url=None, redoc_url=None)
    app.state.served = routes.Served(predictor, name, batcher, max_request_pixels, dict(info or {}), explainer)
    app.add_middleware(ContentPolicy)  # the page runs its script from /static/ only
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(HostCheck, hosts=list(hosts))
    answer_in_one_line(app, _malformed)
    app.include_router(routes.router)
    app.mount("/static", StaticFiles(packages=[("imgclf.deploy.serve", "static")]), name="static")
    return app


def _malformed(errors: list[dict]) -> str:
    missing = [str(e["loc"][-1]) for e in errors if e.get("type") == "missing"]
    what = f"missing the form field {missing[0]!r}" if missing else "not understood"
    return f"the request is {what}: send images as multipart/form-data in the field 'file'."


def serve_run(run: str | Path, host: str = "127.0.0.1", port: int = 8000, announce=None, engine: str = "auto",
              **options) -> None:  # fmt: skip
    """Serve a run folder with uvicorn until interrupted (see :func:`create_app` for ``options``), answering only
    the host names of ``host`` (:func:`allowed_hosts`), with a header timeout (:func:`header_timeout_protocol`).

    ``announce``, if given, is called with no argument once the model has loaded, just before serving starts.

    Raises:
        ImgclfError: a bad or busy address (:func:`check_address`), a limit out of range, not a run folder, a model
            refused by Keras' safe mode, or the serve extra missing.
    """
    try:
        import uvicorn
    except ImportError:
        raise ImgclfError("serving needs uvicorn: install the serve extra, pip install 'imgclf[serve]'.") from None
    from imgclf import _io
    from imgclf.runs import record as runfiles

    check_address(host, port)
    check_serve_options(options.get("max_upload_bytes", DEFAULT_MAX_UPLOAD_BYTES),
                        options.get("batch_window_ms", DEFAULT_BATCH_WINDOW_MS))  # fmt: skip
    from imgclf.deploy.fast import choose_engine

    model = choose_engine(run, engine)[0]  # (the command line says why a copy was passed over)
    explainer = None
    if model is not None:  # the run's TensorFlow-free copy answers; Keras only for Grad-CAM, when first asked
        from imgclf.deploy.runtime import open_predictor

        predictor, explainer = open_predictor(model), functools.partial(Predictor.from_run, run)
    else:
        predictor = Predictor.from_run(run)
    metrics_path = Path(run) / runfiles.METRICS_FILE
    metrics = _io.read_json(metrics_path) if metrics_path.is_file() else {}
    trained = time.localtime((Path(run) / runfiles.MODEL_FILE).stat().st_mtime)
    info = {"metrics": {k: metrics.get(k) for k in ("accuracy", "loss", "n") if k in metrics},
            "trained": time.strftime("%Y-%m-%d %H:%M", trained)}  # fmt: skip
    app = create_app(predictor, name=Path(run).resolve().name, info=info, hosts=allowed_hosts(host),
                     explainer=explainer, **options)  # fmt: skip
    if announce is not None:
        announce()
    uvicorn.run(app, host=host, port=port, log_level="warning", http=header_timeout_protocol())
