"""Try a run: a picture (dropped, chosen, or webcam frames a few times a second) → label, probabilities and
"unknown", from the run's TensorFlow-free copy when it passed its check (else Keras); and the Grad-CAM view, which
loads the Keras model the first time it is asked (:func:`imgclf.deploy.serve.app.gradcam_png`)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

import functools

from imgclf.errors import ImgclfError
from imgclf.studio.context import Studio
from imgclf.studio.project import inside


def router(studio: Studio):
    import asyncio

    from fastapi import APIRouter, Request, UploadFile
    from fastapi.responses import HTMLResponse, Response

    from imgclf.deploy.serve.app import decode_upload

    api = APIRouter()
    root = studio.root

    def run_folder(name: str):
        run = inside(root, f"runs/{name}")
        if not (run / "model.keras").is_file():
            raise ImgclfError(f"{name!r} is not a trained run of this project (no runs/{name}/model.keras).")
        return run, (run / "model.keras").stat().st_mtime_ns

    @functools.lru_cache(maxsize=4)
    def predictor_of(name: str, _version: int):
        """The run's predictor, made once a model file: its TensorFlow-free copy when it passed its check."""
        from imgclf.deploy.fast import choose_engine
        from imgclf.deploy.runtime import open_predictor

        run, _ = run_folder(name)
        model, _ = choose_engine(run)
        return open_predictor(model if model is not None else run)

    @functools.lru_cache(maxsize=2)
    def keras_of(name: str, _version: int):
        from imgclf.predict.predictor import Predictor

        return Predictor.from_run(run_folder(name)[0])

    @api.get("/try/{name}", response_class=HTMLResponse)
    async def try_page(request: Request, name: str):
        run_folder(name)
        return studio.page("try.html.j2", request, run=name)

    @api.post("/api/predict/{name}")
    async def predict(name: str, file: UploadFile):
        from imgclf.deploy.runtime import ExportedModel

        predictor = await asyncio.to_thread(predictor_of, name, run_folder(name)[1])
        image = decode_upload(await file.read(), file.filename or "upload", predictor)
        result = await asyncio.to_thread(predictor.predict, image[None])
        row = result.probabilities[0]
        answer = {"label": str(predictor.classes[int(row.argmax())]),
                  "probabilities": {c: round(float(p), 6) for c, p in zip(predictor.classes, row)},
                  "engine": "fast copy" if isinstance(predictor.model, ExportedModel) else "keras"}  # fmt: skip
        if result.ood_score is not None:
            answer |= {"ood_score": round(float(result.ood_score[0]), 6), "unknown": bool(result.unknown[0])}
        return answer

    @api.post("/api/explain/{name}")
    async def explain(name: str, file: UploadFile):
        """PNG: the picture at the model's input size with the Grad-CAM heat-map of the predicted class."""
        from imgclf.deploy.serve.app import gradcam_png

        predictor = await asyncio.to_thread(keras_of, name, run_folder(name)[1])
        image = decode_upload(await file.read(), file.filename or "upload", predictor)
        png = await asyncio.to_thread(gradcam_png, predictor, image)
        return Response(png, media_type="image/png", headers={"Cache-Control": "no-store"})

    return api
