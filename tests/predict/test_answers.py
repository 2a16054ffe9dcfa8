"""One answer for one predicted picture (imgclf.predict.answer), the studio's bodies as Pydantic models."""

import numpy as np
import pytest

from imgclf.predict.answer import picture_answer


class _Detector:  # an OOD detector's decision: a score above 0.5 is unknown
    def unknown(self, scores):
        return np.asarray(scores) > 0.5


def test_picture_answer_names_the_best_class_and_rounds_only_when_asked():
    row = np.array([0.1234567, 0.8765433], np.float32)
    plain = picture_answer(["cats", "dogs"], row)
    assert plain["label"] == "dogs" and plain["probability"] == pytest.approx(0.8765433)
    assert set(plain) == {"label", "probability", "probabilities"}  # no detector: no OOD fields
    web = picture_answer(["cats", "dogs"], row, _Detector(), 0.7, digits=2)
    assert web == {"label": "dogs", "probability": 0.88, "probabilities": {"cats": 0.12, "dogs": 0.88},
                   "ood_score": 0.7, "unknown": True}  # fmt: skip
    assert picture_answer(["cats", "dogs"], row, _Detector(), 0.2)["unknown"] is False
    with pytest.raises(ValueError, match="one value for each of 3 classes"):
        picture_answer(["a", "b", "c"], row)


def test_studio_bodies_are_strict_and_closed():
    pytest.importorskip("fastapi", reason="the serve extra is not installed")
    from pydantic import ValidationError

    from imgclf.studio.schemas import Move, RelabelBody, TrainForm

    assert RelabelBody.model_validate({"data": "d", "files": ["a.png"], "to": "b"}).files == ["a.png"]
    for bad in ({"data": 5, "to": "b"}, {"data": "d", "files": "a.png", "to": "b"},
                {"data": "d", "to": "b", "why": "x"}, {"data": "d"}):  # fmt: skip
        with pytest.raises(ValidationError):
            RelabelBody.model_validate(bad)
    form = TrainForm.model_validate({"data": "d", "name": "r", "epochs": 3, "target_size": "32 32"})
    assert form.model_dump(exclude_none=True) == {"data": "d", "name": "r", "epochs": 3, "target_size": "32 32"}
    with pytest.raises(ValidationError, match="distribute"):
        TrainForm.model_validate({"data": "d", "distribute": "mirrored"})
    assert Move.model_validate({"from": "a", "to": "b", "sha256": "0"}).model_dump(by_alias=True)["from"] == "a"
