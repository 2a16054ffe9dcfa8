"""The fixtures every test may take: class folders of real pictures, trained runs, a private cache. What tests
share besides fixtures is the ``helpers`` package (``from helpers import …``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from helpers.pictures import write_class_folder
from helpers.runs import TrainedRuns

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

@pytest.fixture
def split_data(tmp_path) -> Path:
    """DATA/train/{a_tl,b_br}/ (24 each) + DATA/validation/{a_tl,b_br}/ (8 each), 48x48 PNG."""
    root = tmp_path / "data"
    write_class_folder(root / "train", {"a_tl": 24, "b_br": 24})
    write_class_folder(root / "validation", {"a_tl": 8, "b_br": 8}, start=500)
    return root


@pytest.fixture
def single_data(tmp_path) -> Path:
    """DATA/{a_tl,b_br,c_stripes}/ with 20 PNGs each (one folder, no split)."""
    return write_class_folder(tmp_path / "single", {"a_tl": 20, "b_br": 20, "c_stripes": 20})


@pytest.fixture(scope="session")
def trained_runs(tmp_path_factory) -> TrainedRuns:
    """Runs trained once a session, a fresh copy to each test (:class:`helpers.runs.TrainedRuns`)."""
    return TrainedRuns(tmp_path_factory.mktemp("trained-runs"))


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Keep the tests' downloads, digits and cached features out of the user's ~/.cache/imgclf."""
    home = tmp_path_factory.mktemp("imgclf_home")
    previous = os.environ.get("IMGCLF_HOME")
    os.environ["IMGCLF_HOME"] = str(home)
    yield home
    if previous is None:
        os.environ.pop("IMGCLF_HOME", None)
    else:
        os.environ["IMGCLF_HOME"] = previous
