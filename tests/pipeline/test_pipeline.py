"""The tf.data pipeline: shapes, dtypes, targets, caching and seeded shuffling."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.data.folders import load_folder
from imgclf.data.images import ImageSpec, load_image
from imgclf.errors import ImgclfError
from imgclf.pipeline.sources import samples_dataset
from imgclf.pipeline.tfdata import encode_labels, image_dataset, resolve_class_mode


def _batches(ds):
    return [tuple(np.asarray(t) for t in b) if isinstance(b, tuple) else np.asarray(b) for b in ds]


@pytest.mark.parametrize(
    "class_mode,target_shape,target_dtype",
    [("binary", (5, 1), np.float32), ("categorical", (5, 2), np.float32), ("sparse", (5,), np.int32)],
)
def test_shapes_and_dtypes(split_data, class_mode, target_shape, target_dtype):
    ds = load_folder(split_data)
    data = samples_dataset(ds.train, image=ImageSpec((32, 40)), class_mode=class_mode, num_classes=2, batch_size=5)
    batches = _batches(data)
    images, targets = batches[0]
    assert images.shape == (5, 32, 40, 3) and images.dtype == np.uint8
    assert targets.shape == target_shape and targets.dtype == target_dtype
    assert len(batches) == 10 and batches[-1][0].shape[0] == 3  # 48 images: 9 full batches + 3
    assert sum(b[0].shape[0] for b in batches) == len(ds.train)


def test_grayscale_images(split_data):
    ds = load_folder(split_data)
    images = _batches(image_dataset(ds.train.paths[:4], image=ImageSpec((20, 20), "grayscale"), batch_size=4))[0]
    assert images.shape == (4, 20, 20, 1) and images.dtype == np.uint8


def test_images_are_exactly_load_image(split_data):
    ds = load_folder(split_data)
    paths = ds.train.paths[:6]
    got = np.concatenate(_batches(image_dataset(paths, image=ImageSpec((30, 30)), batch_size=4)))
    want = np.stack([load_image(p, (30, 30)) for p in paths])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cache", [True, False, "memory", "disk", "none"])
def test_cache_does_not_change_content(split_data, cache, tmp_path):
    ds = load_folder(split_data)
    labels = encode_labels(ds.train.labels, "sparse", 2)
    data = image_dataset(ds.train.paths, labels=labels, image=ImageSpec((24, 24)), batch_size=8, cache=cache,
                         cache_file=str(tmp_path / "train"))  # fmt: skip
    for _ in range(2):  # the second pass reads the cache back
        got = _batches(data)
        images = np.concatenate([b[0] for b in got])
        np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), ds.train.labels)
        np.testing.assert_array_equal(images[5], load_image(ds.train.paths[5], (24, 24)))
    assert bool(list(tmp_path.glob("train*"))) == (cache == "disk")  # only a disk cache writes a file


@pytest.mark.parametrize("cache", ["memory", "none", "disk"])
def test_shuffle_is_seeded_and_reshuffles(split_data, cache, tmp_path):
    ds = load_folder(split_data)
    labels = np.arange(len(ds.train), dtype=np.int32)  # targets = sample index, to read the order

    def order(seed):
        data = image_dataset(
            ds.train.paths, labels=labels, image=ImageSpec((8, 8)), batch_size=48, shuffle=True, seed=seed, cache=cache,
            cache_file=str(tmp_path / f"c{seed}-{len(list(tmp_path.iterdir()))}"),
        )  # fmt: skip
        return [np.asarray(b[1]).tolist() for _ in range(2) for b in data]

    first = order(seed=7)
    assert first == order(seed=7)  # same seed, same stream
    assert first != order(seed=8)
    assert first[0] != first[1]  # each epoch reshuffled
    assert sorted(first[0]) == list(range(48))  # a permutation: nothing lost or repeated


def test_resolve_class_mode():
    assert resolve_class_mode("auto", 2) == "binary"
    assert resolve_class_mode("auto", 5) == "categorical"
    assert resolve_class_mode("sparse", 2) == "sparse"
    with pytest.raises(ImgclfError, match="exactly 2 classes. Received: 3"):
        resolve_class_mode("binary", 3)
    with pytest.raises(ImgclfError, match="class_mode must be one of"):
        resolve_class_mode("multi", 3)


def test_training_datasets_run_without_the_autotuner(split_data):
    # tf.data's autotuner holds the end of every pass until its next back-off wake-up (bench/README.md), so
    # imgclf's datasets turn it off and set parallelism and prefetching themselves.
    from imgclf import ImageClassifier

    clf = ImageClassifier(target_size=(32, 32), batch_size=4, augment="course")
    train, val = clf.training_datasets(load_folder(split_data))
    for ds in (train, val):
        assert ds.options().autotune.enabled is False
    assert next(iter(val))[0].shape[0] == 16  # validation batches: at least 100 images, here all 16
    assert next(iter(train))[0].shape[0] == 4


def test_cache_setting_and_automatic_choice(tmp_path, monkeypatch):
    from imgclf.pipeline import tfdata as pipeline

    assert [pipeline.check_cache(v) for v in (True, False, "TRUE", "false", "disk")] == [
        "memory",
        "none",
        "memory",
        "none",
        "disk",
    ]
    with pytest.raises(ImgclfError, match=r"cache must be one of .*Received: 'ram'"):
        pipeline.check_cache("ram")
    with pytest.raises(ImgclfError, match="needs a cache_file"):
        image_dataset(["x.png"], image=ImageSpec((8, 8)), cache="disk")
    # 1,000 images of 100x100x3 = 30 MB: memory when half the available memory holds them, else disk, else none
    monkeypatch.setattr(pipeline, "available_memory", lambda: 10**9)
    assert pipeline.choose_cache("auto", 1000, ImageSpec((100, 100)), tmp_path).mode == "memory"
    monkeypatch.setattr(pipeline, "available_memory", lambda: 50 * 10**6)
    choice = pipeline.choose_cache("auto", 1000, ImageSpec((100, 100)), tmp_path)
    assert choice.mode == "disk" and "0.03 GB" in choice.reason and choice.bytes == 30_000_000
    assert pipeline.choose_cache("auto", 1000, ImageSpec((100, 100)), None).mode == "none"  # nowhere to write
    monkeypatch.setattr(pipeline.shutil, "disk_usage", lambda path: type("U", (), {"free": 10**6})())
    assert pipeline.choose_cache("auto", 1000, ImageSpec((100, 100)), tmp_path).mode == "none"
    assert pipeline.choose_cache("memory", 1000, ImageSpec((100, 100)), tmp_path).mode == "memory"  # the setting rules


def test_fit_with_a_disk_cache_leaves_no_cache_behind(split_data, tmp_path, capsys):
    from imgclf import ImageClassifier

    run = tmp_path / "run"
    clf = ImageClassifier(target_size=(32, 32), batch_size=8, epochs=2, cache="disk", augment="course")
    clf.fit(split_data, run_dir=run)
    assert clf.cache_ == {"train": "disk", "validation": "disk"} and len(clf.history_) == 2
    assert "kept in a cache file on disk" in capsys.readouterr().err
    assert not list(run.glob(".decoded-*")) and (run / "model.keras").is_file()
    from imgclf.training.inputs import decoded_cache_dir

    (run / ".decoded-stale").mkdir()  # what a killed run leaves: removed by the next training in that folder
    with decoded_cache_dir(run) as folder:
        assert folder.parent == run and not (run / ".decoded-stale").exists()
