"""Wrong labels are found: out-of-fold probabilities ranked by cleanlab flag the planted ones first."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED, run_cli, write_class_folder, write_colour_classes
from PIL import Image

from imgclf.curation.suspects import find_label_issues, out_of_fold_probabilities, power_normalise, rank_label_issues

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


@pytest.mark.skipif(not SQUEEZENET.is_file(), reason="needs ../shared/weights (SqueezeNet ImageNet weights)")
def test_suspects_command_finds_planted_wrong_labels(tmp_path, monkeypatch, capsys):
    data = write_colour_classes(tmp_path / "data")
    planted = []
    for i in (3, 11):  # two red pictures filed as blue
        target = data / "blue" / f"planted{i}.png"
        (data / "red" / f"{i:03d}.png").rename(target)
        planted.append(str(target))
    planted_bytes = {p: Path(p).read_bytes() for p in planted}
    out_dir = tmp_path / "judged"
    code, out, err = run_cli(monkeypatch, capsys, "suspects", data, "--weights", SQUEEZENET, "--json", "--out", out_dir)
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["path"] for r in rows[:2]} == set(planted)
    assert all(r["label"] == "blue" and r["suggested"] == "red" and 0 <= r["confidence"] < 0.5 for r in rows[:2])
    assert "Looked at 48 images" in " ".join(err.split()) and "not proven wrong" in err
    again = find_label_issues(data, weights=SQUEEZENET)
    assert again.features_from_cache and [s.path for s in again.suspects[:2]] == [r["path"] for r in rows[:2]]

    written = json.loads((out_dir / "suspects.json").read_text())
    assert written["looked_at"] == 48 and [s["path"] for s in written["suspects"]] == [r["path"] for r in rows]
    sheet = np.asarray(Image.open(out_dir / "suspects.png").convert("RGB"), np.int32)
    assert sheet.shape[0] > 100 and (sheet[..., 0] - sheet[..., 2] > 100).any()  # the red thumbnails are drawn

    # act on it: quarantine what was flagged, then put it back byte for byte
    code, _, err = run_cli(monkeypatch, capsys, "doctor", data, "--fix", "--suspects", out_dir)
    assert code == 0, err
    assert not any(Path(p).exists() for p in planted) and "suspected wrong label" in " ".join(err.split())
    manifest = json.loads((data / ".quarantine" / "manifest.json").read_text())
    moved = {e["original"]: e for e in manifest}
    assert {"blue/planted3.png", "blue/planted11.png"} <= moved.keys()
    assert moved["blue/planted3.png"]["sha256"] == hashlib.sha256(planted_bytes[planted[0]]).hexdigest()
    assert "red (confidence" in moved["blue/planted3.png"]["problems"][0]
    code, _, err = run_cli(monkeypatch, capsys, "doctor", data, "--restore")
    assert code == 0 and all(Path(p).read_bytes() == planted_bytes[p] for p in planted)

    # fix the labels, judge again: the pictures are the same, so their features come from the per-image store
    for path in planted:
        Path(path).rename(data / "red" / Path(path).name)
    fixed = find_label_issues(data, weights=SQUEEZENET)
    assert fixed.features_from_cache  # a new whole-data key (other labels), no backbone pass
    assert not {s.path for s in fixed.suspects} & {str(data / "red" / Path(p).name) for p in planted}


@pytest.mark.skipif(not SQUEEZENET.is_file(), reason="needs ../shared/weights (SqueezeNet ImageNet weights)")
def test_doctor_suspects_refuses_files_outside_data_and_moves_nothing(tmp_path, monkeypatch, capsys):
    data = write_colour_classes(tmp_path / "data", count=6)
    outside = write_colour_classes(tmp_path / "other", count=6)
    entry = {"label": "red", "suggested": "blue", "confidence": 0.1, "split": "train"}
    bad = {"looked_at": 2, "flagged": 2, "judge": "test",
           "suspects": [{"path": str(data / "red" / "000.png"), **entry},
                        {"path": str(outside / "red" / "001.png"), **entry}]}  # fmt: skip
    (tmp_path / "suspects.json").write_text(json.dumps(bad))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png"))
    code, _, err = run_cli(monkeypatch, capsys, "doctor", data, "--fix", "--suspects", tmp_path / "suspects.json")
    assert code == 2 and "inside DATA" in err and "Traceback" not in err
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.png")) == before
    code, _, err = run_cli(monkeypatch, capsys, "doctor", data, "--suspects", tmp_path / "suspects.json")
    assert code == 2 and "use it with --fix" in err
    (tmp_path / "junk.json").write_text("[1, 2]")
    code, _, err = run_cli(monkeypatch, capsys, "doctor", data, "--fix", "--suspects", tmp_path / "junk.json")
    assert code == 2 and "cannot read suspects" in err


def test_a_trained_run_judges_and_its_report_shows_the_suspects(tmp_path, monkeypatch, capsys):
    from imgclf import ImageClassifier

    data = write_colour_classes(tmp_path / "data")
    planted = data / "blue" / "planted.png"
    (data / "red" / "005.png").rename(planted)
    ImageClassifier(model="course_small", target_size=(32, 32), epochs=6, batch_size=8, seed=0).fit(
        data, run_dir=tmp_path / "run", verbose=0
    )
    code, out, err = run_cli(monkeypatch, capsys, "suspects", data, "--run", tmp_path / "run")
    assert code == 0, err
    assert out.splitlines()[0].startswith(str(planted)) and "blue -> red" in out.splitlines()[0]
    assert (tmp_path / "run" / "suspects" / "suspects.json").is_file() and "imgclf report" in err
    code, _, err = run_cli(monkeypatch, capsys, "report", tmp_path / "run")
    assert code == 0, err
    html = (tmp_path / "run" / "report.html").read_text()
    section = html[html.index('id="suspects"') : html.index('id="feature-maps"')]
    assert "planted.png" in section and "data:image/png;base64" in section and "penultimate features" in section
    other = write_class_folder(tmp_path / "other", {"a_tl": 6, "b_br": 6}, size=32)
    code, _, err = run_cli(monkeypatch, capsys, "suspects", other, "--run", tmp_path / "run")
    assert code == 2 and "Expected the same classes" in err


def test_suspects_refuses_tiny_classes_in_one_line(tmp_path, monkeypatch, capsys):
    data = write_class_folder(tmp_path / "data", {"a_tl": 3, "b_br": 3}, size=32)
    code, _, err = run_cli(monkeypatch, capsys, "suspects", data, "--weights", "none", "--backbone", "squeezenet1_1")
    assert code == 2 and "at least 5 images in every class" in err and "Traceback" not in err


def test_suspects_refuses_an_out_inside_data_and_a_backbone_with_a_run(tmp_path, monkeypatch, capsys):
    """Issue 36: the contact sheet must not land in a class folder (it would train as a picture); --backbone with
    --run was ignored silently. Both refused before any judging, in one line."""
    import json

    data = write_class_folder(tmp_path / "data", {"a_tl": 6, "b_br": 6}, size=32)
    for out in (data / "a_tl", data, data / "new"):
        code, _, err = run_cli(monkeypatch, capsys, "suspects", data, "--weights", "none", "--out", out)
        assert code == 2 and "inside DATA" in err and not (out / "suspects.png").exists()
    code, _, err = run_cli(monkeypatch, capsys, "suspects", data, "--run", tmp_path, "--backbone", "resnet50")
    assert code == 2 and "Received both" in err
    bad = tmp_path / "suspects.json"
    bad.write_text(json.dumps({"suspects": [{"path": str(data / "a_tl" / "000.png"), "label": "a_tl",
                                             "suggested": "b_br", "confidence": "high"}]}))  # fmt: skip
    code, _, err = run_cli(monkeypatch, capsys, "doctor", data, "--fix", "--suspects", bad)
    assert code == 2 and "a number" in err and "Traceback" not in err
    assert (data / "a_tl" / "000.png").is_file()
