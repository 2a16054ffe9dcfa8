"""``imgclf serve``: a local web app and JSON API over a trained run (FastAPI + uvicorn).

- ``POST /predict`` — multipart, one or more images in the field ``file`` → ``{"predictions": [{"filename",
  "label", "probabilities": {class: p}, "ood_score", "unknown"}], "model", "ms"}`` (the last two when the run has
  an out-of-distribution detector; ``unknown`` means unlike every training image);
- ``POST /explain`` — one ``file`` → PNG: the image with its Grad-CAM heat-map;
- ``GET /model`` — classes, input size, metrics, training date; ``GET /health``; the OpenAPI description at
  ``/openapi.json`` (no ``/docs`` or ``/redoc`` pages: they load their scripts from a CDN, and nothing here does);
- ``GET /`` — one page (no external resources) to drop images on and see labels, bars and heat-maps.

Uploads are untrusted: the body is counted as it arrives and refused past ``max_upload_bytes`` (413); content
is sniffed by decoding it (never by its name); decompression bombs, non-images and truncated files get a 400
with a JSON ``{"error": ...}`` that says what was wrong (every error answer has that form); the pixels one
request may declare are bounded (:data:`MAX_REQUEST_PIXELS`, 413), and images are decoded off the event loop, so
``/health`` answers while a large request decodes; no endpoint reads a path the client names. Only requests whose
``Host`` is a name the server was bound to are answered (400 otherwise: a web page elsewhere cannot reach the API
through DNS rebinding). Inference runs off the event loop, and requests that arrive together are micro-batched
(:class:`MicroBatcher`). A connection that has not sent its request's headers within
:data:`~imgclf.deploy.serve.guards.HEADER_TIMEOUT_S` is
closed (:func:`serve_run`).
"""

import asyncio
import functools
import io
import sys
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from imgclf.deploy.serve.batching import MicroBatcher
from imgclf.deploy.serve.guards import (
    LOOPBACK_NAMES,
    BodyLimit,
    HostCheck,
    allowed_hosts,
    check_address,
    header_timeout_protocol,
)
from imgclf.errors import ImgclfError
from imgclf.predict.predictor import Predictor

#: Largest request body accepted, in bytes (the whole multipart body: all files of one request).
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: How long the batcher waits for more requests before running a batch, in milliseconds.
DEFAULT_BATCH_WINDOW_MS = 5.0
#: Most pixels (width x height, summed over its files) one request may declare: 110 PNGs of 8,000 x 8,000 pixels
#: fit in 9.5 MB and took 48 s to decode. 64 M pixels is ~250 phone photos at a 0.25-megapixel preview size, or
#: five 12-megapixel photos.
MAX_REQUEST_PIXELS = 64_000_000


