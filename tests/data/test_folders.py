"""Datasets from folders: labels, class order, layouts, splits and bad folders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from helpers import PET_IMAGES, requires_shared, write_class_folder

from imgclf.data.folders import load_eval_samples, load_folder
from imgclf.errors import ImgclfError


def test_split_layout_labels_and_class_order(tmp_path):
    # Class order is alphanumeric, not creation order: 'zebra' made first still comes last.
    write_class_folder(tmp_path / "train", {"zebra": 3, "ant": 5})
    write_class_folder(tmp_path / "validation", {"zebra": 2, "ant": 1})
    ds = load_folder(tmp_path)
    assert ds.layout == "split"
    assert ds.class_names == ("ant", "zebra")
    assert len(ds.train) == 8 and len(ds.validation) == 3
    for path, label in zip(ds.train.paths, ds.train.labels):
        assert os.path.basename(os.path.dirname(path)) == ds.class_names[label]
    assert ds.train.labels.dtype == np.int32
    assert ds.train.counts(2) == [5, 3]
    assert ds.validation.counts(2) == [1, 2]


@pytest.mark.parametrize(
    "train_name,val_name", [("training", "val"), ("train", "valid"), ("train", "test"), ("Training", "Testing")]
)
def test_split_folder_names(tmp_path, train_name, val_name):
    write_class_folder(tmp_path / train_name, {"a": 2, "b": 2})
    write_class_folder(tmp_path / val_name, {"a": 1, "b": 1})
    ds = load_folder(tmp_path)
    assert ds.layout == "split" and len(ds.train) == 4 and len(ds.validation) == 2


def test_validation_preferred_over_test(tmp_path):
    write_class_folder(tmp_path / "train", {"a": 2, "b": 2})
    write_class_folder(tmp_path / "validation", {"a": 3, "b": 3})
    write_class_folder(tmp_path / "test", {"a": 1, "b": 1})
    assert len(load_folder(tmp_path).validation) == 6
    # evaluation prefers the test split
    assert len(load_eval_samples(tmp_path, ("a", "b"))) == 2


def test_single_layout_stratified_seeded_split(single_data):
    ds = load_folder(single_data, validation_split=0.25, seed=3)
    assert ds.layout == "single" and ds.validation_split == 0.25
    assert ds.validation.counts(3) == [5, 5, 5]
    assert ds.train.counts(3) == [15, 15, 15]
    assert not set(ds.train.paths) & set(ds.validation.paths)
    again = load_folder(single_data, validation_split=0.25, seed=3)
    assert again.validation.paths == ds.validation.paths
    other = load_folder(single_data, validation_split=0.25, seed=4)
    assert other.validation.paths != ds.validation.paths


def test_single_layout_default_and_zero_split(single_data):
    assert len(load_folder(single_data).validation) == 12  # default 0.2 of 60
    ds = load_folder(single_data, validation_split=0)
    assert ds.validation is None and len(ds.train) == 60


def test_train_only_folder_gets_split(tmp_path):
    write_class_folder(tmp_path / "train", {"a": 10, "b": 10})
    ds = load_folder(tmp_path, validation_split=0.5)
    assert ds.layout == "split" and ds.validation.counts(2) == [5, 5]


def test_hidden_and_non_image_files_skipped(tmp_path):
    write_class_folder(tmp_path, {"a": 2, "b": 2})
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    (tmp_path / "a" / ".hidden.png").write_bytes(b"")
    write_class_folder(tmp_path / "a" / ".quarantine", {"x": 1})
    write_class_folder(tmp_path / ".cache", {"zz": 1})
    write_class_folder(tmp_path / "b" / "nested", {"deeper": 1})  # recursive inside a class
    ds = load_folder(tmp_path, validation_split=0)
    assert ds.class_names == ("a", "b")
    assert ds.train.counts(2) == [2, 3]


def test_uppercase_extensions(tmp_path):
    write_class_folder(tmp_path, {"a": 2, "b": 2}, ext="PNG")
    assert len(load_folder(tmp_path, validation_split=0).train) == 4


@pytest.mark.parametrize(
    "build,match",
    [
        (lambda p: write_class_folder(p, {"only": 3}), r"at least 2 classes.*'only'"),
        (lambda p: (write_class_folder(p, {"a": 3}), (p / "b").mkdir()), r"class folder 'b' .* has no images"),
        (lambda p: (p / "x.png").write_bytes(b"1"), r"has no class subfolders"),
        (
            lambda p: (
                write_class_folder(p / "train", {"a": 2, "b": 2}),
                write_class_folder(p / "validation", {"a": 1, "c": 1}),
            ),
            r"class 'c'",
        ),
    ],
    ids=["one-class", "empty-class", "no-subfolders", "unknown-validation-class"],
)
def test_bad_folders(tmp_path, build, match):
    build(tmp_path)
    with pytest.raises(ImgclfError, match=match):
        load_folder(tmp_path)


def test_missing_and_file_paths(tmp_path):
    with pytest.raises(ImgclfError, match=r"does not exist\. Received: '.*nope'"):
        load_folder(tmp_path / "nope")
    f = tmp_path / "file.png"
    f.write_bytes(b"x")
    with pytest.raises(ImgclfError, match="not a file"):
        load_folder(f)


def test_unreadable_folder(tmp_path, monkeypatch):
    """Tests run as root, who reads any folder: the permission check is made to say no, as it does for a user."""
    write_class_folder(tmp_path / "d", {"a": 2, "b": 2})
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != tmp_path / "d" and real_access(path, mode))
    with pytest.raises(ImgclfError, match=r"folder is not readable \(permission denied\)\. Received: '.*d'"):
        load_folder(tmp_path / "d")
    monkeypatch.setattr(os, "access", real_access)
    assert list(load_folder(tmp_path / "d", validation_split=0.5).class_names) == ["a", "b"]


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "0.2", True])
def test_bad_validation_split(single_data, bad):
    with pytest.raises(ImgclfError, match=r"validation_split must be a number in \[0, 1\)\. Received"):
        load_folder(single_data, validation_split=bad)


def test_split_too_small_for_stratification(tmp_path):
    write_class_folder(tmp_path, {"a": 1, "b": 1})
    with pytest.raises(ImgclfError, match="stratified"):
        load_folder(tmp_path, validation_split=0.5)


def test_eval_samples_use_model_class_order(tmp_path):
    write_class_folder(tmp_path, {"b": 2, "a": 1})
    s = load_eval_samples(tmp_path, ("b", "a", "c"))
    assert s.counts(3) == [2, 1, 0]
    with pytest.raises(ImgclfError, match="class 'a'"):
        load_eval_samples(tmp_path, ("b", "c"))


def test_kaggle_flat_layout(tmp_path):
    from PIL import Image

    for name in ("cat.0.jpg", "cat.1.jpg", "cat.12.jpg", "dog.3.jpg", "dog.44.jpg", "dog.5.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    ds = load_folder(tmp_path, validation_split=0)
    assert ds.class_names == ("cat", "dog") and ds.train.counts(2) == [3, 3]
    assert os.path.basename(ds.train.paths[ds.train.labels.tolist().index(1)]).startswith("dog.")


def test_flat_layout_custom_pattern_and_bad_names(tmp_path):
    from PIL import Image

    for name in ("img_001_happy.png", "img_002_sad.png", "img_003_happy.png", "img_004_sad.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / name)
    ds = load_folder(tmp_path, validation_split=0, label_pattern=r"_(happy|sad)\.png$")
    assert ds.class_names == ("happy", "sad")
    with pytest.raises(
        ImgclfError, match=r"has no class subfolders, and file name 'img_001_happy.png' has no label matching"
    ):
        load_folder(tmp_path)
    with pytest.raises(ImgclfError, match="label_pattern is not a valid regular expression"):
        load_folder(tmp_path, label_pattern="(")


def test_wrapper_folder_is_stepped_into(tmp_path):
    write_class_folder(tmp_path / "PetImages", {"Cat": 3, "Dog": 3})
    ds = load_folder(tmp_path, validation_split=0)
    assert ds.class_names == ("Cat", "Dog") and ds.root.name == "PetImages"


@requires_shared(PET_IMAGES)
def test_shared_petimages_layout():
    ds = load_folder(PET_IMAGES, validation_split=0.25, seed=1)
    assert ds.class_names == ("Cat", "Dog")
    assert len(ds.train) + len(ds.validation) == 40 and ds.validation.counts(2) == [5, 5]


def test_links_and_special_files_cannot_loop_duplicate_or_block(tmp_path):
    import os
    import signal

    from helpers import write_class_folder

    root = write_class_folder(tmp_path / "data", {"cats": 6, "dogs": 6})
    os.symlink("..", root / "cats" / "up")  # a loop back to DATA
    os.symlink(".", root / "cats" / "self")  # every image again
    os.mkfifo(root / "dogs" / "pipe.jpg")  # reading it would block forever
    (root / "dogs" / "inner").mkdir()
    write_class_folder(root / "dogs" / "inner", {"more": 2})
    os.symlink(root / "dogs" / "inner" / "more", root / "dogs" / "linked")  # a link inside: followed once
    signal.alarm(30)  # a loop would hang the test: fail instead
    try:
        ds = load_folder(root, validation_split=0)
    finally:
        signal.alarm(0)
    counts = dict(zip(ds.class_names, ds.train.counts(ds.num_classes)))
    assert counts == {"cats": 6, "dogs": 6 + 2}  # no duplicates through links, no FIFO, nothing from outside
    assert not any(p.endswith("pipe.jpg") for p in ds.train.paths)
