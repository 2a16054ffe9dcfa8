"""ImageClassifier keeps scikit-learn's estimator contract: the README's "scikit-learn estimator" is true."""

from __future__ import annotations

import inspect
import random
import tempfile
from pathlib import Path

import numpy as np
import pytest
from helpers import write_class_folder
from PIL import Image
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.utils import estimator_checks

from imgclf import ImageClassifier, ImgclfError
from imgclf import settings as declared
from imgclf.data.files import list_images

SMALL = dict(model="course_small", target_size=(24, 24), epochs=3, batch_size=8, validation_split=0)


@pytest.fixture(scope="module")
def paths_and_labels(tmp_path_factory):
    root = write_class_folder(tmp_path_factory.mktemp("xy"), {"a_tl": 16, "b_br": 16}, size=32)
    paths = list_images(root)
    return np.asarray(paths), np.asarray([p.split("/")[-2] for p in paths])


def test_init_only_stores_and_params_come_from_the_settings_declaration():
    assert is_classifier(ImageClassifier())
    signature = inspect.signature(ImageClassifier)
    assert list(signature.parameters) == declared.names()
    assert {k: p.default for k, p in signature.parameters.items()} == declared.defaults()
    augment = {"rotation_range": 10}
    clf = ImageClassifier(target_size=[0, 0], augment=augment, epochs=None)  # invalid, stored untouched
    assert clf.target_size == [0, 0] and clf.augment is augment and clf.epochs is None


def test_clone_get_params_set_params_round_trip():
    clf = ImageClassifier(model="chollet", epochs=7, augment="course", target_size=(64, 64))
    params = clf.get_params()
    assert params["model"] == "chollet" and params["epochs"] == 7 and params["augment"] == "course"
    twin = clone(clf)
    assert twin is not clf and twin.get_params() == params
    assert twin.set_params(epochs=2, learning_rate=1e-4) is twin
    assert twin.epochs == 2 and twin.learning_rate == 1e-4 and clf.epochs == 7
    with pytest.raises(ValueError, match="Invalid parameter"):
        twin.set_params(epoch=3)
    assert "chollet" in repr(clf) and "epochs=7" in repr(clf)


def test_model_and_backbone_together_are_refused():
    clf = ImageClassifier(model="course_small", backbone="squeezenet1_1")
    with pytest.raises(ImgclfError, match="give model or backbone, not both"):
        clf.resolve_settings()


def test_fit_paths_with_labels_predict_and_score(paths_and_labels):
    X, y = paths_and_labels
    clf = ImageClassifier(**SMALL).fit(X, y, verbose=0)
    assert list(clf.classes_) == ["a_tl", "b_br"] and clf.history_ and clf.target_size_ == (24, 24)
    predicted = clf.predict(X)
    assert predicted.shape == (len(X),) and set(predicted) <= {"a_tl", "b_br"}
    assert clf.score(X, y) == pytest.approx(np.mean(predicted == y))
    with pytest.raises(ImgclfError, match="same length"):
        ImageClassifier(**SMALL).fit(X, y[:-1], verbose=0)


def test_cross_val_score_and_grid_search_over_image_paths(paths_and_labels):
    X, y = paths_and_labels
    settings = {**SMALL, "epochs": 2}
    scores = cross_val_score(ImageClassifier(**settings), X, y, cv=2)
    folds = StratifiedKFold(2).split(X, y)  # what cross_val_score does for a classifier with cv=2
    by_hand = [ImageClassifier(**settings).fit(X[a], y[a], verbose=0).score(X[b], y[b]) for a, b in folds]
    np.testing.assert_allclose(scores, by_hand)  # clones train exactly as a fresh estimator (seeded)
    grid = {"learning_rate": [1e-3, 1e-9]}
    search = GridSearchCV(ImageClassifier(**{**SMALL, "epochs": 1}), grid, cv=2).fit(X, y)
    best = search.best_params_["learning_rate"]
    refit = ImageClassifier(**{**SMALL, "epochs": 1, "learning_rate": best}).fit(X, y, verbose=0)
    np.testing.assert_allclose(search.best_estimator_.predict_proba(X), refit.predict_proba(X), atol=1e-6)
    means = search.cv_results_["mean_test_score"]
    assert best == grid["learning_rate"][int(np.argmax(means))] and search.best_estimator_.learning_rate == best


def test_fit_leaves_global_random_state_alone(paths_and_labels):
    X, y = paths_and_labels
    random.seed(123)
    np.random.seed(123)
    py_state, np_state = random.getstate(), np.random.get_state()
    ImageClassifier(**{**SMALL, "epochs": 1}).fit(X, y, verbose=0)
    assert random.getstate() == py_state
    after = np.random.get_state()
    assert after[0] == np_state[0] and np.array_equal(after[1], np_state[1]) and after[2:] == np_state[2:]


def test_a_failed_fit_leaves_nothing_fitted(paths_and_labels, tmp_path):
    X, y = paths_and_labels
    clf = ImageClassifier(**{**SMALL, "epochs": 1}).fit(X, y, verbose=0)
    assert hasattr(clf, "model_")
    with pytest.raises(ImgclfError):
        clf.set_params(batch_size=0).fit(X, y, verbose=0)
    assert not hasattr(clf, "model_") and not hasattr(clf, "classes_")


class RowsAsImages(ImageClassifier):
    """scikit-learn's own estimator checks feed small float arrays; this test-only subclass turns each row into a
    16x16 PNG (one grey level per row, cached) and passes those paths to :class:`ImageClassifier` unchanged."""

    folder = Path(tempfile.mkdtemp(prefix="imgclf-sklearn-checks-"))

    def _paths(self, X):
        X = np.asarray(X, dtype=np.float64).reshape(len(X), -1)
        paths = []
        for row in X:
            level = int(np.clip(abs(row[0]) * 80, 0, 255))
            path = self.folder / f"{level:03d}.png"
            if not path.exists():
                Image.fromarray(np.full((16, 16, 3), level, np.uint8)).save(path)
            paths.append(str(path))
        return paths

    def fit(self, X, y=None, **kwargs):
        return super().fit(self._paths(X), np.asarray(y).astype(str), verbose=0)

    def predict(self, X, **kwargs):
        return super().predict(self._paths(X), **kwargs).astype(int)

    def predict_proba(self, X, **kwargs):
        return super().predict_proba(self._paths(X), **kwargs)


CHECKED = RowsAsImages(model="course_small", target_size=(24, 24), epochs=1, batch_size=8, validation_split=0,
                       calibrate=False)  # fmt: skip


@pytest.mark.parametrize(
    "check",
    [
        estimator_checks.check_no_attributes_set_in_init,
        estimator_checks.check_parameters_default_constructible,
        estimator_checks.check_get_params_invariance,
        estimator_checks.check_set_params,
        estimator_checks.check_estimator_cloneable,
        estimator_checks.check_estimator_repr,
        estimator_checks.check_dict_unchanged,
        estimator_checks.check_dont_overwrite_parameters,
        estimator_checks.check_estimators_overwrite_params,
        estimator_checks.check_fit_idempotent,
    ],
    ids=lambda check: check.__name__,
)
def test_scikit_learn_estimator_checks(check):
    """scikit-learn's own checks (``sklearn.utils.estimator_checks``) of the estimator contract: ``__init__`` only
    stores, predicting changes nothing on the estimator, ``fit`` leaves the parameters alone and gives the same
    model twice."""
    check(type(CHECKED).__name__, CHECKED)
