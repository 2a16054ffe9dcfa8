"""ImageClassifier keeps scikit-learn's estimator contract: the README's "scikit-learn estimator" is true."""

from __future__ import annotations

import inspect
import random

import numpy as np
import pytest
from sklearn.base import clone, is_classifier
from sklearn.model_selection import GridSearchCV, cross_val_score

from imgclf import ImageClassifier, ImgclfError
from imgclf import settings as declared
from imgclf.data.files import list_images

from conftest import write_class_folder

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
    scores = cross_val_score(ImageClassifier(**{**SMALL, "epochs": 2}), X, y, cv=2)
    assert scores.shape == (2,) and all(0.0 <= s <= 1.0 for s in scores)
    search = GridSearchCV(ImageClassifier(**{**SMALL, "epochs": 1}), {"learning_rate": [1e-3, 1e-4]}, cv=2).fit(X, y)
    assert search.best_params_["learning_rate"] in (1e-3, 1e-4) and hasattr(search.best_estimator_, "model_")


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
