"""The HTML report (self-contained, valid), and the inspection commands end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import cli_train, run_cli, write_split_folder
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """`imgclf train` on corner squares: writes the run and, automatically, its report."""
    root = tmp_path_factory.mktemp("report")
    data = write_split_folder(root / "data", {"a_tl": 20, "b_br": 20}, {"a_tl": 6, "b_br": 6})
    cli_train(data, "--target-size", 40, 40, "--epochs", 3, "--batch-size", 8, "--augment", "course",
              "--runs-dir", root, "--name", "r")  # fmt: skip
    return data, root / "r"


class Checker(HTMLParser):
    """Collects tags and every src/href, and checks that tags nest properly."""

    VOID = {"meta", "img", "br", "hr", "input", "link"}

    def __init__(self):
        super().__init__()
        self.stack, self.refs, self.errors, self.images, self.ids = [], [], [], 0, set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.refs += [attrs[k] for k in ("src", "href") if k in attrs]
        self.images += tag == "img"
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_report_is_valid_self_contained_html(trained_run, monkeypatch, capsys):
    _, run = trained_run
    metrics = json.loads((run / "metrics.json").read_text())
    html = (run / "report.html").read_text()  # as train wrote it: no feature maps, no Grad-CAM (issue 27)
    checker = Checker()
    checker.feed(html)
    assert checker.images == 5 + (1 if metrics["mistakes"] else 0) and not (run / "feature_maps").exists()
    assert f"imgclf report {run.name}</code>" in html and "draws the feature maps" in html
    code, _, _ = run_cli(monkeypatch, capsys, "report", run)  # the second step draws them
    assert code == 0 and json.loads((run / "metrics.json").read_text()) == metrics  # no second evaluation
    html = (run / "report.html").read_text()
    checker = Checker()
    checker.feed(html)
    assert html.startswith("<!DOCTYPE html>") and not checker.errors and not checker.stack
    assert all(ref.startswith("data:image/png;base64,") for ref in checker.refs)  # no external file
    # 2 curves, confusion matrix, ROC/PR, reliability diagram, feature maps, filters, + mistakes and their
    # Grad-CAMs if any
    assert checker.images == 7 + (2 if metrics["mistakes"] else 0)
    assert {
        "data",
        "curves",
        "diagnosis",
        "metrics",
        "calibration",
        "mistakes",
        "feature-maps",
        "config",
    } <= checker.ids
    assert "rotation_range=40.0" in html  # the augmentation is shown
    assert metrics["n"] == 12 and "evaluation/confusion_matrix.png" in metrics["files"]


def test_report_command_with_other_data(trained_run, monkeypatch, capsys):
    data, run = trained_run
    own = json.loads((run / "metrics.json").read_text())
    code, out, _ = run_cli(monkeypatch, capsys, "report", run, "--data", data / "train")
    assert code == 0 and out.strip().endswith("report.html")
    assert json.loads((run / "evaluations" / "train" / "metrics.json").read_text())["n"] == 40
    assert json.loads((run / "metrics.json").read_text()) == own  # the run's own record stays
    assert "evaluations/train" in (run / "report.html").read_text()  # listed among the other evaluations


def test_evaluate_writes_pictures(trained_run, monkeypatch, capsys):
    data, run = trained_run
    code, _, err = run_cli(monkeypatch, capsys, "evaluate", run, data)
    assert code == 0
    folder = run / "evaluations" / data.name / "evaluation"
    for name in ("confusion_matrix.png", "confusion_matrix.txt", "roc_pr.png"):
        assert (folder / name).is_file(), name
    assert "true \\ predicted" in (folder / "confusion_matrix.txt").read_text()


def test_explain_feature_maps_show_and_predict_options(trained_run, tmp_path, monkeypatch, capsys):
    data, run = trained_run
    image = sorted((data / "validation" / "b_br").glob("*.png"))[0]
    code, out, _ = run_cli(monkeypatch, capsys, "explain", run, image, "--class", "a_tl", "--out", tmp_path / "x")
    path, label, _, picture = out.strip().split("\t")
    assert code == 0 and label == "a_tl" and Image.open(picture).size == (40, 40)
    code, _, err = run_cli(monkeypatch, capsys, "explain", run, image, "--class", "zebra")
    assert code == 2 and "class_name must be one of ['a_tl', 'b_br']" in err
    code, out, _ = run_cli(monkeypatch, capsys, "feature-maps", run, image, "--out", tmp_path / "fm")
    assert code == 0 and (tmp_path / "fm" / "overview.png").is_file() and (tmp_path / "fm" / "filters.png").is_file()
    code, out, _ = run_cli(monkeypatch, capsys, "show", data, "--count", "4", "--out", tmp_path / "s.png")
    assert code == 0 and Image.open(tmp_path / "s.png").size[0] > 4 * 40
    code, out, _ = run_cli(monkeypatch, capsys, "predict", run, image, "--tta", "--crop", "0,0,30,30")
    assert code == 0 and out.split("\t")[1] in ("a_tl", "b_br", "unknown")  # a crop may look unlike any image
    code, _, err = run_cli(monkeypatch, capsys, "predict", run, image, "--crop", "0,0,99,99")
    assert code == 2 and "crop must be" in err


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="Debian's chromium is not installed (apt-get install chromium)"
)
def test_report_renders_in_headless_chromium(trained_run, tmp_path):
    _, run = trained_run
    shot = tmp_path / "report.png"
    subprocess.run([str(ROOT / "tools" / "screenshot_report.sh"), str(run), str(shot), "3000"], check=True, timeout=120)
    with Image.open(shot) as im:
        assert im.size == (1200, 3000)
        # Pictures make the page colourful; a page whose images failed to load is mostly white and grey.
        colours = len(set(im.convert("RGB").resize((300, 750)).getdata()))
    assert colours > 2000
