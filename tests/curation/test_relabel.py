"""Relabelling moves files between class folders of one split, as one checked batch, and --undo restores every byte;
clashes, boundary crossings and paths outside DATA are refused in one line, changing nothing."""

from __future__ import annotations

import hashlib
import os

from helpers import run_cli, write_class_folder

from imgclf.data.folders import load_folder


def make_data(root):
    """DATA/{train,validation}/{a_tl,b_br}/ with file names unique across classes (as Kaggle's are)."""
    write_class_folder(root / "train", {"a_tl": 6}, start=0)
    write_class_folder(root / "train", {"b_br": 6}, start=100)
    write_class_folder(root / "validation", {"a_tl": 2}, start=500)
    write_class_folder(root / "validation", {"b_br": 2}, start=600)
    return root


def contents(root):
    """``{relative path: SHA-256}`` of every file under ``root`` but the relabel manifest."""
    out = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            if ".relabel" not in path:
                out[os.path.relpath(path, root)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def test_relabel_then_undo_restores_every_byte(tmp_path, monkeypatch, capsys):
    split_data = make_data(tmp_path / "data")
    before = contents(split_data)
    wrong = [split_data / "train" / "a_tl" / "003.png", split_data / "validation" / "a_tl" / "501.png"]
    code, out, err = run_cli(monkeypatch, capsys, "relabel", split_data, *wrong, "--to", "b_br")
    assert code == 0, err
    assert out.splitlines() == ["train/a_tl/003.png\t->\ttrain/b_br/003.png",
                                "validation/a_tl/501.png\t->\tvalidation/b_br/501.png"]  # fmt: skip
    assert (split_data / "train" / "b_br" / "003.png").is_file() and not wrong[0].exists()
    dataset = load_folder(split_data)
    assert str(split_data / "train" / "b_br" / "003.png") in dataset.train.paths  # it trains as b_br now
    assert "validation/b_br/501.png" in "\n".join(dataset.validation.paths)  # and stays in validation
    code, out, err = run_cli(monkeypatch, capsys, "relabel", split_data, "--undo")
    assert code == 0 and "2 file(s) moved back" in out
    assert contents(split_data) == before
    code, _, err = run_cli(monkeypatch, capsys, "relabel", split_data, "--undo")
    assert code == 2 and "nothing to undo" in err


def test_refusals_change_nothing(tmp_path, monkeypatch, capsys):
    split_data = make_data(tmp_path / "data")
    outside = write_class_folder(tmp_path / "other", {"a_tl": 1, "b_br": 1})
    (split_data / "train" / "b_br" / "000.png").write_bytes((split_data / "train" / "b_br" / "101.png").read_bytes())
    before = contents(split_data)
    cases = {
        "already exists": [split_data / "train" / "a_tl" / "000.png", "--to", "b_br"],  # a b_br/000.png is there
        "inside DATA": [outside / "a_tl" / "000.png", "--to", "b_br"],
        "not a class of": [split_data / "train" / "a_tl" / "002.png", "--to", "c_new"],
        "name of a class folder": [split_data / "train" / "a_tl" / "002.png", "--to", "../validation/b_br"],
        "already in class": [split_data / "train" / "a_tl" / "002.png", "--to", "a_tl"],
        "given twice": [
            split_data / "train" / "a_tl" / "002.png",
            split_data / "train" / "a_tl" / "002.png",
            "--to",
            "b_br",
        ],  # fmt: skip
    }
    for message, args in cases.items():
        code, _, err = run_cli(monkeypatch, capsys, "relabel", split_data, *args)
        assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err, (message, err)
        assert contents(split_data) == before, message
    assert not (split_data / ".relabel").exists()  # a refused batch is not even recorded


def test_undo_refuses_when_a_moved_file_changed(tmp_path, monkeypatch, capsys):
    split_data = make_data(tmp_path / "data")
    moved = split_data / "train" / "b_br" / "004.png"
    assert run_cli(monkeypatch, capsys, "relabel", split_data, split_data / "train" / "a_tl" / "004.png", "--to",
                   "b_br")[0] == 0  # fmt: skip
    moved.write_bytes(moved.read_bytes() + b"edited")
    code, _, err = run_cli(monkeypatch, capsys, "relabel", split_data, "--undo")
    assert code == 2 and "gone or changed" in err and moved.is_file()
