"""Wrong labels are found: out-of-fold probabilities ranked by cleanlab flag the planted ones first."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from imgclf.curation.suspects import find_label_issues, out_of_fold_probabilities, power_normalise, rank_label_issues

from conftest import SHARED, run_cli, write_class_folder

SQUEEZENET = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def test_planted_flips_in_features_are_ranked_first():
    rng = np.random.default_rng(0)
    centres = np.abs(rng.normal(size=(3, 32))) * 3
    labels = np.repeat(np.arange(3), 40)
    features = np.abs(centres[labels] + rng.normal(size=(120, 32)))  # non-negative, like pooled ReLU outputs
    flipped = np.array([3, 50, 97, 110])
    noisy = labels.copy()
    noisy[flipped] = (labels[flipped] + 1) % 3
    probabilities = out_of_fold_probabilities(features, noisy, folds=5, seed=0)
    assert probabilities.shape == (120, 3) and np.allclose(probabilities.sum(axis=1), 1)
    ranked = rank_label_issues(noisy, probabilities)
    assert set(ranked[: len(flipped)]) == set(flipped)  # the planted ones first
    assert len(ranked) <= 2 * len(flipped)  # and little else
    x = power_normalise(features)
    assert np.allclose(np.linalg.norm(x, axis=1), 1) and (np.sign(x) == np.sign(features)).all()


def write_colour_classes(root, count: int = 24):
    """``root/red`` and ``root/blue``: noisy textures, red- or blue-dominant (what pooled ImageNet features tell
    apart, unlike a square's position)."""
    rng = np.random.default_rng(0)
    for name, channel in (("red", 0), ("blue", 2)):
        (root / name).mkdir(parents=True)
        for i in range(count):
            pixels = rng.integers(0, 90, (48, 48, 3), dtype=np.uint8)
            pixels[..., channel] = rng.integers(150, 256, (48, 48), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:03d}.png")
    return root


@pytest.mark.skipif(not SQUEEZENET.is_file(), reason="needs ../shared/weights (SqueezeNet ImageNet weights)")
def test_suspects_command_finds_planted_wrong_labels(tmp_path, monkeypatch, capsys):
    data = write_colour_classes(tmp_path / "data")
    planted = []
    for i in (3, 11):  # two red pictures filed as blue
        target = data / "blue" / f"planted{i}.png"
        (data / "red" / f"{i:03d}.png").rename(target)
        planted.append(str(target))
    code, out, err = run_cli(monkeypatch, capsys, "suspects", data, "--weights", SQUEEZENET, "--json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["path"] for r in rows[:2]} == set(planted)
    assert all(r["label"] == "blue" and r["suggested"] == "red" and 0 <= r["confidence"] < 0.5 for r in rows[:2])
    assert "Looked at 48 images" in " ".join(err.split()) and "not proven wrong" in err
    again = find_label_issues(data, weights=SQUEEZENET)
    assert again.features_from_cache and [s.path for s in again.suspects[:2]] == [r["path"] for r in rows[:2]]


def test_suspects_refuses_tiny_classes_in_one_line(tmp_path, monkeypatch, capsys):
    data = write_class_folder(tmp_path / "data", {"a_tl": 3, "b_br": 3}, size=32)
    code, _, err = run_cli(monkeypatch, capsys, "suspects", data, "--weights", "none", "--backbone", "squeezenet1_1")
    assert code == 2 and "at least 5 images in every class" in err and "Traceback" not in err
