"""Training and the other long commands: the train form, ``POST /api/train`` (a form, or ``{"resume": RUN}``), each
job's state (``/api/jobs/ID``), its server-sent events while it runs, **Stop** (SIGINT: the run is resumable) and its
page (live curve and log)."""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

from imgclf.studio.context import Studio
from imgclf.studio.jobs import FORM_SETTINGS
from imgclf.studio.project import data_folders

#: Seconds between two looks at a running job for its event stream.
POLL_SECONDS = 0.5


def router(studio: Studio):
    import asyncio
    import json

    from fastapi import APIRouter, Request
    from fastapi.responses import HTMLResponse, StreamingResponse

    api = APIRouter()
    jobs = studio.jobs

    @api.get("/train", response_class=HTMLResponse)
    async def train_page(request: Request):
        from imgclf.recipes import list_recipes

        return studio.page("train.html.j2", request, folders=data_folders(studio.root), recipes=list_recipes())

    @api.post("/api/train")
    async def train(body: dict):
        return jobs.submit(body).to_dict()

    @api.get("/api/jobs/{job_id}")
    async def job(job_id: int):
        return jobs.get(job_id).to_dict()

    @api.post("/api/jobs/{job_id}/stop")
    async def stop(job_id: int):
        return jobs.stop(job_id).to_dict()

    @api.get("/api/jobs/{job_id}/events")
    async def events(job_id: int):
        """Server-sent events: the job (status, log, history) each time it changes, until it ends."""
        watched = jobs.get(job_id)

        async def stream():
            last = None
            while True:
                state = json.dumps(watched.to_dict())
                if state != last:
                    yield f"data: {state}\n\n"
                    last = state
                if watched.status not in ("queued", "running"):
                    return
                await asyncio.sleep(POLL_SECONDS)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    @api.get("/jobs/{job_id}", response_class=HTMLResponse)
    async def job_page(request: Request, job_id: int):
        return studio.page("job.html.j2", request, job=jobs.get(job_id).to_dict(), settings=FORM_SETTINGS)

    return api
