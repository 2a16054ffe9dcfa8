"""One function tells every kind of input apart (``imgclf.data.inputs.input_kind``), for fit and predict alike."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import write_class_folder

from imgclf import ImageClassifier, ImgclfError
from imgclf.data.folders import load_folder
from imgclf.data.inputs import expand_image_paths, input_kind


def test_each_kind_of_input(tmp_path):
    root = write_class_folder(tmp_path / "data", {"a_tl": 2, "b_br": 2}, size=24)
    csv = tmp_path / "pixels.csv"
    csv.write_text("label,pixel1,pixel2,pixel3,pixel4\n0,1,2,3,4\n")
    image = root / "a_tl" / "000.png"
    cases = {
        "dataset": load_folder(root, validation_split=0.5),
        "array": np.zeros((2, 8, 8, 3), np.uint8),
        "csv": csv,
        "folder": root,
        "file": image,
        "name": "cats_vs_dogs",
        "paths": [image, root / "b_br" / "000.png"],
    }
    for kind, value in cases.items():
        assert input_kind(value) == kind, kind
    assert input_kind(np.asarray([str(image)])) == "paths"  # scikit-learn passes paths as an array of strings
    assert input_kind(str(root)) == "folder" and input_kind(tmp_path / "nowhere") == "name"
    assert expand_image_paths([root / "a_tl", image]) == [
        str(root / "a_tl" / "000.png"),
        str(root / "a_tl" / "001.png"),
        str(image),
    ]
    with pytest.raises(ImgclfError, match="image path does not exist"):
        expand_image_paths(tmp_path / "nowhere")


def test_fit_refuses_what_it_cannot_train_on(tmp_path):
    root = write_class_folder(tmp_path / "data", {"a_tl": 2, "b_br": 2}, size=24)
    with pytest.raises(ImgclfError, match="with y, X must be a sequence of image paths.*a single path"):
        ImageClassifier().fit(root, ["a_tl"])
    with pytest.raises(ImgclfError, match="X must be a folder, a named dataset or image paths with y"):
        ImageClassifier().fit([root / "a_tl" / "000.png"])
