"""Run folders are replaced only when imgclf made them and they hold nothing else; a killed --overwrite is mended."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from helpers import wait_until, write_class_folder

from imgclf import ImgclfError
from imgclf.runs.folder import RUN_MARKER, check_replaceable, new_run, recover_replaced


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _made_run(runs, name: str) -> object:
    with new_run(runs, name) as run:
        (run / "config.yaml").write_text("seed: 0\n")
        (run / "classes.json").write_text('["a", "b"]')
    return run


def test_a_folder_of_someone_s_files_holding_state_json_is_never_replaced(tmp_path):
    folder = tmp_path / "runs" / "mine"
    write_class_folder(folder / "photos", {"holiday": 2})
    (folder / "state.json").write_text('{"status": "finished"}')  # looks like a run, but imgclf never marked it
    (folder / "notes.txt").write_text("keep me")
    with pytest.raises(ImgclfError, match=f"no {RUN_MARKER}"):
        with new_run(tmp_path / "runs", "mine", overwrite=True):
            pass
    assert (folder / "notes.txt").read_text() == "keep me" and len(list(folder.rglob("*.png"))) == 2


def test_a_marked_run_holding_anything_else_is_not_replaced(tmp_path):
    run = _made_run(tmp_path / "runs", "r")
    assert json.loads((run / RUN_MARKER).read_text())["imgclf_version"]
    check_replaceable(run)  # only what imgclf wrote: replaceable
    (run / "thesis.docx").write_text("two years of work")
    with pytest.raises(ImgclfError, match="'thesis.docx', which imgclf did not write"):
        with new_run(tmp_path / "runs", "r", overwrite=True):
            pass
    assert (run / "thesis.docx").read_text() == "two years of work"
    (run / "thesis.docx").unlink()
    with new_run(tmp_path / "runs", "r", overwrite=True) as again:
        assert not (again / "config.yaml").exists() and (again / RUN_MARKER).is_file()


def test_a_killed_overwrite_is_restored_reported_or_finished_by_the_next_run(tmp_path):
    runs = tmp_path / "runs"
    pid = _dead_pid()
    # Killed before the new run began: the old run is put back.
    old = _made_run(runs, "gone")
    old.rename(runs / f".gone.replaced-{pid}")
    messages = recover_replaced(runs)
    assert (runs / "gone" / "config.yaml").is_file() and not (runs / f".gone.replaced-{pid}").exists()
    assert "Restored" in messages[0]
    # Killed mid-training: the unfinished new run and the old one are both kept, and said.
    _made_run(runs, "half").rename(runs / f".half.replaced-{pid}")
    (runs / "half").mkdir()
    (runs / "half" / "last.keras").write_bytes(b"checkpoint")
    for _ in range(2):  # said every time, until the person decides
        messages = recover_replaced(runs)
        assert len(messages) == 1 and "--resume" in messages[0] and f".half.replaced-{pid}" in messages[0]
    assert (runs / f".half.replaced-{pid}" / "config.yaml").is_file()
    # The new run finished later (--resume): the replacement is complete, the old copy goes.
    (runs / "half" / "model.keras").write_bytes(b"model")
    assert "Deleted" in recover_replaced(runs)[0] and not (runs / f".half.replaced-{pid}").exists()
    assert recover_replaced(runs) == []


def test_new_run_restores_a_killed_overwrite_before_anything_else(tmp_path, capsys):
    runs = tmp_path / "runs"
    _made_run(runs, "old").rename(runs / f".old.replaced-{_dead_pid()}")
    with new_run(runs, "other"):
        pass
    assert (runs / "old" / "config.yaml").is_file() and "Restored" in capsys.readouterr().err


def test_everything_imgclf_writes_into_a_run_is_its_own(tmp_path, monkeypatch, capsys):
    """Train, evaluate on other data, report, explain, draw feature maps and export: the run holds only names in
    OWN_NAMES, so --overwrite can replace it; one foreign file stops that."""
    from helpers import run_cli

    from imgclf.runs.folder import foreign_entries

    data = write_class_folder(tmp_path / "data", {"a_tl": 10, "b_br": 10}, size=40)
    other = write_class_folder(tmp_path / "other", {"a_tl": 3, "b_br": 3}, size=40, start=50)
    runs, image = tmp_path / "runs", data / "a_tl" / "000.png"
    base = ["--runs-dir", runs, "--name", "r", "--target-size", "32", "32", "--epochs", "1", "--batch-size", "8"]
    assert run_cli(monkeypatch, capsys, "train", data, *base)[0] == 0
    run = runs / "r"
    for command in (["evaluate", run, other], ["report", run, "--data", other], ["explain", run, image],
                    ["feature-maps", run, image], ["export", run, "--format", "tflite"],
                    ["suspects", data, "--run", run]):  # fmt: skip
        code, _, err = run_cli(monkeypatch, capsys, *command)
        assert code == 0, (command, err[-2000:])
    assert foreign_entries(run) == [], sorted(p.name for p in run.iterdir())
    assert {"suspects", "rehearsal"} <= {p.name for p in run.iterdir()}
    assert run_cli(monkeypatch, capsys, "train", data, *base, "--overwrite")[0] == 0


def test_kill_9_during_overwrite_is_reported_then_finished(tmp_path, monkeypatch, capsys):
    """A real ``kill -9`` of ``imgclf train --overwrite`` after its first epoch: the next command in that runs folder
    says where the old run is and how to go on; once ``--resume`` has finished the new run, the old copy goes."""
    import json
    import os
    import signal

    from helpers import run_cli

    data = write_class_folder(tmp_path / "data", {"a_tl": 40, "b_br": 40}, size=40)
    runs = tmp_path / "runs"
    base = ["--runs-dir", runs, "--target-size", "32", "32", "--batch-size", "8", "--no-calibrate"]
    assert run_cli(monkeypatch, capsys, "train", data, *base, "--name", "r", "--epochs", "1")[0] == 0
    proc = subprocess.Popen([sys.executable, "-m", "imgclf", "train", str(data), *map(str, base), "--name", "r",
                             "--epochs", "12", "--overwrite"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    aside = runs / f".r.replaced-{proc.pid}"
    state = runs / "r" / "state.json"
    wait_until(lambda: aside.is_dir() and state.is_file() and json.loads(state.read_text() or "{}").get(
        "epochs_completed", 0), 180, "the new run's first epoch, the old one set aside")  # fmt: skip
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert aside.is_dir() and (runs / "r" / "last.keras").is_file()
    code, _, err = run_cli(monkeypatch, capsys, "train", data, *base, "--name", "other", "--epochs", "1")
    said = " ".join(err.split())
    assert code == 0 and f".r.replaced-{proc.pid}" in said and "--resume" in said and aside.is_dir()
    code, _, err = run_cli(monkeypatch, capsys, "train", "--resume", runs / "r")
    assert code == 0 and (runs / "r" / "model.keras").is_file(), err[-2000:]
    code, _, err = run_cli(monkeypatch, capsys, "train", data, *base, "--name", "third", "--epochs", "1")
    assert code == 0 and "Deleted" in err and not aside.exists()


def test_a_run_is_the_same_whoever_starts_it(tmp_path, monkeypatch, capsys):
    """Issue 37: ``fit(run_dir=…)`` finishes the run as ``imgclf train`` does — the same files, the fast copy and
    the report included — and the command line only prints what finishing found."""
    from helpers import run_cli

    from imgclf import ImageClassifier

    data = write_class_folder(tmp_path / "data", {"a_tl": 12, "b_br": 12}, size=40)
    settings = {"model": "course_small", "target_size": (32, 32), "epochs": 2, "batch_size": 8, "seed": 0,
                "precision": "float32"}  # fmt: skip
    clf = ImageClassifier(**settings).fit(data, run_dir=tmp_path / "api", verbose=0)
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--model", "course_small", "--target-size", 32, 32,
                           "--epochs", 2, "--batch-size", 8, "--seed", 0, "--precision", "float32",
                           "--runs-dir", tmp_path / "runs", "--name", "cli")  # fmt: skip
    assert code == 0, err
    api, cli = tmp_path / "api", tmp_path / "runs" / "cli"
    written = {p.relative_to(api).as_posix() for p in api.rglob("*")}
    assert written == {p.relative_to(cli).as_posix() for p in cli.rglob("*")}
    assert {".imgclf-run.json", "report.html", "metrics.json", "fast/model.tflite", "model.keras"} <= written
    assert clf.finished_.report == api / "report.html" and "error" not in clf.finished_.fast_copy
    assert f"Diagnosis: {clf.finished_.diagnosis.message}"[:60] in " ".join(err.split())
