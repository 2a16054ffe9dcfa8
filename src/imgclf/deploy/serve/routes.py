"""The endpoints of ``imgclf serve`` (a module-level router; :func:`imgclf.deploy.serve.app.create_app` puts it
together): ``GET /health``, ``GET /model``, ``POST /predict``, ``POST /explain`` and the page ``GET /``. What they
serve — the predictor, its micro-batcher, the limits — is :class:`Served`, the app's state, reached through
``Depends``."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations.

import asyncio
import functools
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from imgclf.deploy.serve.batching import MicroBatcher
from imgclf.deploy.serve.schemas import Health, ModelInfo, Predictions, Refusal
from imgclf.deploy.serve.uploads import UploadError, decode_uploads, gradcam_png
from imgclf.predict.answer import picture_answer
from imgclf.predict.predictor import Predictor

#: Digits every figure of an answer is rounded to.
DIGITS = 6


@dataclass
class Served:
    """What one server answers with: ``predictor``, ``name`` (the model's, in answers), ``info`` (what
    ``GET /model`` adds), ``batcher`` (requests that arrive together, one forward pass), ``max_request_pixels``, and
    ``explainer`` — a function of no argument giving a Keras predictor for Grad-CAM when ``predictor`` is not one
    (called once, on the first ``/explain``)."""

    predictor: Predictor
    name: str
    batcher: MicroBatcher
    max_request_pixels: int
    info: dict = field(default_factory=dict)
    explainer: object = None

    def __post_init__(self):
        if self.explainer is not None:
            self.explainer = functools.cache(self.explainer)


def served(request: Request) -> Served:
    """The :class:`Served` of the app answering ``request``."""
    return request.app.state.served


ServedHere = Annotated[Served, Depends(served)]
FILES = File(..., description="one or more images (multipart/form-data)")
router = APIRouter(responses={400: {"model": Refusal}, 413: {"model": Refusal}, 422: {"model": Refusal}})


@router.get("/health", response_model=Health)
async def health():
    return Health()


@router.get("/model", response_model=ModelInfo)
async def model_info(here: ServedHere):
    predictor = here.predictor
    h, w = predictor.target_size
    return ModelInfo(name=here.name, classes=list(predictor.classes), class_mode=predictor.class_mode,
                     input={"height": h, "width": w, "color_mode": predictor.color_mode}, **here.info)  # fmt: skip


@router.post("/predict", response_model=Predictions, response_model_exclude_none=True)
async def predict(here: ServedHere, file: list[UploadFile] = FILES):
    start = time.perf_counter()
    uploads = [(f.filename or "upload", await f.read()) for f in file]
    names, images = await asyncio.to_thread(decode_uploads, uploads, here.predictor, here.max_request_pixels)
    rows = await here.batcher.submit(images)
    k, ood = len(here.predictor.classes), here.predictor.ood
    predictions = [{"filename": n, **picture_answer(here.predictor.classes, row[:k], ood,
                                                    row[k] if ood is not None else None, DIGITS)}
                   for n, row in zip(names, rows)]  # fmt: skip
    return {"predictions": predictions, "model": here.name, "ms": round(1000 * (time.perf_counter() - start), 2)}


PNG = {200: {"content": {"image/png": {}}}, 501: {"model": Refusal}}


@router.post("/explain", response_class=Response, responses=PNG)
def explain(here: ServedHere, file: list[UploadFile] = FILES):
    """PNG: the one image sent with the Grad-CAM heat-map of its predicted class (Selvaraju et al. 2017)."""
    explaining = here.predictor
    keras = sys.modules.get("keras")  # a Keras model exists only once Keras is imported
    if (keras is None or not isinstance(explaining.model, keras.Model)) and here.explainer is not None:
        explaining = here.explainer()
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(explaining.model, keras.Model):
        raise UploadError("Grad-CAM needs a Keras model: serve a run folder, not an export.", status=501)
    if len(file) != 1:
        raise UploadError(f"explain takes one image in the field 'file'. Received: {len(file)}")
    _, images = decode_uploads([(file[0].filename or "upload", file[0].file.read())], here.predictor,
                               here.max_request_pixels)  # fmt: skip
    return Response(gradcam_png(explaining, images[0]), media_type="image/png")


@router.get("/", response_class=HTMLResponse)
def page(here: ServedHere):
    import jinja2

    template = resources.files("imgclf.deploy.serve").joinpath("templates/index.html.j2").read_text(encoding="utf-8")
    env = jinja2.Environment(autoescape=True)
    return env.from_string(template).render(name=here.name, classes=list(here.predictor.classes))


def batcher_for(predictor: Predictor, window_ms: float) -> MicroBatcher:
    """A :class:`MicroBatcher` running ``predictor``: probabilities, then the OOD score as a last column if the run
    has a detector."""

    def infer(x: np.ndarray) -> np.ndarray:
        result = predictor.predict(x)
        proba, scores = result.probabilities, result.ood_score
        return proba if scores is None else np.concatenate([proba, scores[:, None]], axis=1)

    return MicroBatcher(infer, window_ms=window_ms)
