"""The tf.data pipeline: shapes, dtypes, targets, caching and seeded shuffling."""

from __future__ import annotations

import numpy as np
import pytest

from imgclf.data.folders import load_folder
from imgclf.data.images import load_image
from imgclf.errors import ImgclfError
from imgclf.pipeline.dataset import encode_labels, image_dataset, resolve_class_mode, samples_dataset


def _batches(ds):
    return [tuple(np.asarray(t) for t in b) if isinstance(b, tuple) else np.asarray(b) for b in ds]


@pytest.mark.parametrize(
    "class_mode,target_shape,target_dtype",
    [("binary", (5, 1), np.float32), ("categorical", (5, 2), np.float32), ("sparse", (5,), np.int32)],
)
def test_shapes_and_dtypes(split_data, class_mode, target_shape, target_dtype):
    ds = load_folder(split_data)
    data = samples_dataset(
        ds.train, target_size=(32, 40), color_mode="rgb", class_mode=class_mode, num_classes=2, batch_size=5
    )
    batches = _batches(data)
    images, targets = batches[0]
    assert images.shape == (5, 32, 40, 3) and images.dtype == np.uint8
    assert targets.shape == target_shape and targets.dtype == target_dtype
    assert len(batches) == 10 and batches[-1][0].shape[0] == 3  # 48 images: 9 full batches + 3
    assert sum(b[0].shape[0] for b in batches) == len(ds.train)


def test_grayscale_images(split_data):
    ds = load_folder(split_data)
    images = _batches(image_dataset(ds.train.paths[:4], target_size=(20, 20), color_mode="grayscale", batch_size=4))[0]
    assert images.shape == (4, 20, 20, 1) and images.dtype == np.uint8


def test_images_are_exactly_load_image(split_data):
    ds = load_folder(split_data)
    paths = ds.train.paths[:6]
    got = np.concatenate(_batches(image_dataset(paths, target_size=(30, 30), batch_size=4)))
    want = np.stack([load_image(p, (30, 30)) for p in paths])
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cache", [True, False])
def test_cache_does_not_change_content(split_data, cache):
    ds = load_folder(split_data)
    labels = encode_labels(ds.train.labels, "sparse", 2)
    got = _batches(image_dataset(ds.train.paths, labels=labels, target_size=(24, 24), batch_size=8, cache=cache))
    images = np.concatenate([b[0] for b in got])
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), ds.train.labels)
    np.testing.assert_array_equal(images[5], load_image(ds.train.paths[5], (24, 24)))


@pytest.mark.parametrize("cache", [True, False])
def test_shuffle_is_seeded_and_reshuffles(split_data, cache):
    ds = load_folder(split_data)
    labels = np.arange(len(ds.train), dtype=np.int32)  # targets = sample index, to read the order

    def order(seed):
        data = image_dataset(
            ds.train.paths, labels=labels, target_size=(8, 8), batch_size=48, shuffle=True, seed=seed, cache=cache
        )
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
