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

from pathlib import Path

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from imgclf.errors import ImgclfError
from imgclf.studio import findings
from imgclf.studio.context import Studio, StudioHere
from imgclf.studio.project import class_images, inside, read_data_folder
from imgclf.studio.schemas import (
    Checked,
    DataBody,
    FilesBody,
    JobState,
    Moved,
    QuarantineBody,
    Quarantined,
    RelabelBody,
    Restored,
    Saved,
    SuspectsBody,
    Undone,
)
from imgclf.studio.thumbs import MAX_AGE, thumbnail

#: Thumbnails a page shows.
PER_PAGE = 60

router = APIRouter()


def _data_folder(studio: Studio, name: str):
    """The data folder ``name`` (a folder of the project, never the project itself) with its counts.

    Raises:
        ImgclfError: a path outside the project, the project itself, or a folder without class folders of images.
    """
    folder = read_data_folder(studio.root, name) if inside(studio.root, name) != studio.root else None
    if folder is None:
        raise ImgclfError(f"{name!r} is not a data folder of this project.")
    return folder


def _data_root(studio: Studio, name: str) -> Path:
    """The path of the data folder ``name`` (see :func:`_data_folder`)."""
    _data_folder(studio, name)
    return inside(studio.root, name)


def _pictures_of(studio: Studio, body: FilesBody) -> tuple[Path, list[str]]:
    """``(data folder, its pictures' paths relative to it)`` of a body naming pictures of one data folder.

    Raises:
        ImgclfError: not a data folder, or a path that is not one of its files (nothing is moved then).
    """
    data_root, relative = _data_root(studio, body.data), []
    for f in body.files:
        file = inside(studio.root, f)
        if data_root not in file.parents or not file.is_file():
            raise ImgclfError(f"{f!r} is not an image of {body.data!r}. Nothing was moved.")
        relative.append(file.relative_to(data_root).as_posix())
    return data_root, relative


@router.get("/data/{name}", response_class=HTMLResponse)
def data(request: Request, studio: StudioHere, name: str, split: str = "", cls: str = "", page_number: int = 1,
         view: str = ""):  # fmt: skip
    folder, root = _data_folder(studio, name), studio.root
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


@router.get("/thumb")
def thumb(studio: StudioHere, path: str):
    try:
        body = thumbnail(studio.root, path)
    except OSError:
        return JSONResponse({"error": f"no image at {path!r}"}, status_code=404)
    return Response(body, media_type="image/jpeg", headers={"Cache-Control": f"private, max-age={MAX_AGE}"})


@router.get("/image")
def image(studio: StudioHere, path: str):
    from imgclf.data.files import is_image_file

    file = inside(studio.root, path)
    if not file.is_file() or not is_image_file(file.name):
        return JSONResponse({"error": f"no image at {path!r}"}, status_code=404)
    return FileResponse(file)


@router.post("/api/relabel", response_model=Moved)
def relabel(studio: StudioHere, body: RelabelBody):
    from imgclf.curation.relabel import relabel as move

    data_root = _data_root(studio, body.data)
    return {"moved": move(data_root, [inside(studio.root, f) for f in body.files], body.to)}


@router.post("/api/undo", response_model=Undone)
def undo(studio: StudioHere, body: DataBody):
    from imgclf.curation.relabel import undo as put_back

    return {"undone": put_back(_data_root(studio, body.data))}


@router.post("/api/quarantine", response_model=Quarantined)
def quarantine(studio: StudioHere, body: QuarantineBody):
    """Move the selected images into ``DATA/.quarantine/`` with why (the filter they were shown under)."""
    from imgclf.data.doctor import quarantine as set_aside

    data_root, relative = _pictures_of(studio, body)
    return {"quarantined": set_aside(data_root, relative, {r: [body.why] for r in relative})}


@router.post("/api/restore", response_model=Restored)
def restore(studio: StudioHere, body: DataBody):
    from imgclf.data.doctor import restore as put_back

    restored = put_back(_data_root(studio, body.data))
    return {"restored": list(restored), "kept": [(str(k), str(why)) for k, why in restored.kept]}


@router.post("/api/doctor", response_model=Checked)
def doctor(studio: StudioHere, body: DataBody):
    _data_folder(studio, body.data)
    checked = findings.check_folder(studio.root, body.data)
    return {"files": checked["files"], "problems": {k: len(v) for k, v in checked["problems"].items()}}


@router.post("/api/suspects", response_model=JobState)
def suspects(studio: StudioHere, body: SuspectsBody):
    """Start ``imgclf suspects NAME --out …`` in the background; the data page shows its suspects when done."""
    from imgclf.studio.jobs import imgclf_command

    folder = _data_root(studio, body.data)
    argv = ["suspects", str(folder), "--out", str(findings.suspects_dir(studio.root, body.data)), "--top", "0"]
    for key in ("backbone", "weights"):
        if getattr(body, key):
            argv += [f"--{key}={getattr(body, key)}"]  # --option=value: a value never becomes an option
    return studio.jobs.submit_command("suspects", imgclf_command(*argv), about=body.data).to_dict()


@router.post("/api/capture", response_model=Saved)
def capture(studio: StudioHere, data: str = Form(...), cls: str = Form(...), split: str = Form(""),
            create: bool = Form(False), file: list[UploadFile] = File(...)):  # fmt: skip
    """Save pictures (webcam frames, dropped files) as JPEGs under new names in ``DATA[/SPLIT]/CLASS`` of a data
    folder (never ``runs/``, the studio's folder or an inbox), one decoded at a time under DATA's lock."""
    from imgclf.studio.capture import class_folder, save_pictures
    from imgclf.studio.project import capture_base

    folder = class_folder(studio.root, data, split, cls, create=create)
    pictures = [(f.filename or "picture", f.file.read()) for f in file]
    written = save_pictures(folder, pictures, capture_base(studio.root, data))
    return {"saved": [Path(p).relative_to(studio.root).as_posix() for p in written]}
