"""`imgclf split`: stratified, reproducible, skips unreadable files, never overwrites."""

from __future__ import annotations

import os

import pytest
from helpers import run_cli, write_class_folder

from imgclf.data.folders import load_folder
from imgclf.data.split import split_folder
from imgclf.errors import ImgclfError


@pytest.fixture
def source(tmp_path):
    src = write_class_folder(tmp_path / "src", {"cats": 20, "dogs": 10})
    (src / "cats" / "666.jpg").write_bytes(b"")  # the Kaggle download's zero-length cat
    (src / "dogs" / "11702.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return src


def test_split_is_stratified_reproducible_and_skips_bad_files(source, tmp_path):
    summary = split_folder(source, tmp_path / "a", ratio=0.8, seed=1)
    assert summary["train"] == {"cats": 16, "dogs": 8} and summary["validation"] == {"cats": 4, "dogs": 2}
    assert {os.path.basename(s["path"]) for s in summary["skipped"]} == {"666.jpg", "11702.jpg"}
    split_folder(source, tmp_path / "b", ratio=0.8, seed=1)
    files = lambda d: sorted(p.relative_to(d).as_posix() for p in d.rglob("*.png"))  # noqa: E731
    assert files(tmp_path / "a") == files(tmp_path / "b")
    split_folder(source, tmp_path / "c", ratio=0.8, seed=2)
    assert files(tmp_path / "a") != files(tmp_path / "c")
    ds = load_folder(tmp_path / "a")  # the result is a split layout imgclf trains on
    assert ds.layout == "split" and len(ds.train) == 24 and len(ds.validation) == 6
    assert (source / "cats" / "666.jpg").exists()  # the source is untouched


def test_split_links_and_refuses_to_overwrite(source, tmp_path):
    split_folder(source, tmp_path / "l", ratio=0.5, mode="link")
    linked = next((tmp_path / "l" / "train" / "cats").iterdir())
    assert os.stat(linked).st_nlink == 2
    with pytest.raises(ImgclfError, match="refusing to overwrite"):
        split_folder(source, tmp_path / "l")
    with pytest.raises(ImgclfError, match=r"ratio must be a float in \(0, 1\)"):
        split_folder(source, tmp_path / "x", ratio=1.0)


def test_split_command(source, tmp_path, monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "split", source, tmp_path / "d", "--ratio", 0.9, "--seed", 42)
    assert code == 0 and "666.jpg" in err and "cats" in out
    code, _, err = run_cli(monkeypatch, capsys, "split", source, tmp_path / "d")
    assert code == 2 and "refusing to overwrite" in err


def test_split_then_train(source, tmp_path, monkeypatch, capsys):
    split_folder(source, tmp_path / "d", ratio=0.75)
    code, _, err = run_cli(monkeypatch, capsys, "train", tmp_path / "d", "--target-size", 32, 32, "--epochs", 1,
                           "--runs-dir", tmp_path / "runs", "--name", "s")  # fmt: skip
    assert code == 0 and "Found 22 training images" in err and "Found 8 validation images" in err


def test_split_into_its_own_source_is_refused(tmp_path):
    from helpers import write_class_folder

    src = write_class_folder(tmp_path / "src", {"a": 4, "b": 4})
    with pytest.raises(ImgclfError, match="dest must be outside source"):
        split_folder(src, src / "out")
    assert not (src / "out").exists()
