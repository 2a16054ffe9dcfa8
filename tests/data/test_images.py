"""The shared preprocessing function: formats, modes, EXIF orientation, resizing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imgclf.data.images import check_target_size, load_image
from imgclf.errors import ImgclfError


@pytest.mark.parametrize("ext", ["jpg", "png", "bmp", "gif", "webp"])
def test_formats_give_uint8_rgb(tmp_path, ext):
    arr = np.zeros((30, 40, 3), np.uint8)
    arr[:, :20] = (250, 10, 10)  # left half red
    path = tmp_path / f"x.{ext}"
    Image.fromarray(arr).save(path)
    out = load_image(path, (15, 20))
    assert out.shape == (15, 20, 3) and out.dtype == np.uint8
    assert out[7, 3, 0] > 200 and out[7, 3, 1] < 60  # still red on the left
    assert out[7, 16].max() < 40  # still black on the right


def test_grayscale_mode(tmp_path):
    Image.new("RGB", (10, 10), (255, 255, 255)).save(tmp_path / "w.png")
    out = load_image(tmp_path / "w.png", (8, 8), "grayscale")
    assert out.shape == (8, 8, 1) and out.dtype == np.uint8 and out.min() == 255


def test_exif_orientation_applied(tmp_path):
    # Stored 40 wide x 20 high with a marker top-left; orientation 6 means "rotate 90 degrees
    # clockwise to display", so the displayed image is 20 wide x 40 high with the marker top-right.
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:5, :5] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    out = load_image(path, (40, 20))
    assert out[:5, -5:].mean() > 200
    assert out[:5, :5].mean() < 50


def test_transparency_composited_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4] = (0, 0, 255, 255)  # top half opaque blue, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png", (8, 8))
    assert tuple(out[0, 0]) == (0, 0, 255)
    assert tuple(out[7, 7]) == (255, 255, 255)


def test_palette_with_transparency(tmp_path):
    im = Image.new("P", (6, 6), 0)
    im.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    im.putpixel((0, 0), 1)
    im.info["transparency"] = 0
    im.save(tmp_path / "p.png", transparency=0)
    out = load_image(tmp_path / "p.png", (6, 6))
    assert tuple(out[0, 0]) == (0, 255, 0) and tuple(out[5, 5]) == (255, 255, 255)


def test_16bit_scaled_not_clipped(tmp_path):
    arr = np.full((4, 4), 32768, np.uint16)  # half of full scale
    Image.fromarray(arr).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png", (4, 4), "grayscale")
    assert 126 <= int(out[0, 0, 0]) <= 129


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (6, 6), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    out = load_image(tmp_path / "anim.gif", (6, 6))
    assert out[..., 0].mean() > 200 and out[..., 2].mean() < 50


def test_large_jpeg_reduced_decode_matches_size(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (600, 800, 3), dtype=np.uint8)).save(tmp_path / "big.jpg")
    out = load_image(tmp_path / "big.jpg", (150, 150))
    assert out.shape == (150, 150, 3)


def test_not_an_image_raises_oserror(tmp_path):
    (tmp_path / "fake.jpg").write_text("<html>not a picture</html>")
    with pytest.raises(OSError):
        load_image(tmp_path / "fake.jpg", (10, 10))


@pytest.mark.parametrize("bad", [(0, 150), (150,), (150, -1), (1.5, 2), "150", None, (True, 3)])
def test_bad_target_size(bad):
    with pytest.raises(ImgclfError, match=r"target_size must be two positive ints .*Received"):
        check_target_size(bad)


def test_target_size_message_names_value():
    with pytest.raises(ImgclfError) as info:
        check_target_size((0, 150))
    assert str(info.value).endswith("Received: (0, 150)")


def test_interpolation_nearest_picks_pixels_bilinear_averages(tmp_path):
    checker = (np.indices((8, 8)).sum(axis=0) % 2 * 255).astype(np.uint8)  # 1-pixel checkerboard
    Image.fromarray(checker, "L").save(tmp_path / "c.png")
    nearest = load_image(tmp_path / "c.png", (4, 4), "grayscale", "nearest")
    bilinear = load_image(tmp_path / "c.png", (4, 4), "grayscale", "bilinear")
    assert set(np.unique(nearest)) <= {0, 255}
    assert 100 < bilinear.mean() < 155 and bilinear.std() < 40  # antialiased: close to flat grey


def test_bad_interpolation():
    from imgclf.data.images import check_interpolation

    with pytest.raises(ImgclfError, match=r"interpolation must be one of \['nearest', 'bilinear'.*Received: 'area'"):
        check_interpolation("area")
