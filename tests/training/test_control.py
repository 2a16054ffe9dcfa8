"""Training control: target accuracy, early stopping, class weights, checkpoints, and resuming a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from helpers import HAPPY_OR_SAD, requires_shared, run_cli, wait_until, write_class_folder

from imgclf import ImageClassifier, ImgclfError
from imgclf.runs.history import read_history_csv
from imgclf.training.control import class_weights


@pytest.fixture
def easy(tmp_path):
    root = tmp_path / "easy"
    write_class_folder(root / "train", {"a_tl": 24, "b_br": 24})
    write_class_folder(root / "validation", {"a_tl": 6, "b_br": 6}, start=500)
    return root


def test_target_accuracy_stops_and_says_so(easy, tmp_path):
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=30, batch_size=8, target_accuracy=0.95)
    clf.fit(easy, run_dir=tmp_path / "run", verbose=0)
    assert len(clf.history_) < 30 and clf.history_[-1]["accuracy"] >= 0.95
    assert all(r["accuracy"] < 0.95 for r in clf.history_[:-1])  # it stopped at the first epoch that passed
    state = json.loads((tmp_path / "run" / "state.json").read_text())
    assert state["status"] == "stopped" and "reached the target 0.95" in state["stop_reason"]
    assert state["epochs_completed"] == len(clf.history_) and (tmp_path / "run" / "best.keras").is_file()


def test_early_stopping_records_reason(easy):
    # Validation labels swapped: the better the model learns the training images, the worse the validation
    # loss gets, so patience 1 must run out within a few epochs.
    from dataclasses import replace

    from imgclf.data.folders import load_folder

    dataset = load_folder(easy)
    val = dataset.validation
    flipped = replace(dataset, validation=type(val)(val.paths, 1 - val.labels))
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=40, batch_size=8, early_stopping=1)
    clf.fit(flipped, verbose=0)
    assert len(clf.history_) < 40 and clf.stop_reason_.startswith("early stopping at epoch")


def test_monitor_val_accuracy_needs_validation(easy):
    clf = ImageClassifier(
        target_size=(32, 32), epochs=1, validation_split=0, target_accuracy=0.9, monitor="val_accuracy"
    )
    with pytest.raises(ImgclfError, match="needs validation data"):
        clf.fit(easy / "train", verbose=0)


def test_class_weights():
    labels = np.array([0] * 30 + [1] * 10)
    w = class_weights("balanced", labels, 3)
    assert w[0] == pytest.approx(40 / (2 * 30)) and w[1] == pytest.approx(40 / (2 * 10)) and w[2] == 1.0
    assert class_weights(None, labels, 2) is None and class_weights({1: 3}, labels, 2) == {0: 1.0, 1: 3.0}
    for bad in ({}, {5: 1.0}, {0: -1}, {0: "x"}, {"a": 2}, {0: float("nan")}):
        if bad == {}:
            assert class_weights(bad, labels, 2) == {0: 1.0, 1: 1.0}  # nothing named: every class weighs 1
            continue
        with pytest.raises(ImgclfError, match="class_weight must map class indices"):
            class_weights(bad, labels, 2)


@requires_shared(HAPPY_OR_SAD)
@pytest.mark.parametrize(
    "settings",
    [
        pytest.param([], marks=pytest.mark.slow),  # imgclf's defaults: 20 % held out, batch 20, up to 100 epochs
        ["--epochs", 20, "--batch-size", 10, "--validation-split", 0],  # the exercise's: all 80 images, batch 10
    ],
    ids=["defaults", "exercise-settings"],
)
def test_course_exercise_4_happy_or_sad(tmp_path, monkeypatch, capsys, settings):
    # Exercise 4: `imgclf train happy-or-sad --target-accuracy 0.999` stops by itself and the run folder says so.
    code, _, err = run_cli(
        monkeypatch, capsys, "train", HAPPY_OR_SAD, "--target-accuracy", 0.999, *settings,
        "--runs-dir", tmp_path, "--name", "hs",
    )  # fmt: skip
    state = json.loads((tmp_path / "hs" / "state.json").read_text())
    assert code == 0 and state["status"] == "stopped" and "reached the target 0.999" in state["stop_reason"]
    assert "Stopped:" in err and state["epochs_completed"] < state["epochs"]
    assert state["epochs"] == (20 if settings else 100)
    history = read_history_csv(tmp_path / "hs" / "history.csv")
    assert len(history) == state["epochs_completed"] and history[-1]["accuracy"] >= 0.999
    assert "Stopped early" in (tmp_path / "hs" / "report.html").read_text()


def test_killed_run_resumes_to_completion(tmp_path, monkeypatch, capsys):
    data = write_class_folder(tmp_path / "data", {"a_tl": 60, "b_br": 60})
    run = tmp_path / "runs" / "k"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "imgclf.cli", "train", str(data), "--target-size", "32", "32", "--epochs", "25",
         "--batch-size", "8", "--runs-dir", str(tmp_path / "runs"), "--name", "k"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    wait_until(lambda: _epochs_done(run) >= 3, 120, "three epochs")  # then kill -9 in the middle of the run
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = json.loads((run / "state.json").read_text())["epochs_completed"]
    assert 3 <= done < 25, "the run finished before it could be killed"
    code, _, err = run_cli(monkeypatch, capsys, "train", "--resume", run)
    assert code == 0 and "Resuming" in err
    history = read_history_csv(run / "history.csv")
    assert [r["epoch"] for r in history] == list(range(1, 26))  # every epoch once
    assert json.loads((run / "state.json").read_text())["status"] == "finished"
    code, _, err = run_cli(monkeypatch, capsys, "train", "--resume", run)
    assert code == 2 and "already finished" in err


def test_tensorboard_logs_or_a_clear_error(easy, tmp_path):
    import importlib.util

    if importlib.util.find_spec("tensorboard") is None:
        with pytest.raises(ImgclfError, match=r"pip install 'imgclf\[tensorboard\]'"):
            ImageClassifier(tensorboard=True).resolve_settings()
        return
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=1, batch_size=8, tensorboard=True)
    clf.fit(easy, run_dir=tmp_path / "run", verbose=0)
    assert any((tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"))


def test_ctrl_c_records_interrupted_and_stale_temporaries_are_cleaned(easy, tmp_path):
    import keras

    class CtrlC(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    run = tmp_path / "run"
    run.mkdir()
    stale = run / ".last.keras.abc123.keras"  # what a kill -9 in the middle of a checkpoint leaves
    stale.write_bytes(b"half a model")
    clf = ImageClassifier(model="course_small", target_size=(32, 32), epochs=5, batch_size=8)
    with pytest.raises(KeyboardInterrupt):
        clf.fit(easy, run_dir=run, callbacks=[CtrlC()], verbose=0)
    state = json.loads((run / "state.json").read_text())
    assert state["status"] == "interrupted" and state["epochs_completed"] == 2
    assert not stale.exists()
    resumed = ImageClassifier.resume(run, verbose=0)  # an interrupted run resumes
    assert [r["epoch"] for r in resumed.history_] == [1, 2, 3, 4, 5]


def test_weights_without_a_backbone_is_an_error():
    with pytest.raises(ImgclfError, match="weights apply to a backbone"):
        ImageClassifier(weights="/tmp/some.h5").resolve_settings()
    assert ImageClassifier(weights="imagenet").resolve_settings().model == "course_small"  # the default is fine


def test_resume_refuses_other_data_or_settings(easy, tmp_path, monkeypatch, capsys):
    from helpers import run_cli

    code, _, err = run_cli(monkeypatch, capsys, "train", "--resume", tmp_path, "--epochs", "3", "--model", "chollet")
    assert code == 2 and "drop epochs, model" in err
    code, _, err = run_cli(monkeypatch, capsys, "train", easy, "--resume", tmp_path)
    assert code == 2 and "drop DATA" in err


def _epochs_done(run) -> int:
    """The epochs a run's ``state.json`` says are done (0 before it is written, or while it is being written)."""
    state = run / "state.json"
    try:
        return json.loads(state.read_text() or "{}").get("epochs_completed", 0) if state.is_file() else 0
    except ValueError:
        return 0
