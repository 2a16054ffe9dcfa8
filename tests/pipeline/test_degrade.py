"""Image-quality augmentation: downscale then back, JPEG re-encoding; settings, seeding, training-only."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from imgclf import ImageClassifier
from imgclf.errors import ImgclfError
from imgclf.pipeline.augment import Augmentation, augment_batch, make_augmentation
from imgclf.pipeline.degrade import degrade_batch

SEED = tf.constant([3, 4], tf.int64)


def checkerboard(n=4, size=64, channels=3) -> np.ndarray:
    """uint8 ``(n, size, size, channels)``: 1-pixel black/white squares, the finest detail an image can hold."""
    board = ((np.indices((size, size)).sum(axis=0) % 2) * 255).astype(np.uint8)
    return np.repeat(np.repeat(board[None, ..., None], n, axis=0), channels, axis=-1)


def smooth(n=4, size=64) -> np.ndarray:
    """uint8 ``(n, size, size, 3)``: gentle gradients, which survive a downscale almost unchanged."""
    y, x = np.indices((size, size))
    img = np.stack([x * 255 / (size - 1), y * 255 / (size - 1), np.full_like(x, 128.0)], axis=-1)
    return np.repeat(img[None].round().astype(np.uint8), n, axis=0)


def test_downscale_removes_fine_detail_and_keeps_coarse():
    board = degrade_batch(tf.constant(checkerboard()), SEED, downscale_range=(0.5, 0.5)).numpy()
    assert board.shape == (4, 64, 64, 3) and board.dtype == np.uint8
    assert np.abs(board.astype(int) - 128).mean() < 20  # the antialiased shrink averages the squares to grey
    grad = smooth()
    out = degrade_batch(tf.constant(grad), SEED, downscale_range=(0.5, 0.5)).numpy()
    assert np.abs(out.astype(int) - grad).mean() < 3


def test_downscale_of_one_is_identity():
    x = checkerboard()
    np.testing.assert_array_equal(degrade_batch(tf.constant(x), SEED, downscale_range=(1.0, 1.0)).numpy(), x)


def test_jpeg_matches_pillows_encoding_at_that_quality():
    x = smooth(n=2)
    x[:, 20:40, 20:40] = 0  # an edge, for the compression to blur
    out = degrade_batch(tf.constant(x), SEED, jpeg_quality_range=(20, 20)).numpy()
    buffer = io.BytesIO()
    Image.fromarray(x[0]).save(buffer, "JPEG", quality=20)
    pillow = np.asarray(Image.open(buffer)).astype(int)
    assert not np.array_equal(out[0], x[0])
    assert np.abs(out[0].astype(int) - pillow).mean() < 2  # the same codec at the same quality, up to decoder rounding
    assert np.abs(out[0].astype(int) - x[0]).mean() > np.abs(pillow - x[0]).mean() / 2


def test_each_image_draws_its_own_degradation_and_the_seed_repeats_it():
    x = np.random.default_rng(0).integers(0, 256, (8, 48, 64, 3), dtype=np.uint8)
    first = degrade_batch(tf.constant(x), SEED, downscale_range=(0.3, 1.0), jpeg_quality_range=(10, 95)).numpy()
    again = degrade_batch(tf.constant(x), SEED, downscale_range=(0.3, 1.0), jpeg_quality_range=(10, 95)).numpy()
    np.testing.assert_array_equal(first, again)
    assert len({image.tobytes() for image in first}) == 8
    other = degrade_batch(tf.constant(x), tf.constant([5, 6], tf.int64), downscale_range=(0.3, 1.0)).numpy()
    assert not np.array_equal(first, other)


def test_grayscale_and_inside_augment_batch():
    aug = Augmentation(horizontal_flip=True, downscale_range=(0.5, 0.5), jpeg_quality_range=(50, 50))
    out = augment_batch(tf.constant(checkerboard(channels=1)), aug, SEED).numpy()
    assert out.shape == (4, 64, 64, 1) and np.abs(out.astype(int) - 128).mean() < 30
    assert not aug.is_identity and aug.degrades and not Augmentation(horizontal_flip=True).degrades


def test_settings_scalars_and_round_trip():
    aug = make_augmentation({"downscale_range": 0.4, "jpeg_quality_range": 60})
    assert aug.downscale_range == (0.4, 1.0) and aug.jpeg_quality_range == (60, 100)
    assert make_augmentation(aug.to_dict()) == aug
    assert aug.changes() == {"downscale_range": [0.4, 1.0], "jpeg_quality_range": [60, 100]}


@pytest.mark.parametrize(
    "value,match",
    [
        ({"downscale_range": [0.5, 1.5]}, r"downscale_range must lie in \(0, 1\]. Received: \[0.5, 1.5\]"),
        ({"downscale_range": 0}, "downscale_range must be a float or"),
        ({"jpeg_quality_range": [0, 90]}, r"1 <= low <= high <= 100. Received: \[0, 90\]"),
        ({"jpeg_quality_range": [50, 101]}, "jpeg_quality_range must be"),
        ({"jpeg_quality_range": [50.5, 90]}, "jpeg_quality_range must be"),
        ({"jpeg_quality_range": True}, "jpeg_quality_range must be"),
    ],
)
def test_bad_settings(value, match):
    with pytest.raises(ImgclfError, match=match):
        make_augmentation(value)


def test_degrading_turns_off_cached_features_but_never_touches_validation(split_data):
    clf = ImageClassifier(model="course_small", target_size=(24, 24), batch_size=8,
                          augment={"downscale_range": 0.3, "jpeg_quality_range": 10})  # fmt: skip
    from imgclf.data.folders import load_folder
    from imgclf.data.images import load_image

    ds = load_folder(split_data)
    train, validation = clf.training_datasets(ds)
    val_images = np.concatenate([np.asarray(b[0]) for b in validation])
    np.testing.assert_array_equal(val_images, np.stack([load_image(p, (24, 24)) for p in ds.validation.paths]))
    plain = np.stack([load_image(p, (24, 24)) for p in ds.train.paths])
    seen = np.concatenate([np.asarray(b[0]) for b in train])
    assert len(seen) == len(plain)
    assert not any((s == p).all() for s in seen for p in plain)  # every training image changed
