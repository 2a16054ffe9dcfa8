"""Augmentation: the geometry of each transform, fill modes, pixel transforms, seeding, training-only."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from imgclf import ImageClassifier
from imgclf.data.folders import load_folder
from imgclf.data.images import ImageSpec, load_image
from imgclf.errors import ImgclfError
from imgclf.pipeline.augment import PRESETS, Augmentation, affine_matrices, augment_batch, make_augmentation, warp
from imgclf.pipeline.tfdata import image_dataset

H = W = 41  # odd, so the centre is the pixel (20, 20)


def marker_image(x: int, y: int) -> np.ndarray:
    img = np.zeros((1, H, W, 1), np.float32)
    img[0, y, x, 0] = 255
    return img


def moved(x: int, y: int, **params) -> tuple[int, int]:
    """Where the single bright pixel at (x, y) lands under the given transform parameters."""
    base = dict(theta=[0.0], tx=[0.0], ty=[0.0], shear=[0.0], zx=[1.0], zy=[1.0], flip_h=[False], flip_v=[False])
    base.update({k: [v] for k, v in params.items()})
    out = warp(marker_image(x, y), affine_matrices(H, W, **base)).numpy()[0, ..., 0]
    assert out.max() > 200  # the marker survives (one bilinear interpolation, on the pixel grid here)
    row, col = np.unravel_index(out.argmax(), out.shape)
    return int(col), int(row)


@pytest.mark.parametrize(
    "params,start,end",
    [
        ({}, (30, 20), (30, 20)),
        ({"theta": 90.0}, (30, 20), (20, 10)),  # right of centre → above centre: counter-clockwise
        ({"theta": -90.0}, (30, 20), (20, 30)),
        ({"theta": 180.0}, (30, 25), (10, 15)),
        ({"tx": 5.0, "ty": 3.0}, (30, 20), (35, 23)),  # shift right and down
        ({"zx": 0.5, "zy": 0.5}, (30, 25), (40, 30)),  # zoom < 1 enlarges about the centre
        ({"zx": 2.0, "zy": 2.0}, (30, 28), (25, 24)),  # zoom > 1 shrinks
        ({"flip_h": True}, (30, 25), (10, 25)),
        ({"flip_v": True}, (30, 25), (30, 15)),
        ({"shear": 45.0}, (20, 30), (30, 30)),  # 10 rows below centre → 10 px right
        ({"shear": 45.0}, (30, 20), (30, 20)),  # on the centre row: unmoved
    ],
)
def test_marker_moves_where_the_transform_says(params, start, end):
    assert moved(*start, **params) == end


def test_composed_transform_is_one_warp():
    # rotate 90 then shift right 4: (30, 20) → (20, 10) → (24, 10)
    assert moved(30, 20, theta=90.0, tx=4.0) == (24, 10)


def _shifted_right(fill_mode: str, cval: float = 0.0) -> np.ndarray:
    img = np.tile(np.arange(10, 10 + W * 5, 5, dtype=np.float32), (H, 1))[None, ..., None]  # column ramp
    m = affine_matrices(H, W, theta=[0.0], tx=[5.0], ty=[0.0], shear=[0.0], zx=[1.0], zy=[1.0],
                        flip_h=[False], flip_v=[False])  # fmt: skip
    return img[0, 0, :, 0], warp(img, m, fill_mode, cval).numpy()[0, 0, :, 0]


def test_fill_nearest():
    src, out = _shifted_right("nearest")
    np.testing.assert_allclose(out[:5], src[0])  # aaaa|abcd
    np.testing.assert_allclose(out[5:], src[:-5])


def test_fill_constant():
    _, out = _shifted_right("constant", cval=77)
    np.testing.assert_allclose(out[:5], 77)


def test_fill_wrap():
    src, out = _shifted_right("wrap")
    np.testing.assert_allclose(out[:5], src[-5:])  # abcd|abcd


def test_fill_reflect():
    src, out = _shifted_right("reflect")
    np.testing.assert_allclose(out[:5], src[:5][::-1])  # dcba|abcd


def _random_matrices(n: int, seed: int):
    rng = np.random.default_rng(seed)
    return affine_matrices(H, W, theta=rng.uniform(-40, 40, n), tx=rng.uniform(-8, 8, n), ty=rng.uniform(-8, 8, n),
                           shear=rng.uniform(-20, 20, n), zx=rng.uniform(0.8, 1.2, n), zy=rng.uniform(0.8, 1.2, n),
                           flip_h=rng.random(n) < 0.5, flip_v=rng.random(n) < 0.5)  # fmt: skip


@pytest.mark.parametrize("fill_mode", ["nearest", "constant"])
def test_warp_matches_tensorflows_projective_transform_kernel(fill_mode):
    # The XLA-compiled warp computes what ImageProjectiveTransformV3 (bilinear) does, for under a third of the CPU.
    images = np.random.default_rng(1).integers(0, 256, (6, H, W, 3), dtype=np.uint8)
    matrices = _random_matrices(6, 2)
    inverse = tf.linalg.inv(matrices)
    inverse = tf.reshape(inverse / inverse[:, 2:3, 2:3], (-1, 9))[:, :8]
    expected = tf.raw_ops.ImageProjectiveTransformV3(
        images=tf.cast(images, tf.float32), transforms=inverse, output_shape=[H, W],
        fill_value=tf.constant(31.0), interpolation="BILINEAR", fill_mode=fill_mode.upper(),
    ).numpy()  # fmt: skip
    got = warp(images, matrices, fill_mode, cval=31.0).numpy()
    np.testing.assert_allclose(got, expected, atol=0.02)


def test_nearest_interpolation_only_copies_pixels():
    images = np.random.default_rng(3).integers(0, 256, (4, H, W, 3), dtype=np.uint8)
    out = warp(images, _random_matrices(4, 4), "reflect", order=0).numpy()
    for src, dst in zip(images, out):
        colours = {tuple(p) for p in src.reshape(-1, 3)}
        assert all(tuple(p) in colours for p in dst.reshape(-1, 3).astype(np.uint8))  # no new colours
    bilinear = warp(images, _random_matrices(4, 4), "reflect", order=1).numpy()
    assert np.abs(bilinear - out).mean() > 1  # and it is not what bilinear gives


def _batch(n=8, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 24, 32, 3), dtype=np.uint8)


def test_horizontal_flip_is_exact_mirror_or_copy():
    x = _batch()
    out = augment_batch(tf.constant(x), Augmentation(horizontal_flip=True), tf.constant([1, 2], tf.int64)).numpy()
    mirrored = [bool(np.array_equal(o, i[:, ::-1])) for o, i in zip(out, x)]
    same = [bool(np.array_equal(o, i)) for o, i in zip(out, x)]
    assert all(m or s for m, s in zip(mirrored, same))
    assert any(mirrored) and any(same)


def test_brightness_multiplies():
    x = _batch()
    out = augment_batch(tf.constant(x), Augmentation(brightness_range=(0.5, 0.5)), tf.constant([0, 0], tf.int64))
    np.testing.assert_allclose(out.numpy(), np.round(x * 0.5), atol=1)


def test_channel_shift_same_for_all_channels_and_clipped():
    x = np.full((4, 8, 8, 3), 100, np.uint8)
    x[:, 0, 0] = (50, 150, 200)
    out = augment_batch(tf.constant(x), Augmentation(channel_shift_range=30), tf.constant([3, 4], tf.int64)).numpy()
    for o in out.astype(int):
        shift = o[4, 4, 0] - 100
        assert -30 <= shift <= 30 and shift != 0
        assert (o[4, 4] == 100 + shift).all()  # every channel moved by the same amount
        assert o.min() >= 50 and o.max() <= 200  # clipped to the image's own range


def test_identity_changes_nothing():
    x = _batch()
    out = augment_batch(tf.constant(x), Augmentation(), tf.constant([0, 0], tf.int64))
    np.testing.assert_array_equal(out.numpy(), x)


def test_rotation_stays_in_range():
    # A 90-degree rotation of a centred vertical bar would lie flat; with rotation_range=10 it stays upright.
    x = np.zeros((16, 41, 41, 1), np.uint8)
    x[:, 5:36, 19:22] = 255
    out = augment_batch(tf.constant(x), Augmentation(rotation_range=10), tf.constant([5, 6], tf.int64)).numpy()
    rows = (out[..., 0] > 128).any(axis=2).sum(axis=1)
    cols = (out[..., 0] > 128).any(axis=1).sum(axis=1)
    assert (rows > cols).all()
    assert len({o.tobytes() for o in out}) == 16  # each image got its own angle


def _stream(paths, aug, seed, epochs=2):
    ds = image_dataset(paths, image=ImageSpec((24, 24)), batch_size=8, shuffle=False, seed=seed, augment=aug)
    return [np.asarray(b) for _ in range(epochs) for b in ds]


def test_seeded_stream_is_reproducible_and_changes_each_epoch(split_data):
    paths = load_folder(split_data).train.paths[:16]
    aug = make_augmentation("course")
    first = _stream(paths, aug, seed=11)
    again = _stream(paths, aug, seed=11)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], first[2])  # epoch 2 draws new transforms for the same images
    assert not np.array_equal(first[0], _stream(paths, aug, seed=12)[0])


def test_validation_is_never_augmented(split_data):
    clf = ImageClassifier(
        model="course_small", target_size=(24, 24), batch_size=8, augment={"brightness_range": [0.1, 0.1]}
    )
    ds = load_folder(split_data)
    train, validation = clf.training_datasets(ds)
    val_images = np.concatenate([np.asarray(b[0]) for b in validation])
    want = np.stack([load_image(p, (24, 24)) for p in ds.validation.paths])
    np.testing.assert_array_equal(val_images, want)
    train_images = np.concatenate([np.asarray(b[0]) for b in train])
    assert train_images.max() <= 26  # brightness x0.1 applied to every training image


def test_augmentation_changes_training_but_not_prediction(split_data):
    clf = ImageClassifier(model="course_small", target_size=(24, 24), epochs=1, batch_size=8, augment="course")
    clf.fit(split_data, verbose=0)
    path = load_folder(split_data).validation.paths[0]
    np.testing.assert_array_equal(clf.predict_proba(path), clf.predict_proba(path))  # no randomness at predict


def test_presets_and_settings():
    course = make_augmentation("course")
    assert course == Augmentation(**PRESETS["course"])
    assert course.zoom_range == pytest.approx((0.8, 1.2)) and course.shear_range == 0.2  # degrees, as in Keras
    assert make_augmentation("none").is_identity and make_augmentation(None).is_identity
    assert make_augmentation("course", rotation_range=10, horizontal_flip=None).rotation_range == 10
    assert make_augmentation({"zoom_range": [0.5, 1.5]}).zoom_range == (0.5, 1.5)
    assert make_augmentation(course.to_dict()) == course
    assert course.changes()["rotation_range"] == 40 and "cval" not in course.changes()


@pytest.mark.parametrize(
    "value,match",
    [
        ("heavy", "augment must be one of"),
        ({"rotation": 10}, "unknown augmentation setting 'rotation'"),
        ({"fill_mode": "mirror"}, "fill_mode must be one of"),
        ({"interpolation_order": 3}, r"interpolation_order must be 0 \(nearest\) or 1 \(bilinear\). Received: 3"),
        ({"rotation_range": -5}, r"rotation_range must be a number in \[0.0, 360"),
        ({"zoom_range": [1.2, 0.8]}, "zoom_range must be a float or"),
        ({"brightness_range": [0.0, 1.0]}, "brightness_range must be"),
        ({"horizontal_flip": "yes"}, "horizontal_flip must be true or false"),
    ],
)
def test_bad_augmentation(value, match):
    with pytest.raises(ImgclfError, match=match):
        make_augmentation(value)
