"""Training and the other long commands: the train form, ``POST /api/train`` (a form, or ``{"resume": RUN}``), each
job's state (``/api/jobs/ID``), its server-sent events while it runs, **Stop** (SIGINT: the run is resumable) and its
page (live curve and log)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

import asyncio
import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from imgclf.studio.context import StudioHere
from imgclf.studio.jobs import FORM_SETTINGS
from imgclf.studio.project import data_folders
from imgclf.studio.schemas import JobState, TrainForm

#: Seconds between two looks at a running job for its event stream.
POLL_SECONDS = 0.5

router = APIRouter()


@router.get("/train", response_class=HTMLResponse)
def train_page(request: Request, studio: StudioHere):
    from imgclf.recipes import list_recipes

    return studio.page("train.html.j2", request, folders=data_folders(studio.root), recipes=list_recipes())


@router.post("/api/train", response_model=JobState)
def train(studio: StudioHere, body: TrainForm):
    return studio.jobs.submit(body.model_dump(exclude_none=True)).to_dict()


@router.get("/api/jobs/{job_id}", response_model=JobState)
def job(studio: StudioHere, job_id: int):
    return studio.jobs.get(job_id).to_dict()


@router.post("/api/jobs/{job_id}/stop", response_model=JobState)
def stop(studio: StudioHere, job_id: int):
    return studio.jobs.stop(job_id).to_dict()


@router.get("/api/jobs/{job_id}/events")
def events(studio: StudioHere, job_id: int):
    """Server-sent events: the job (:class:`~imgclf.studio.schemas.JobState`) each time it changes, until it ends."""
    watched = studio.jobs.get(job_id)

    async def stream():
        last = None
        while True:
            state = json.dumps(await asyncio.to_thread(watched.to_dict))  # reads the run's history file
            if state != last:
                yield f"data: {state}\n\n"
                last = state
            if watched.status not in ("queued", "running"):
                return
            await asyncio.sleep(POLL_SECONDS)

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, studio: StudioHere, job_id: int):
    return studio.page("job.html.j2", request, job=studio.jobs.get(job_id).to_dict(), settings=FORM_SETTINGS)
