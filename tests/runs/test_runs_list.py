"""``imgclf runs`` (issue 27): one row per run folder, from the files alone, whatever state each run is in."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers import run_cli


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory, trained_runs):
    """Twenty runs: finished copies of one real run, then an interrupted, a killed, an old (no state, no marker),
    a half-written (garbled config and state), a distributed one, and a folder that is no run."""
    root = tmp_path_factory.mktemp("runs")
    real = trained_runs.squares(root / "train")
    runs = root / "runs"
    for i in range(14):
        shutil.copytree(real, runs / f"run-{i:02d}")
    history = (real / "history.csv").read_text().splitlines()
    header, cells = history[0].split(","), history[-1].split(",")
    cells[header.index("val_accuracy")] = "0.111"  # the worst final validation accuracy
    (runs / "run-07" / "history.csv").write_text("\n".join([*history[:-1], ",".join(cells)]) + "\n")

    def edit_state(name, **changes):
        path = runs / name / "state.json"
        state = json.loads(path.read_text())
        path.write_text(json.dumps({**state, **changes}))

    shutil.copytree(real, runs / "interrupted")
    edit_state("interrupted", status="interrupted", epochs_completed=1)
    shutil.copytree(real, runs / "killed")
    edit_state("killed", status="running")  # no live process holds it
    shutil.copytree(real, runs / "old")
    (runs / "old" / "state.json").unlink()
    (runs / "old" / ".imgclf-run.json").unlink(missing_ok=True)  # (the API writes no marker; the CLI does)
    (runs / "half").mkdir()
    (runs / "half" / "config.yaml").write_text("data: [unclosed\n")
    (runs / "half" / "state.json").write_bytes(b"\xff{")
    shutil.copytree(real, runs / "distributed")
    config = (runs / "distributed" / "config.yaml").read_text()
    (runs / "distributed" / "config.yaml").write_text(config.replace("distribute: none", "distribute: multi-worker"))
    (runs / "not-a-run").mkdir()
    (runs / "not-a-run" / "notes.txt").write_text("mine")
    return runs


def test_every_run_one_row_whatever_its_state(runs_folder, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "runs", runs_folder, "--json", "--sort", "name")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 19 and "not-a-run" not in {r["name"] for r in rows}
    by = {r["name"]: r for r in rows}
    assert [r["name"] for r in rows] == sorted(by)
    assert by["run-00"]["status"] == "finished" and by["run-00"]["epochs"] == "4/4" and by["run-00"]["calibrated"]
    assert by["run-00"]["model"] == "course_small" and by["run-00"]["data"] == "data"
    assert 0 <= by["run-00"]["val_accuracy"] <= by["run-00"]["best_val_accuracy"] <= 1
    assert by["interrupted"]["status"] == "interrupted" and by["interrupted"]["epochs"] == "1/4"
    assert by["killed"]["status"] == "killed"
    assert by["old"]["status"] == "finished" and by["old"]["epochs"] == "4/4"  # history.csv, config.yaml
    assert by["half"]["status"] == "incomplete" and by["half"]["model"] is None and by["half"]["size_mb"] == 0.0
    assert by["distributed"]["distribute"] == "multi-worker"
    code, out, _ = run_cli(monkeypatch, capsys, "runs", runs_folder, "--json", "--sort", "val_accuracy")
    names = [json.loads(line)["name"] for line in out.splitlines()]
    assert names[-2:] == ["run-07", "half"]  # highest first; nothing to sort by: last


def test_table_and_errors(runs_folder, tmp_path, monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "runs", runs_folder)
    assert code == 0 and "interrupted" in out and "killed" in out and "best val" in out
    code, _, err = run_cli(monkeypatch, capsys, "runs", runs_folder, "--sort", "colour")
    assert code == 2 and "sort must be one of" in err
    code, _, err = run_cli(monkeypatch, capsys, "runs", tmp_path / "nowhere")
    assert code == 2 and "does not exist" in err


def test_runs_never_imports_tensorflow(runs_folder):
    command = [sys.executable, "-X", "importtime", "-m", "imgclf.cli", "runs", str(runs_folder)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0 and "run-13" in done.stdout
    assert "tensorflow" not in done.stderr and "keras" not in done.stderr


def test_compare_two_real_runs(runs_folder, trained_runs, tmp_path, monkeypatch, capsys):
    from imgclf import ImageClassifier
    from imgclf.evaluation.interpretation import read_predictions

    other = tmp_path / "other"  # the same data and split (seed 1), one epoch instead of four
    ImageClassifier(model="course_small", target_size=(32, 32), epochs=1, batch_size=8, seed=1).fit(
        trained_runs.data_of(), run_dir=other, verbose=0
    )
    first = runs_folder / "run-00"
    code, out, err = run_cli(monkeypatch, capsys, "compare", first, other, "--out", tmp_path / "cmp")
    assert code == 0 and out.strip() == str(tmp_path / "cmp" / "compare.html")
    html = (tmp_path / "cmp" / "compare.html").read_text()
    assert "resolved.epochs" in html and "<td>4</td><td>1</td>" in html  # the setting that differs, both values
    assert (tmp_path / "cmp" / "curves.png").is_file() and "data:image/png;base64," in html
    a = read_predictions(first / "evaluation" / "predictions.csv")
    b = read_predictions(other / "evaluation" / "predictions.csv")
    assert a and b and set(a) == set(b)
    differ = sum(a[p]["predicted"] != b[p]["predicted"] for p in a)
    assert f"{differ} of the {len(a)} images evaluated by every run" in html
    assert (tmp_path / "cmp" / "disagreements.png").is_file() == (differ > 0)
    code, _, err = run_cli(monkeypatch, capsys, "compare", first)
    assert code == 2 and "two or more runs" in err
    code, _, err = run_cli(monkeypatch, capsys, "compare", first, first)
    assert code == 2 and "given twice" in err
    code, _, err = run_cli(monkeypatch, capsys, "compare", first, other, "--out", tmp_path / "cmp")
    assert code == 0, err  # its own folder: written again
    mine = tmp_path / "mine"  # issue 36: a person's own compare.html and curves.png are never overwritten
    mine.mkdir()
    (mine / "compare.html").write_text("my notes")
    (mine / "curves.png").write_bytes(b"my plot")
    code, _, err = run_cli(monkeypatch, capsys, "compare", first, other, "--out", mine)
    assert code == 2 and "holds other files" in err
    assert (mine / "compare.html").read_text() == "my notes" and (mine / "curves.png").read_bytes() == b"my plot"
    assert sorted(p.name for p in mine.iterdir()) == ["compare.html", "curves.png"]
