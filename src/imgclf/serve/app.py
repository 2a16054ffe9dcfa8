"""``imgclf serve``: a local web app and JSON API over a trained run (FastAPI + uvicorn).

- ``POST /predict`` — multipart, one or more images in the field ``file`` → ``{"predictions": [{"filename",
  "label", "probabilities": {class: p}, "ood_score", "unknown"}], "model", "ms"}`` (the last two when the run has
  an out-of-distribution detector; ``unknown`` means unlike every training image);
- ``POST /explain`` — one ``file`` → PNG: the image with its Grad-CAM heat-map;
- ``GET /model`` — classes, input size, metrics, training date; ``GET /health``; OpenAPI docs at ``/docs``;
- ``GET /`` — one page (no external resources) to drop images on and see labels, bars and heat-maps.

Uploads are untrusted: the body is counted as it arrives and refused past ``max_upload_bytes`` (413); content
is sniffed by decoding it (never by its name); decompression bombs, non-images and truncated files get a 400
with a JSON ``{"error": ...}`` that says what was wrong; no endpoint reads a path the client names. Inference
runs off the event loop, and requests that arrive together are micro-batched (:class:`MicroBatcher`).
"""

import asyncio
import io
import time
import warnings
from importlib import resources
from pathlib import Path

import numpy as np

from imgclf.errors import ImgclfError
from imgclf.inference import Predictor
from imgclf.serve.batching import MicroBatcher

#: Largest request body accepted, in bytes (the whole multipart body: all files of one request).
DEFAULT_MAX_UPLOAD_BYTES = 10 * 1024 * 1024
#: How long the batcher waits for more requests before running a batch, in milliseconds.
DEFAULT_BATCH_WINDOW_MS = 5.0


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

    from imgclf.data.images import load_image

    if not data:
        raise UploadError(f"file {name!r} is empty (0 bytes).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return load_image(io.BytesIO(data), predictor.target_size, predictor.color_mode, predictor.interpolation)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UploadError(f"file {name!r} is too large an image to decode safely: {exc}") from None
    except Exception as exc:  # noqa: BLE001  (any decoder failure is the client's file, not a server error)
        kind = "not an image" if "cannot identify" in str(exc) else "a truncated or corrupt image"
        raise UploadError(f"file {name!r} is {kind} ({type(exc).__name__}: {exc}).") from None


def create_app(predictor: Predictor, *, name: str = "model", info: dict | None = None,
               max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES,
               batch_window_ms: float = DEFAULT_BATCH_WINDOW_MS):  # fmt: skip
    """The FastAPI application serving ``predictor``.

    Args:
        predictor: the model and how to read images for it.
        name: the model's name in answers.
        info: what ``GET /model`` adds (metrics, training date, ...).
        max_upload_bytes: largest request body accepted (413 beyond it), counted while it arrives.
        batch_window_ms: how long concurrent requests are gathered into one forward pass.

    Raises:
        ImgclfError: the ``serve`` extra (FastAPI, python-multipart) is not installed.
    """
    try:
        import fastapi  # noqa: F401
        import python_multipart  # noqa: F401  (FastAPI's form parser)
    except ImportError:
        raise ImgclfError("serving needs FastAPI: install the serve extra, pip install 'imgclf[serve]'.") from None
    from fastapi import FastAPI, File, Request, UploadFile
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse, Response

    def infer(x: np.ndarray) -> np.ndarray:  # probabilities, then the OOD score as a last column if there is one
        proba, scores, _ = predictor.predict_scores(x)
        return proba if scores is None else np.concatenate([proba, scores[:, None]], axis=1)

    batcher = MicroBatcher(infer, window_ms=batch_window_ms)
    app = FastAPI(title="imgclf", description=f"Image classifier {name!r}: {', '.join(predictor.classes)}",
                  lifespan=batcher.lifespan)  # fmt: skip
    app.add_middleware(BodyLimit, max_bytes=max_upload_bytes)

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
        names, images = [], []
        for f in files:
            data = await f.read()
            names.append(f.filename or "upload")
            images.append(decode_upload(data, names[-1], predictor))
        return names, np.stack(images)

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
    async def explain(file: UploadFile = File(...)):
        import keras

        if not isinstance(predictor.model, keras.Model):
            raise UploadError("Grad-CAM needs a Keras model: serve a run folder, not an export.", status=501)
        _, images = await read_images([file])
        png = await asyncio.to_thread(_gradcam_png, predictor, images[0])
        return Response(png, media_type="image/png")

    @app.get("/", response_class=HTMLResponse)
    async def page():
        template = resources.files("imgclf.serve").joinpath("templates/index.html.j2").read_text(encoding="utf-8")
        import jinja2

        env = jinja2.Environment(autoescape=True)
        return env.from_string(template).render(name=name, classes=list(predictor.classes))

    return app


def _gradcam_png(predictor: Predictor, image: np.ndarray) -> bytes:
    from PIL import Image

    from imgclf.explain import gradcam
    from imgclf.plotting import heatmap_overlay

    maps, _ = gradcam(predictor.model, image[None])
    out = io.BytesIO()
    Image.fromarray(heatmap_overlay(image, maps[0])).save(out, format="PNG")
    return out.getvalue()


class BodyLimit:
    """ASGI middleware: answer 413 as soon as a request body passes ``max_bytes`` (by its Content-Length, or by
    counting the chunks as they arrive), before anything parses or stores it."""

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(send)
        seen, refused = 0, False

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge  # stops the parser reading on; the answer is replaced below
            return message

        async def guarded(message):
            nonlocal refused
            if seen > self.max_bytes:  # whatever the app answers to the aborted parse, the client gets a 413
                if not refused:
                    refused = True
                    await self._refuse(send)
                return
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except _TooLarge:
            if not refused:
                await self._refuse(send)

    async def _refuse(self, send):
        import json

        body = json.dumps({"error": f"upload too large: the limit is {self.max_bytes:,} bytes."}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})  # fmt: skip


class _TooLarge(Exception):
    pass


def serve_run(run: str | Path, host: str = "127.0.0.1", port: int = 8000, announce=None, **options) -> None:
    """Serve a run folder with uvicorn until interrupted (see :func:`create_app` for ``options``).

    ``announce``, if given, is called with no argument once the model has loaded, just before serving starts.

    Raises:
        ImgclfError: not a run folder, a model refused by Keras' safe mode, or the serve extra missing.
    """
    try:
        import uvicorn
    except ImportError:
        raise ImgclfError("serving needs uvicorn: install the serve extra, pip install 'imgclf[serve]'.") from None
    from imgclf import _io
    from imgclf.training import run as runfiles

    predictor = Predictor.from_run(run)
    metrics_path = Path(run) / runfiles.METRICS_FILE
    metrics = _io.read_json(metrics_path) if metrics_path.is_file() else {}
    trained = time.localtime((Path(run) / runfiles.MODEL_FILE).stat().st_mtime)
    info = {"metrics": {k: metrics.get(k) for k in ("accuracy", "loss", "n") if k in metrics},
            "trained": time.strftime("%Y-%m-%d %H:%M", trained)}  # fmt: skip
    app = create_app(predictor, name=Path(run).resolve().name, info=info, **options)
    if announce is not None:
        announce()
    uvicorn.run(app, host=host, port=port, log_level="warning")
