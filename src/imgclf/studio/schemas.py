"""What the studio's endpoints take and answer, as Pydantic models: every JSON body is one of these (a field of the
wrong type, or one no endpoint takes, is a 422 ``{"error"}`` line naming it), and every JSON answer is checked
against its model before it leaves. Paths are relative to the project and confined by the endpoint
(:func:`imgclf.studio.project.inside`), never by the model."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from imgclf.studio.jobs import FORM_SETTINGS


class Body(BaseModel):
    """A request body: strict fields (``5`` is not a name, ``"1"`` is not a number), nothing else."""

    model_config = ConfigDict(extra="forbid", strict=True)


class DataBody(Body):
    """Names a data folder of the project."""

    data: str


class FilesBody(DataBody):
    """Pictures (paths relative to the project) of the data folder ``data``."""

    files: list[str] = []


class RelabelBody(FilesBody):
    """Move ``files`` into the class ``to`` of their own split (``imgclf relabel --to``)."""

    to: str


class QuarantineBody(FilesBody):
    """Set ``files`` aside in ``DATA/.quarantine/``, with ``why`` (the filter they were shown under)."""

    why: str = "set aside in the studio"


class SuspectsBody(DataBody):
    """``imgclf suspects DATA`` with an optional ``--backbone`` / ``--weights``."""

    backbone: str = ""
    weights: str = ""


class CompareBody(Body):
    """The runs (their names under ``runs/``) to compare."""

    runs: list[str]


class ExportBody(Body):
    """Export the run ``run`` to ``format`` (``imgclf export --format``)."""

    run: str
    format: str


class TriageBody(Body):
    """Sort the inbox folder ``folder`` with the run ``run`` (``imgclf triage --json``)."""

    run: str
    folder: str


class FileBody(Body):
    """File the inbox picture ``path`` under the class ``label`` of the data folder ``into``."""

    into: str
    path: str
    label: str


class _TrainFields(Body):
    model_config = ConfigDict(extra="forbid")
    data: str = ""
    name: str | None = None
    resume: str | None = None


#: The train form: ``data`` and ``name`` with the settings of :data:`~imgclf.studio.jobs.FORM_SETTINGS` (one field
#: each, declared where the setting is: :mod:`imgclf.settings`), or ``resume`` (a run's name) alone. A setting's
#: value is parsed as its declared type by :func:`imgclf.studio.jobs.form_value` (``"227 227"`` and ``[227, 227]``
#: are both a target_size).
TrainForm = create_model("TrainForm", __base__=_TrainFields, **{k: (Any, None) for k in FORM_SETTINGS})


class Move(BaseModel):
    """One file moved: ``from`` and ``to`` relative to the data folder, and its SHA-256 (hex)."""

    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from")
    to: str
    sha256: str


class Moved(BaseModel):
    moved: list[Move]


class Undone(BaseModel):
    undone: list[Move]


class Quarantined(BaseModel):
    """The quarantine manifest's new entries (``original``, ``quarantined``, ``problems``, ``sha256``, ``time``)."""

    quarantined: list[dict[str, Any]]


class Restored(BaseModel):
    """The paths moved back (relative to the data folder), and ``kept``: ``[original, why]`` of those left."""

    restored: list[str]
    kept: list[tuple[str, str]] = []


class Checked(BaseModel):
    """``imgclf doctor``'s check of a data folder: files read and how many have each problem."""

    files: int
    problems: dict[str, int]


class Saved(BaseModel):
    """Pictures written (paths relative to the project)."""

    saved: list[str]


class Page(BaseModel):
    """A page imgclf wrote, by its address."""

    page: str


class Exported(BaseModel):
    """An export: its parity check against Keras, its size (bytes) and its zip's address."""

    parity: dict[str, Any] | None
    bytes: int
    download: str


class JobState(BaseModel):
    """A job (:meth:`imgclf.studio.jobs.Job.to_dict`): its status, last log lines, and a training's history and
    diagnosis."""

    id: int
    kind: str
    run: str | None
    about: str
    status: str
    returncode: int | None
    log: list[str]
    history: list[dict[str, Any]]
    diagnosis: dict[str, Any] | None
