"""Backbone features kept image by image (issues 26/27): a run on changed data runs the backbone over the images no
run has seen, and the features it assembles are the ones a whole pass computes."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import write_class_folder
from PIL import Image

from imgclf import ImageClassifier
from imgclf.features import extract as features_module
from imgclf.features.store import MAX_SHARDS, ImageFeatureStore

# float32 pinned: the precision is part of the description, and `auto` differs between CPU kinds
SETTINGS = dict(backbone="squeezenet1_1", weights=None, target_size=(64, 64), head="gap", epochs=1, batch_size=8,
                precision="float32")


@pytest.fixture
def counted(monkeypatch):
    """How many images went through the backbone, pass by pass."""
    passes = []
    real = features_module.extract_features

    def counting(extractor, ds):
        out = real(extractor, ds)
        passes.append(len(out[0]))
        return out

    monkeypatch.setattr(features_module, "extract_features", counting)
    return passes


def _whole_key_features(home) -> list[np.ndarray]:
    return [np.load(p)["f_train"] for p in sorted((home / "features").glob("*.npz"), key=lambda p: p.stat().st_mtime)]


def test_new_images_alone_go_through_the_backbone_and_the_rows_match_a_whole_pass(tmp_path, monkeypatch, counted,
                                                                                   capsys):  # fmt: skip
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 10, "b_br": 10}, size=64)
    first = ImageClassifier(**SETTINGS).fit(data, verbose=0)
    assert first.features_from_cache_ is False and counted == [20]
    # three new pictures (new contents) and a copy of a known one under another name and another class
    rng = np.random.default_rng(0)
    for i in range(3):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(data / "a_tl" / f"new{i}.png")
    (data / "b_br" / "copy.png").write_bytes((data / "a_tl" / "000.png").read_bytes())
    grown = ImageClassifier(**SETTINGS).fit(data, verbose=1)
    assert counted == [20, 3] and grown.features_from_cache_ is False
    assert "over 3 new images (21 stored)" in capsys.readouterr().err
    assembled = _whole_key_features(tmp_path / "home")[-1]  # what the grown run cached for its whole data
    # the same data from nothing: every image through the backbone at once
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "fresh"))
    ImageClassifier(**SETTINGS).fit(data, verbose=0)
    assert counted == [20, 3, 24]
    whole = _whole_key_features(tmp_path / "fresh")[-1]
    assert whole.shape == assembled.shape and whole.shape[1] == 512
    assert np.allclose(whole, assembled, atol=1e-5)
    # the images are all known now: another split of them needs no backbone pass at all
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    again = ImageClassifier(**{**SETTINGS, "validation_split": 0.3}).fit(data, verbose=0)
    assert counted == [20, 3, 24] and again.features_from_cache_ is True


def test_features_of_another_description_are_not_shared(tmp_path, monkeypatch, counted):
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 6, "b_br": 6}, size=64)
    ImageClassifier(**SETTINGS).fit(data, verbose=0)
    ImageClassifier(**{**SETTINGS, "head": "prototypes"}).fit(data, verbose=0)  # max pooling, not average
    ImageClassifier(**{**SETTINGS, "seed": 7}).fit(data, verbose=0)  # another random backbone
    ImageClassifier(**{**SETTINGS, "target_size": (72, 72)}).fit(data, verbose=0)
    ImageClassifier(**{**SETTINGS, "precision": "mixed_bfloat16"}).fit(data, verbose=0)  # other numbers
    assert counted == [12, 12, 12, 12, 12]
    assert len(list((tmp_path / "home" / "features" / "images").iterdir())) == 5


def test_the_store_keeps_rows_by_content_merges_shards_and_skips_what_it_cannot_read(tmp_path):
    store = ImageFeatureStore(["test"], root=tmp_path)
    rows = np.arange(12, dtype=np.float32).reshape(3, 4)
    store.add(["a" * 64, "b" * 64, "c" * 64], rows)
    found = store.load({"b" * 64, "z" * 64})
    assert list(found) == ["b" * 64] and np.array_equal(found["b" * 64], rows[1])
    for i in range(MAX_SHARDS):
        store.add([f"{i:064d}"], np.full((1, 4), i, np.float32))
    shards = list(store.folder.glob("*.npz"))
    assert len(shards) == 1  # merged: one file with every row
    assert len(store.load({"a" * 64, f"{MAX_SHARDS - 1:064d}"})) == 2
    (store.folder / "broken.npz").write_bytes(b"not a zip")
    assert np.array_equal(store.load({"c" * 64})["c" * 64], rows[2])  # a damaged shard is passed over
    store.add(["d" * 64], np.zeros((1, 3, 3, 4), np.float32))  # a map, not a vector: not kept image by image
    assert "d" * 64 not in store.load({"d" * 64})
    # issue 36: a shard of another width, and NaN rows, are passed over (computed again), never a crash
    store._write(np.asarray(["e" * 64, "f" * 64], dtype="U64"), np.ones((2, 7), np.float32))
    store._write(np.asarray(["g" * 64], dtype="U64"), np.full((1, 4), np.nan, np.float32))
    found = store.load({"a" * 64, "b" * 64, "e" * 64, "g" * 64})
    assert sorted(found) == ["a" * 64, "b" * 64] and {len(v) for v in found.values()} == {4}


def test_non_finite_features_are_refused_naming_the_pictures(tmp_path, monkeypatch, capsys):
    """Issue 36: NaN features gave a "finished" run with loss nan whose predictions printed nan."""
    from helpers import run_cli

    from imgclf.training import trainer

    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 6, "b_br": 6}, size=64)
    real = trainer.cached_features

    def poisoned(*args, **kwargs):
        (f_train, y_train), val, from_cache = real(*args, **kwargs)
        f_train = f_train.copy()
        f_train[1] = np.nan
        return (f_train, y_train), val, from_cache

    monkeypatch.setattr(trainer, "cached_features", poisoned)
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--backbone", "squeezenet1_1", "--weights", "none",
                           "--target-size", 64, 64, "--epochs", 1, "--precision", "float32", "--validation-split",
                           0.25, "--runs-dir", tmp_path / "runs", "--name", "r")  # fmt: skip
    assert code == 2 and "not finite" in err and ".png" in err and "Traceback" not in err


def test_an_unreadable_new_file_falls_back_to_the_whole_pass_that_names_it(tmp_path, monkeypatch, counted):
    monkeypatch.setenv("IMGCLF_HOME", str(tmp_path / "home"))
    data = write_class_folder(tmp_path / "d", {"a_tl": 10, "b_br": 10}, size=64)
    ImageClassifier(**{**SETTINGS, "validation_split": 0.0}).fit(data, verbose=0)
    Image.new("RGB", (64, 64), (10, 200, 30)).save(data / "a_tl" / "new.png")
    (data / "b_br" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    clf = ImageClassifier(**{**SETTINGS, "validation_split": 0.0}).fit(data, verbose=0)
    assert counted[:2] == [20, 1]  # the per-image pass over the two new files: one decoded
    assert counted[2:] == [21]  # so the whole pass, which leaves the broken file out and says so
    assert [path for path, _ in clf.skipped_.items()] == [str(data / "b_br" / "broken.png")]
    assert len(clf.history_) == 1 and clf.features_from_cache_ is False
