"""Pixel CSVs in the sign-language-MNIST layout train, evaluate and predict end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import run_cli

from imgclf.data.folders import load_folder
from imgclf.data.pixel_csv import read_pixel_csv
from imgclf.errors import ImgclfError


def pattern(label: int, rng) -> np.ndarray:
    img = rng.integers(0, 60, (28, 28)).astype(np.uint8)
    if label == 0:
        img[:, 12:16] = 230  # vertical bar
    elif label == 3:
        img[12:16, :] = 230  # horizontal bar
    else:
        np.fill_diagonal(img, 230)  # diagonal
        np.fill_diagonal(img[1:], 230)
    return img


def write_csv(path, labels, seed, with_label=True):
    rng = np.random.default_rng(seed)
    header = (["label"] if with_label else []) + [f"pixel{i}" for i in range(1, 785)]
    rows = [([str(y)] if with_label else []) + [str(v) for v in pattern(y, rng).ravel()] for y in labels]
    path.write_text(",".join(header) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


@pytest.fixture
def sign_folder(tmp_path):
    folder = tmp_path / "sign-language-mnist"
    (folder / "sign_mnist_train").mkdir(parents=True)
    (folder / "sign_mnist_test").mkdir()
    write_csv(folder / "sign_mnist_train" / "sign_mnist_train.csv", [0, 3, 7] * 30, seed=0)
    write_csv(folder / "sign_mnist_test" / "sign_mnist_test.csv", [0, 3, 7] * 6, seed=1)
    return folder


def test_read_and_layout(sign_folder):
    images, labels = read_pixel_csv(sign_folder / "sign_mnist_train" / "sign_mnist_train.csv")
    assert images.shape == (90, 28, 28, 1) and images.dtype == np.uint8 and labels[:3] == ["0", "3", "7"]
    ds = load_folder(sign_folder)
    assert ds.layout == "csv" and ds.class_names == ("0", "3", "7")  # numeric order
    assert len(ds.train) == 90 and len(ds.validation) == 18 and ds.train.images.shape == (90, 28, 28, 1)
    single = load_folder(sign_folder / "sign_mnist_train" / "sign_mnist_train.csv", validation_split=0.2)
    assert single.validation.counts(3) == [6, 6, 6]


def test_bad_csvs(tmp_path):
    (tmp_path / "odd.csv").write_text("label,a,b,c\n1,0,0,0\n")
    with pytest.raises(ImgclfError, match="3 pixel columns: expected a square number"):
        read_pixel_csv(tmp_path / "odd.csv")
    (tmp_path / "big.csv").write_text("label,a,b,c,d\n1,0,0,0,300\n")
    with pytest.raises(ImgclfError, match="outside 0-255"):
        read_pixel_csv(tmp_path / "big.csv")


def test_train_evaluate_predict_csv(sign_folder, tmp_path, monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "train", sign_folder, "--model", "course_28", "--epochs", 4,
                           "--batch-size", 16, "--runs-dir", tmp_path, "--name", "sign")  # fmt: skip
    assert code == 0 and "Found 90 training images belonging to 3 classes: 0, 3, 7" in err
    run = tmp_path / "sign"
    code, out, _ = run_cli(monkeypatch, capsys, "evaluate", run, sign_folder, "--json")
    metrics = json.loads(out)
    assert code == 0 and metrics["n"] == 18 and metrics["accuracy"] > 0.6  # chance is 0.33
    new = write_csv(tmp_path / "new.csv", [7, 0], seed=5, with_label=False)
    code, out, _ = run_cli(monkeypatch, capsys, "predict", run, new)
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert code == 0 and [line[0] for line in lines] == [f"{new}#row1", f"{new}#row2"]
    assert all(line[1] in ("0", "3", "7") for line in lines)


def test_label_column_configurable(tmp_path):
    rng = np.random.default_rng(0)
    header = [f"p{i}" for i in range(1, 17)] + ["letter"]
    rows = [[str(v) for v in rng.integers(0, 255, 16)] + [str(y)] for y in [1, 2] * 10]
    (tmp_path / "train.csv").write_text(",".join(header) + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    ds = load_folder(tmp_path / "train.csv", validation_split=0, label_column="letter")
    assert ds.class_names == ("1", "2") and ds.train.images.shape == (20, 4, 4, 1)
    with pytest.raises(ImgclfError, match="has no 'label' column"):
        load_folder(tmp_path / "train.csv")
