"""Grad-CAM finds the evidence; feature maps have one tile per channel; crops and TTA."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgclf import ImageClassifier, ImgclfError
from imgclf.data.images import ImageSpec, load_image
from imgclf.explain import feature_maps, filter_tiles, find_last_conv_layer, gradcam
from imgclf.explain.feature_maps import channel_tiles, wrap_tiles, write_feature_maps
from imgclf.pipeline.tta import NUM_VIEWS, tta_views

SIZE = 64
SQUARE = 18  # side of the bright square, in the top-left corner region


def square_or_plain(folder, name, count, seed, square: bool):
    rng = np.random.default_rng(seed)
    (folder / name).mkdir(parents=True, exist_ok=True)
    for i in range(count):
        arr = rng.integers(0, 100, (SIZE, SIZE, 3), dtype=np.uint8)
        if square:
            y, x = rng.integers(2, 10, size=2)
            arr[y : y + SQUARE, x : x + SQUARE] = rng.integers(210, 256, size=3, dtype=np.uint8)
        Image.fromarray(arr).save(folder / name / f"{i:03d}.png")


@pytest.fixture(scope="module")
def square_model(tmp_path_factory):
    """course_small trained to tell 'square' (a bright square near the top-left corner) from 'plain'."""
    root = tmp_path_factory.mktemp("gradcam")
    for split, n, seed in (("train", 40, 0), ("validation", 12, 1)):
        square_or_plain(root / split, "plain", n, seed, square=False)
        square_or_plain(root / split, "square", n, seed + 10, square=True)
    clf = ImageClassifier(model="course_small", target_size=(SIZE, SIZE), epochs=6, batch_size=10, seed=2)
    clf.fit(root, verbose=0)
    assert clf.history_[-1]["val_accuracy"] >= 0.9
    return clf, root


def test_gradcam_peak_on_the_square(square_model):
    clf, root = square_model
    paths = sorted((root / "validation" / "square").glob("*.png"))
    x = clf.load_images(paths)
    maps, chosen = gradcam(clf.model_, x)
    assert maps.shape == (len(paths), SIZE, SIZE) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert (chosen == list(clf.classes_).index("square")).all()
    on_square = 0
    for m in maps:
        y, x_ = np.unravel_index(m.argmax(), m.shape)
        on_square += int(y < 2 + 10 + SQUARE and x_ < 2 + 10 + SQUARE)  # inside the region squares occupy
    assert on_square >= 0.8 * len(paths)


def test_gradcam_layer_choice_and_errors(square_model):
    clf, root = square_model
    assert find_last_conv_layer(clf.model_) == "conv_3"
    x = clf.load_images(sorted((root / "validation" / "square").glob("*.png"))[:2])
    maps, chosen = gradcam(clf.model_, x, class_index=0, layer="conv_2")
    assert maps.shape == (2, SIZE, SIZE) and (chosen == 0).all()
    with pytest.raises(ImgclfError, match="layer 'nope' is not in model"):
        gradcam(clf.model_, x, layer="nope")
    with pytest.raises(ImgclfError, match="no spatial"):
        gradcam(clf.model_, x, layer="dense")


def test_feature_maps_one_tile_per_channel(square_model, tmp_path):
    clf, root = square_model
    image = clf.load_images([sorted((root / "validation" / "square").glob("*.png"))[0]])[0]
    grids = feature_maps(clf.model_, image)
    assert list(grids) == ["conv_1", "pool_1", "conv_2", "pool_2", "conv_3", "pool_3"]
    for name, grid in grids.items():
        _, h, w, channels = clf.model_.get_layer(name).output.shape
        assert grid.shape == (h, w * channels) and grid.dtype == np.uint8
    assert filter_tiles(clf.model_).shape == (16, 3, 3, 3)
    files = write_feature_maps(clf.model_, image, tmp_path / "fm")
    assert files[0].name == "overview.png" and len(files) == 6 + 2


def test_channel_tiles_standardised():
    a = np.zeros((4, 5, 3), np.float32)
    a[..., 1] = np.arange(20).reshape(4, 5)  # channel 1 varies; channels 0 and 2 are flat
    grid = channel_tiles(a)
    assert grid.shape == (4, 15)
    assert (grid[:, :5] == 128).all() and (grid[:, 10:] == 128).all()  # flat channel → mid-grey
    tile = grid[:, 5:10].astype(float)
    assert abs(tile.mean() - 128) < 2 and tile.min() < 60 and tile.max() > 200


def test_crop_before_resize(tmp_path):
    arr = np.zeros((40, 80, 3), np.uint8)
    arr[:, :40] = (255, 0, 0)
    arr[:, 40:] = (0, 0, 255)
    Image.fromarray(arr).save(tmp_path / "rb.png")
    left = load_image(tmp_path / "rb.png", (10, 10), crop=(0, 0, 40, 40))
    assert (left[..., 0] == 255).all() and (left[..., 2] == 0).all()
    with pytest.raises(ImgclfError, match=r"crop must be x,y,w,h in pixels inside the 80x40 image. Received: \(50"):
        load_image(tmp_path / "rb.png", (10, 10), crop=(50, 0, 40, 40))


def test_tta_views_and_average(square_model, tmp_path):
    clf, root = square_model
    path = sorted((root / "validation" / "square").glob("*.png"))[0]
    views = tta_views(path, ImageSpec((SIZE, SIZE)))
    assert views.shape == (NUM_VIEWS, SIZE, SIZE, 3)
    np.testing.assert_array_equal(views[0], load_image(path, (SIZE, SIZE)))
    np.testing.assert_array_equal(views[1], views[0][:, ::-1])
    averaged = clf.predict_proba([path], tta=True)
    np.testing.assert_allclose(averaged[0], clf.predict_proba(views).mean(axis=0), rtol=1e-5)
    with pytest.raises(ImgclfError, match="crop and tta apply to image files"):
        clf.predict_proba(views, tta=True)


def test_write_evaluation_gallery_of_mistakes(square_model, tmp_path):
    from imgclf.data.folders import load_folder
    from imgclf.evaluation.interpretation import write_evaluation

    clf, root = square_model
    val = load_folder(root).validation
    wrong = type(val)(val.paths, 1 - val.labels)  # every label swapped: every prediction is now a mistake
    metrics = write_evaluation(clf.predictor(), wrong, tmp_path, count=6)
    losses = [m["loss"] for m in metrics["mistakes"]]
    assert len(losses) == 6 and losses == sorted(losses, reverse=True)
    assert metrics["accuracy"] <= 0.1
    for name in ("mistakes.png", "mistakes_gradcam.png", "confusion_matrix.png", "roc_pr.png"):
        assert (tmp_path / "evaluation" / name).is_file(), name


def test_wrap_tiles_folds_rows_in_order():
    grid = np.repeat(np.arange(20, dtype=np.uint8), 3)[None].repeat(2, axis=0)  # 20 tiles 2x3, tile i == i
    wrapped = wrap_tiles(grid, 3, per_row=8)
    assert wrapped.shape == (3 * 2, 8 * 3)
    assert wrapped[0, 0] == 0 and wrapped[2, 0] == 8 and wrapped[4, 3 * 3] == 19  # row-major order
    assert wrapped[4, 4 * 3] == 255  # blank padding after the last tile
