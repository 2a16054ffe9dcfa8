"""Try a run: a picture (dropped, chosen, or webcam frames a few times a second) → label, probabilities and
"unknown", from the run's TensorFlow-free copy when it passed its check (else Keras); and the Grad-CAM view, which
loads the Keras model the first time it is asked (:func:`imgclf.deploy.serve.uploads.gradcam_png`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

import functools
from pathlib import Path

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from imgclf.deploy.serve.schemas import TriedPicture
from imgclf.deploy.serve.uploads import decode_upload, gradcam_png
from imgclf.errors import ImgclfError
from imgclf.predict.answer import picture_answer
from imgclf.studio.context import Studio, StudioHere
from imgclf.studio.project import inside

router = APIRouter()


def _run_folder(studio: Studio, name: str) -> tuple[Path, int]:
    """``(run folder, its model file's mtime in ns)`` of the trained run ``name`` of the project.

    Raises:
        ImgclfError: no ``runs/NAME/model.keras`` in the project.
    """
    run = inside(studio.root, f"runs/{name}")
    if not (run / "model.keras").is_file():
        raise ImgclfError(f"{name!r} is not a trained run of this project (no runs/{name}/model.keras).")
    return run, (run / "model.keras").stat().st_mtime_ns


@functools.lru_cache(maxsize=4)
def _predictor_of(run: Path, _version: int):
    """The run's predictor, made once a model file: its TensorFlow-free copy when it passed its check."""
    from imgclf.deploy.fast import choose_engine
    from imgclf.deploy.runtime import open_predictor

    model, _ = choose_engine(run)
    return open_predictor(model if model is not None else run)


@functools.lru_cache(maxsize=2)
def _keras_of(run: Path, _version: int):
    from imgclf.predict.predictor import Predictor

    return Predictor.from_run(run)


@router.get("/try/{name}", response_class=HTMLResponse)
def try_page(request: Request, studio: StudioHere, name: str):
    _run_folder(studio, name)
    return studio.page("try.html.j2", request, run=name)


@router.post("/api/predict/{name}", response_model=TriedPicture, response_model_exclude_none=True)
def predict(studio: StudioHere, name: str, file: UploadFile):
    from imgclf.deploy.runtime import ExportedModel

    predictor = _predictor_of(*_run_folder(studio, name))
    image = decode_upload(file.file.read(), file.filename or "upload", predictor)
    result = predictor.predict(image[None])
    score = float(result.ood_score[0]) if result.ood_score is not None else None
    engine = "fast copy" if isinstance(predictor.model, ExportedModel) else "keras"
    return {**picture_answer(predictor.classes, result.probabilities[0], predictor.ood, score, 6), "engine": engine}


@router.post("/api/explain/{name}")
def explain(studio: StudioHere, name: str, file: UploadFile):
    """PNG: the picture at the model's input size with the Grad-CAM heat-map of the predicted class."""
    predictor = _keras_of(*_run_folder(studio, name))
    image = decode_upload(file.file.read(), file.filename or "upload", predictor)
    return Response(gradcam_png(predictor, image), media_type="image/png", headers={"Cache-Control": "no-store"})
