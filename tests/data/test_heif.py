"""Phone photos: HEIC/HEIF read through pillow-heif (the heif extra), AVIF through Pillow; doctor counts them; a
missing extra is one line naming it."""

import json
import sys

import numpy as np
import pytest
from helpers import run_cli, square_image

from imgclf.data import files


def _heic_classes(root, count=8):
    pillow_heif = pytest.importorskip("pillow_heif", reason="the heif extra (pillow-heif) is not installed")
    for c, corner in (("a_tl", "tl"), ("b_br", "br")):
        (root / c).mkdir(parents=True)
        for i in range(count):
            pillow_heif.from_pillow(square_image(corner, 48, 10 * i)).save(root / c / f"IMG_{i:04d}.HEIC", quality=95)
    return root


def test_heic_photos_train_and_doctor_counts_them(tmp_path, monkeypatch, capsys):
    from imgclf.data.images import load_image

    data = _heic_classes(tmp_path / "phone")
    pixels = load_image(data / "a_tl" / "IMG_0000.HEIC", (48, 48))
    assert pixels.shape == (48, 48, 3) and pixels[:8, :8].mean() > pixels[-8:, -8:].mean() + 60  # the bright corner
    code, out, _ = run_cli(monkeypatch, capsys, "doctor", data, "--quick", "--json")
    report = json.loads(out)
    assert code == 0 and report["counts"]["all"] == {"a_tl": 8, "b_br": 8} and not report["unusable"]
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--model", "course_small", "--target-size", 32, 32,
                           "--epochs", 1, "--batch-size", 8, "--runs-dir", tmp_path / "runs",
                           "--no-calibrate")  # fmt: skip
    assert code == 0 and "Found 12 training images" in err, err[-2000:]


def test_avif_is_an_image_file(tmp_path):
    from PIL import Image, features

    if not features.check("avif"):
        pytest.skip("this Pillow reads no AVIF")
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(tmp_path / "a.avif")
    assert files.is_image_file(tmp_path / "a.avif") and files.unreadable_reason(tmp_path / "a.avif") is None


def test_a_heic_photo_without_the_extra_is_one_line_naming_it(tmp_path, monkeypatch):
    from imgclf.errors import ImgclfError

    monkeypatch.setitem(sys.modules, "pillow_heif", None)  # not installed
    files._register_heif.cache_clear()
    try:
        with pytest.raises(ImgclfError, match=r"pip install 'imgclf\[heif\]'"):
            files.needs_heif(tmp_path / "IMG_0001.heic")
        files.needs_heif(tmp_path / "photo.jpg")  # other pictures need nothing
    finally:
        files._register_heif.cache_clear()
