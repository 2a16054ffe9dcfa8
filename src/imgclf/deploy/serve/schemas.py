"""The answers of ``imgclf serve`` and the studio's try page as Pydantic models: what the OpenAPI description
publishes and what every answer is checked against before it leaves."""

from pydantic import BaseModel, ConfigDict


class Health(BaseModel):
    """``GET /health``."""

    status: str = "ok"


class PictureAnswer(BaseModel):
    """One predicted picture (:func:`imgclf.predict.answer.picture_answer`): the label, its probability, every
    class's, and — when the run has an out-of-distribution detector — the score and whether it is ``unknown``
    (unlike every training image). Probabilities are in [0, 1]; the fields absent without a detector are left out."""

    label: str
    probability: float
    probabilities: dict[str, float]
    ood_score: float | None = None
    unknown: bool | None = None


class ServedPicture(PictureAnswer):
    """One file of a ``POST /predict``."""

    filename: str


class Predictions(BaseModel):
    """``POST /predict``: a prediction a file, in the order sent; the model's name; milliseconds the request took."""

    predictions: list[ServedPicture]
    model: str
    ms: float


class ModelInput(BaseModel):
    """What the model takes: uint8 pictures of ``height`` x ``width`` pixels, in ``color_mode``."""

    height: int
    width: int
    color_mode: str
    dtype: str = "uint8"


class ModelInfo(BaseModel):
    """``GET /model``: the classes, the input, and what the run recorded (metrics, training date)."""

    model_config = ConfigDict(extra="allow")
    name: str
    classes: list[str]
    class_mode: str
    input: ModelInput


class TriedPicture(PictureAnswer):
    """The studio's try page: :class:`PictureAnswer` and which engine answered (``fast copy`` or ``keras``)."""

    engine: str


class Refusal(BaseModel):
    """Every refused request, 4xx or 5xx: one line that says what was wrong."""

    error: str
