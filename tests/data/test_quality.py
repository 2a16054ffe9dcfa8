"""Image quality in doctor: blurred, dark, bright, near-blank and oddly shaped pictures are flagged with their measured
statistic; sharp, well-exposed ones are not; nothing is quarantined for quality alone."""

from __future__ import annotations

import json

import numpy as np
from helpers import run_cli
from PIL import Image, ImageFilter

from imgclf.data.quality import BLUR_VARIANCE, DARK_MEAN, quality_problems, statistics


def photo(seed: int = 0, size=(160, 120), low: int = 40, high: int = 220) -> Image.Image:
    """A sharp, textured, well-exposed picture: random blocks of 8 px with fine noise on top."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(low, high, (size[1] // 8 + 1, size[0] // 8 + 1, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((8, 8, 1), np.uint8))[: size[1], : size[0]]
    noise = rng.integers(-15, 16, pixels.shape)
    return Image.fromarray(np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8))


def cases() -> dict[str, Image.Image]:
    return {
        "sharp": photo(0),
        "blurry": photo(1).filter(ImageFilter.GaussianBlur(8)),
        "dark": photo(2, low=0, high=40),
        "bright": photo(3, low=212, high=256),
        "blank": Image.new("RGB", (160, 120), (128, 128, 128)),
        "wide": photo(4, size=(480, 100)),
    }


def test_each_problem_from_its_statistic():
    found = {name: quality_problems(statistics(im)) for name, im in cases().items()}
    assert found == {"sharp": [], "blurry": ["blurry"], "dark": ["dark"], "bright": ["bright"],
                     "blank": ["low_information"], "wide": ["odd_aspect"]}  # fmt: skip
    sharp, blurry = statistics(cases()["sharp"]), statistics(cases()["blurry"])
    assert blurry["laplacian_variance"] < BLUR_VARIANCE < sharp["laplacian_variance"]
    assert statistics(cases()["dark"])["mean"] < DARK_MEAN < sharp["mean"]


def test_doctor_reports_quality_and_never_quarantines_for_it(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    for label, names in (("a", ["sharp", "blurry", "dark"]), ("b", ["bright", "blank", "wide"])):
        (data / label).mkdir(parents=True)
        for name in names:
            cases()[name].save(data / label / f"{name}.png")
        photo(9).save(data / label / "extra.png")
    code, out, err = run_cli(monkeypatch, capsys, "doctor", data, "--json")
    assert code == 0, err
    report = json.loads(out)
    files = {f["path"]: f for f in report["files"]}
    expected = {"a/blurry.png": "blurry", "a/dark.png": "dark", "b/bright.png": "bright",
                "b/blank.png": "low_information", "b/wide.png": "odd_aspect"}  # fmt: skip
    for path, problem in expected.items():
        assert problem in files[path]["problems"] and problem in report["problems"], path
    for path in ("a/sharp.png", "a/extra.png", "b/extra.png"):
        assert not set(files[path]["problems"]) & set(expected.values()), path
    assert files["a/blurry.png"]["quality"]["laplacian_variance"] < BLUR_VARIANCE
    code, _, err = run_cli(monkeypatch, capsys, "doctor", data, "--fix")
    assert code == 0 and not (data / ".quarantine").exists()  # usable pictures stay where they are
