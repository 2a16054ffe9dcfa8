"""The data page: classes and their counts, a paginated grid of cached thumbnails, filters for doctor's findings and
the suspected wrong labels, and what fixes them — move to another class, quarantine, undo, restore — and new
pictures from the webcam or dropped files.

Writes (JSON or a form), each through the CLI's own function: ``POST /api/relabel`` and ``/api/undo``
(:mod:`imgclf.curation.relabel`: a manifest, undo byte-checked), ``/api/quarantine`` and ``/api/restore``
(:func:`imgclf.data.doctor.quarantine` / :func:`~imgclf.data.doctor.restore`: nothing deleted), ``/api/doctor``
(:func:`imgclf.studio.findings.check_folder`), ``/api/suspects`` (``imgclf suspects`` as a background job),
``/api/capture`` (:func:`imgclf.studio.capture.save_pictures`).
"""

# No ``from __future__ import annotations``: FastAPI reads the endpoints' annotations (Request, UploadFile).

import asyncio
from pathlib import Path

from imgclf.errors import ImgclfError
from imgclf.studio.context import Studio
from imgclf.studio.project import class_images, inside, read_data_folder
from imgclf.studio.thumbs import MAX_AGE, thumbnail

#: Thumbnails a page shows.
PER_PAGE = 60


def _data_folder(studio: Studio, name: str):
    """The data folder ``name`` (a folder of the project, never the project itself) with its counts.

    Raises:
        ImgclfError: a path outside the project, the project itself, or a folder without class folders of images.
    """
    folder = read_data_folder(studio.root, name) if inside(studio.root, name) != studio.root else None
    if folder is None:
        raise ImgclfError(f"{name!r} is not a data folder of this project.")
    return folder


def _data_root(studio: Studio, name: str):
    """The path of the data folder ``name`` (see :func:`_data_folder`)."""
    _data_folder(studio, name)
    return inside(studio.root, name)


def router(studio: Studio):
    from fastapi import APIRouter, File, Form, Request, UploadFile
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

    from imgclf.studio import findings

    api = APIRouter()
    root = studio.root

    @api.get("/data/{name}", response_class=HTMLResponse)
    async def data(request: Request, name: str, split: str = "", cls: str = "", page_number: int = 1, view: str = ""):
        folder = _data_folder(studio, name)
        split = split if split in folder.splits else next(iter(folder.splits))
        classes = folder.splits[split]
        cls = cls if cls in classes else next(iter(classes))
        if view:
            items = findings.view_items(root, name, view)
            total, start = len(items), (page_number - 1) * PER_PAGE
            items = items[start : start + PER_PAGE]
        else:
            paths, total = class_images(root, name, split, cls, page_number, PER_PAGE)
            items = [{"path": p} for p in paths]
        suspects_job = studio.jobs.latest("suspects", name)
        return studio.page("data.html.j2", request, folder=folder, split=split, cls=cls, items=items, total=total,
                           page_number=page_number, pages=max(1, -(-total // PER_PAGE)), view=view,
                           views=findings.views(root, name), checks=findings.read_checks(root, name),
                           suspects_job=suspects_job.to_dict() if suspects_job else None)  # fmt: skip

    @api.get("/thumb")
    async def thumb(path: str):
        try:
            body = thumbnail(root, path)
        except OSError:
            return JSONResponse({"error": f"no image at {path!r}"}, status_code=404)
        return Response(body, media_type="image/jpeg", headers={"Cache-Control": f"private, max-age={MAX_AGE}"})

    @api.get("/image")
    async def image(path: str):
        from imgclf.data.files import is_image_file

        file = inside(root, path)
        if not file.is_file() or not is_image_file(file.name):
            return JSONResponse({"error": f"no image at {path!r}"}, status_code=404)
        return FileResponse(file)

    @api.post("/api/relabel")
    async def relabel(body: dict):
        from imgclf.curation.relabel import relabel as move

        data_root = _data_root(studio, str(body.get("data", "")))
        files = [inside(root, str(f)) for f in body.get("files") or []]
        return {"moved": move(data_root, files, str(body.get("to", "")))}

    @api.post("/api/undo")
    async def undo(body: dict):
        from imgclf.curation.relabel import undo as put_back

        return {"undone": put_back(_data_root(studio, str(body.get("data", ""))))}

    @api.post("/api/quarantine")
    async def quarantine(body: dict):
        """Move the selected images into ``DATA/.quarantine/`` with why (the filter they were shown under)."""
        from imgclf.data.doctor import quarantine as set_aside

        data_root = _data_root(studio, str(body.get("data", "")))
        relative, files = [], body.get("files") or []
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            raise ImgclfError(f"files must be a list of paths. Received: {files!r}")
        for f in files:
            file = inside(root, f)
            if data_root not in file.parents or not file.is_file():
                raise ImgclfError(f"{f!r} is not an image of {body.get('data')!r}. Nothing was moved.")
            relative.append(file.relative_to(data_root).as_posix())
        why = str(body.get("why") or "set aside in the studio")
        moved = set_aside(data_root, relative, {r: [why] for r in relative})
        return {"quarantined": moved}

    @api.post("/api/restore")
    async def restore(body: dict):
        from imgclf.data.doctor import restore as put_back

        return {"restored": put_back(_data_root(studio, str(body.get("data", ""))))}

    @api.post("/api/doctor")
    async def doctor(body: dict):
        name = str(body.get("data", ""))
        _data_folder(studio, name)
        checked = await asyncio.to_thread(findings.check_folder, root, name)
        return {"files": checked["files"], "problems": {k: len(v) for k, v in checked["problems"].items()}}

    @api.post("/api/suspects")
    async def suspects(body: dict):
        """Start ``imgclf suspects NAME --out …`` in the background; the data page shows its suspects when done."""
        from imgclf.studio.jobs import imgclf_command

        name = str(body.get("data", ""))
        folder = _data_root(studio, name)
        argv = ["suspects", str(folder), "--out", str(findings.suspects_dir(root, name)), "--top", "0"]
        for key in ("backbone", "weights"):
            if body.get(key):
                argv += [f"--{key}", str(body[key])]
        return studio.jobs.submit_command("suspects", imgclf_command(*argv), about=name).to_dict()

    @api.post("/api/capture")
    async def capture(data: str = Form(...), cls: str = Form(...), split: str = Form(""), create: bool = Form(False),
                      file: list[UploadFile] = File(...)):  # fmt: skip
        """Save pictures (webcam frames, dropped files) as JPEGs under new names in ``DATA[/SPLIT]/CLASS`` of a data
        folder (never ``runs/``, the studio's folder or an inbox), one decoded at a time under DATA's lock."""
        from imgclf.studio.capture import class_folder, save_pictures
        from imgclf.studio.project import capture_base

        folder = class_folder(root, data, split, cls, create=create)
        pictures = [(f.filename or "picture", await f.read()) for f in file]
        written = await asyncio.to_thread(save_pictures, folder, pictures, capture_base(root, data))
        return {"saved": [Path(p).relative_to(root).as_posix() for p in written]}

    return api