class UploadError(ImgclfError):
    """A client's upload that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


def decode_upload(data: bytes, name: str, predictor: Predictor) -> np.ndarray:
    """Decode one uploaded image as training reads files (:func:`imgclf.data.images.load_image`).

    Returns:
        uint8 ``(height, width, channels)`` at the model's input size.

    Raises:
        UploadError: empty, not an image, truncated or corrupt, or a decompression bomb (Pillow's limit).
    """
    from PIL import Image

    if not data:
        raise UploadError(f"file {name!r} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return predictor.image.load(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(f"file {name!r} is too large an image to decode safely: {exc}") from None
    except Exception as exc:  # noqa: BLE001  (any decoder failure is the client's file, not a server error)
        kind = "not an image" if "cannot identify" in str(exc) else "a truncated or corrupt image"
        raise UploadError(f"file {name!r} is {kind} ({type(exc).__name__}: {exc}).") from None


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


def decode_uploads(uploads: list[tuple[str, bytes]], predictor: Predictor,
                   max_pixels: int = MAX_REQUEST_PIXELS) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """Decode one request's ``(name, bytes)`` uploads (:func:`decode_upload`) once the pixels they declare, summed,
    are within ``max_pixels`` (their headers are read first; nothing is decoded otherwise).

    Returns:
        ``(names, images)``, images uint8 ``(n, height, width, channels)`` at the model's input size.

    Raises:
        UploadError: 413 past ``max_pixels``; 400 for a file :func:`decode_upload` refuses.
    """
    from PIL import Image

    declared = 0
    for name, data in uploads:
        try:
            with Image.open(io.BytesIO(data)) as image:
                declared += image.width * image.height
        except Exception:  # noqa: BLE001  (not an image: decode_upload names what is wrong below)
            continue
        if declared > max_pixels:
            raise UploadError(
                f"the images of one request may hold at most {max_pixels:,} pixels; these declare more "
                f"({declared:,} by file {name!r}). Send fewer or smaller images per request.",
                status=413,
            )
    return [n for n, _ in uploads], np.stack([decode_upload(data, name, predictor) for name, data in uploads])


def create_app(predictor: Predictor, *, name: str = "model", info: dict | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS, hosts=LOOPBACK_NAMES,
               max_request_pixels: int = MAX_REQUEST_PIXELS, explainer=None):  # fmt: skip
    """The FastAPI application serving ``predictor``.

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
    keras_predictor = functools.cache(explainer) if explainer is not None else None
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI's form parser)
    except ImportError:
        raise ImgclfError("serving needs FastAPI: install the serve extra, pip install 'imgclf[serve]'.") from None
    import html

    from fastapi import FastAPI, File, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response
    from starlette.exceptions import HTTPException

    def infer(x: np.ndarray) -> np.ndarray:  # probabilities, then the OOD score as a last column if there is one
        result = predictor.predict(x)
        proba, scores = result.probabilities, result.ood_score
        return proba if scores is None else np.concatenate([proba, scores[:, None]], axis=1)

    batcher = MicroBatcher(infer, window_ms=batch_window_ms)
    described = html.escape(f"Image classifier {name!r}: {', '.join(predictor.classes)}")  # rendered as HTML
    app = FastAPI(title="imgclf", description=described, lifespan=batcher.lifespan, docs_url=None, redoc_url=None)
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)
    app.add_middleware(HostCheck, hosts=list(hosts))

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException):  # 404, 405, ...: the same {"error"} form
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError):
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        missing = [str(e["loc"][-1]) for e in exc.errors() if e.get("type") == "missing"]
        what = f"missing the form field {missing[0]!r}" if missing else "not understood"
        return JSONResponse(
            {"error": f"the request is {what}: send images as multipart/form-data in the field 'file'."},
            status_code=422,
        )

    async def read_images(files: list[UploadFile]) -> tuple[list[str], np.ndarray]:
        uploads = [(f.filename or "upload", await f.read()) for f in files]
        return await asyncio.to_thread(decode_uploads, uploads, predictor, max_request_pixels)

    @app.get("/health")
    async def health():
        return {"status": "ok"}

    @app.get("/model")
    async def model_info():
        h, w = predictor.target_size
        return {"name": name, "classes": list(predictor.classes), "class_mode": predictor.class_mode,
                "input": {"height": h, "width": w, "color_mode": predictor.color_mode, "dtype": "uint8"},
                **(info or {})}  # fmt: skip

    @app.post("/predict")
    async def predict(file: list[UploadFile] = File(...)):
        start = time.perf_counter()
        names, images = await read_images(file)
        rows = await batcher.submit(images)
        k = len(predictor.classes)
        predictions = []
        for n, row in zip(names, rows):
            p = row[:k]
            answer = {"filename": n, "label": predictor.classes[int(p.argmax())],
                      "probabilities": {c: round(float(v), 6) for c, v in zip(predictor.classes, p)}}  # fmt: skip
            if predictor.ood is not None:
                answer["ood_score"] = round(float(row[k]), 6)
                answer["unknown"] = bool(predictor.ood.unknown(row[k:])[0])
            predictions.append(answer)
        return {"predictions": predictions, "model": name, "ms": round(1000 * (time.perf_counter() - start), 2)}

    @app.post("/explain", response_class=Response, responses={200: {"content": {"image/png": {}}}})
    async def explain(file: list[UploadFile] = File(...)):
        keras = sys.modules.get("keras")  # a Keras model exists only once Keras is imported
        explaining = predictor
        if (keras is None or not isinstance(predictor.model, keras.Model)) and explainer is not None:
            explaining = await asyncio.to_thread(keras_predictor)
        keras = sys.modules.get("keras")
        if keras is None or not isinstance(explaining.model, keras.Model):
            raise UploadError("Grad-CAM needs a Keras model: serve a run folder, not an export.", status=501)
        if len(file) != 1:
            raise UploadError(f"explain takes one image in the field 'file'. Received: {len(file)}")
        _, images = await read_images(file)
        png = await asyncio.to_thread(gradcam_png, explaining, images[0])
        return Response(png, media_type="image/png")

    @app.get("/", response_class=HTMLResponse)
    async def page():
        template = (
            resources.files("imgclf.deploy.serve").joinpath("templates/index.html.j2").read_text(encoding="utf-8")
        )
        import jinja2

        env = jinja2.Environment(autoescape=True)
        return env.from_string(template).render(name=name, classes=list(predictor.classes))

    return app


def gradcam_png(predictor: Predictor, image: np.ndarray) -> bytes:
    """PNG bytes of ``image`` (uint8 ``(height, width, channels)`` at the model's input size) with the Grad-CAM
    heat-map of the predicted class over it (:func:`imgclf.explain.gradcam`; Selvaraju et al. 2017). Needs a Keras
    model in ``predictor``."""
    from PIL import Image

    from imgclf.explain import gradcam
    from imgclf.plotting import heatmap_overlay

    maps, _ = gradcam(predictor.model, image[None])
    out = io.BytesIO()
    Image.fromarray(heatmap_overlay(image, maps[0])).save(out, format="PNG")
    return out.getvalue()


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
