"""The inbox: unlabelled pictures ordered for a person (foreign first, then the ambiguous, spread out), and filing
the confirmed ones with an undo that restores every byte."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import SHARED, run_cli
from PIL import Image

from imgclf.curation.triage import diverse_order, margins, triage_order

SQUEEZENET = SHARED / "weights" / "squeezenet_weights_tf_dim_ordering_tf_kernels_notop.h5"


def test_order_puts_the_foreign_first_then_spreads_the_ambiguous():
    rng = np.random.default_rng(0)
    n = 40
    probabilities = np.tile([[0.98, 0.02]], (n, 1))  # confident
    features = rng.normal(size=(n, 8))
    copies = np.arange(0, 10)  # ten near-copies, all ambiguous
    features[copies] = features[0] + 1e-3 * rng.normal(size=(10, 8))
    probabilities[copies] = [0.52, 0.48]
    others = np.array([20, 25, 30])  # three other ambiguous pictures, each different
    probabilities[others] = [0.55, 0.45]
    unknown = np.zeros(n, bool)
    unknown[[33, 37]] = True
    scores = np.zeros(n)
    scores[33], scores[37] = 5.0, 9.0
    order, selected = triage_order(probabilities, features, unknown, scores, budget=4)
    assert list(order[:2]) == [37, 33]  # the foreign first, most unlike first
    assert set(order[2:6]) == {0, 20, 25, 30}  # one of the copies, then the other ambiguous pictures
    assert set(order[6:13]).isdisjoint(copies)  # then the sure ones of the pool, far from those picked,
    assert set(order[13:22]) == set(copies[1:])  # and only then the remaining copies
    assert set(np.flatnonzero(selected)) == set(order[2:6])  # the budget: never an unknown one
    assert sorted(order) == list(range(n))
    plain = diverse_order(None, 1 - margins(probabilities))  # without features: by doubt alone
    assert set(plain[:10]) == set(copies)


def _colour(rng, channel):
    pixels = rng.integers(0, 90, (48, 48, 3), dtype=np.uint8)
    if channel is not None:
        pixels[..., channel] = rng.integers(150, 256, (48, 48), dtype=np.uint8)
    return pixels


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """A SqueezeNet run (frozen, gap head, calibrated with an OOD detector) on red and blue textures."""
    from imgclf import ImageClassifier

    root = tmp_path_factory.mktemp("triage")
    rng = np.random.default_rng(1)
    for split, count in (("train", 16), ("validation", 8)):
        for name, channel in (("red", 0), ("blue", 2)):
            (root / "data" / split / name).mkdir(parents=True)
            for i in range(count):
                Image.fromarray(_colour(rng, channel)).save(root / "data" / split / name / f"{name}{i}.png")
    ImageClassifier(backbone="squeezenet1_1", weights=str(SQUEEZENET), head="gap", epochs=8, batch_size=8,
                    seed=0).fit(root / "data", run_dir=root / "run", verbose=0)  # fmt: skip
    return root


@pytest.mark.skipif(not SQUEEZENET.is_file(), reason="needs ../shared/weights (SqueezeNet ImageNet weights)")
def test_triage_command_orders_an_inbox_and_accept_files_it_with_undo(colour_run, tmp_path, monkeypatch, capsys):
    rng = np.random.default_rng(7)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(4):
        Image.fromarray(_colour(rng, 0)).save(inbox / f"new-red{i}.png")
        Image.fromarray(_colour(rng, 2)).save(inbox / f"new-blue{i}.png")
    mixed = _colour(rng, 0)
    mixed[..., 2] = mixed[..., 0]  # red and blue alike: ambiguous
    Image.fromarray(mixed).save(inbox / "purple.png")
    board = (np.indices((48, 48)).sum(axis=0) // 6 % 2 * 255).astype(np.uint8)
    Image.fromarray(np.stack([board] * 3, axis=-1)).save(inbox / "checkerboard.png")  # like nothing it was shown
    (inbox / "cut.png").write_bytes((inbox / "purple.png").read_bytes()[:60])  # truncated: left out, and named
    code, out, err = run_cli(monkeypatch, capsys, "triage", colour_run / "run", inbox, "--json", "--budget", "2")
    assert code == 0, err
    assert "unreadable, left out" in err and "inbox/cut.png" in "".join(err.split())  # (rich wraps long lines)
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == 10 and rows[0]["priority"] == 1 and rows[-1]["priority"] < rows[0]["priority"]
    keys = {"path", "label", "probability", "margin", "ood_score", "unknown", "priority", "selected"}
    assert all(keys <= r.keys() for r in rows) and {r["folder"] for r in rows} == {str(inbox.resolve())}
    flags = [r["unknown"] for r in rows]
    assert flags == sorted(flags, reverse=True)  # the unknown ones first
    assert next(r for r in rows if r["path"].endswith("checkerboard.png"))["unknown"]
    known = [r for r in rows if not r["unknown"]]
    assert known[0]["margin"] == min(r["margin"] for r in known)  # then the least sure
    assert [r["selected"] for r in rows].count(True) == 2 and not any(r["selected"] for r in rows if r["unknown"])
    for r in known:
        if r["margin"] > 0.5:  # the sure ones are right
            assert r["label"] == Path(r["path"]).stem.split("-")[1].rstrip("0123456789")
    assert "selected 2 to label" in " ".join(err.split())

    # a person confirms: purple is filed as red, the rest as predicted; the checkerboard and one more line are
    # taken out, and stay in the inbox
    confirmed = [r | ({"label": "red"} if r["path"].endswith("purple.png") else {}) for r in rows
                 if not r["path"].endswith(("new-blue3.png", "checkerboard.png"))]  # fmt: skip
    answers = tmp_path / "inbox.jsonl"
    answers.write_text("".join(json.dumps(r) + "\n" for r in confirmed))
    data = colour_run / "data"
    before = {p: p.read_bytes() for p in inbox.iterdir()}
    code, _, err = run_cli(monkeypatch, capsys, "triage", "--accept", answers, "--into", data)
    assert code == 0, err
    assert sorted(p.name for p in inbox.iterdir()) == ["checkerboard.png", "cut.png", "new-blue3.png"]  # taken out
    assert (data / "train" / "red" / "purple.png").read_bytes() == before[inbox / "purple.png"]
    code, _, err = run_cli(monkeypatch, capsys, "relabel", data, "--undo")
    assert code == 0, err
    assert {p: p.read_bytes() for p in inbox.iterdir()} == before
    assert not (data / "train" / "red" / "purple.png").exists()


def test_accept_refuses_bad_lines_and_moves_nothing(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    for name in ("cats", "dogs"):
        (data / name).mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(data / "cats" / "a.png")
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    Image.new("RGB", (8, 8), "red").save(inbox / "a.png")
    Image.new("RGB", (8, 8), "blue").save(inbox / "b.png")
    (inbox / "notes.png").write_text("a text file named like a picture")
    (inbox / "cut.png").write_bytes((inbox / "b.png").read_bytes()[:40])  # one triage skipped as unreadable
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Image.new("RGB", (8, 8), "green").save(elsewhere / "c.png")
    cases = [
        ([{"path": str(inbox / "notes.png"), "label": "dogs"}], "not a readable image"),
        ([{"path": str(inbox / "cut.png"), "label": "dogs"}], "not a readable image"),
        ([{"folder": str(inbox), "path": str(elsewhere / "c.png"), "label": "dogs"}], "not a picture of the triaged"),
        ([{"folder": str(inbox), "path": str(inbox / "a.png"), "label": "dogs"},
          {"folder": str(elsewhere), "path": str(elsewhere / "c.png"), "label": "dogs"}], "several folders"),
        ([{"path": str(inbox / "a.png"), "label": "dogs", "probability": "high"}], "must be a number"),
        ([{"path": str(inbox / "b.png"), "label": "birds"}], "is not a class"),
        ([{"path": str(inbox / "b.png"), "label": "dogs"}, {"path": str(inbox / "a.png"), "label": "cats"}],
         "already exists"),
        ([{"path": str(inbox / "zzz.png"), "label": "dogs"}], "not a regular image file"),
        ([{"path": str(data / "cats" / "a.png"), "label": "dogs"}], "inside DATA already"),
        ([{"label": "dogs"}], "needs a path and a label"),
    ]  # fmt: skip
    for rows, message in cases:
        answers = tmp_path / "answers.jsonl"
        answers.write_text("".join(json.dumps(r) + "\n" for r in rows))
        code, _, err = run_cli(monkeypatch, capsys, "triage", "--accept", answers, "--into", data)
        assert code == 2 and message in err and "Traceback" not in err, err
        assert sorted(p.name for p in inbox.iterdir()) == ["a.png", "b.png", "cut.png", "notes.png"]
        assert sorted(p.relative_to(data).as_posix() for p in data.rglob("*.png")) == ["cats/a.png"]
    answers.write_text("not json\n")
    code, _, err = run_cli(monkeypatch, capsys, "triage", "--accept", answers, "--into", data)
    assert code == 2 and "line 1" in err
    code, _, err = run_cli(monkeypatch, capsys, "triage", "--accept", answers)
    assert code == 2 and "--into" in err
