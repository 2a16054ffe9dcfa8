"""``--track mlflow:URI`` (issue 27): a tiny run logged to a local MLflow store, read back with MLflow's own client."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import run_cli, write_class_folder

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def test_train_with_track_logs_params_epochs_files_and_a_loadable_model(tmp_path, monkeypatch, capsys):
    data = write_class_folder(tmp_path / "data", {"a_tl": 12, "b_br": 12}, size=40)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--model", "course_small", "--target-size", 32, 32,
                           "--epochs", 3, "--batch-size", 8, "--runs-dir", tmp_path / "runs", "--name", "r",
                           "--track", f"mlflow:{uri}")  # fmt: skip
    assert code == 0, err
    assert "Tracked in MLflow" in err
    run = tmp_path / "runs" / "r"
    record = json.loads((run / "tracking.json").read_text())
    client = mlflow.MlflowClient(tracking_uri=uri)
    logged = client.get_run(record["run_id"])
    assert logged.info.run_name == "r" and logged.info.status == "FINISHED"
    params = logged.data.params
    assert params["model"] == "course_small" and params["epochs"] == "3" and params["resolved.batch_size"] == "8"
    history = (run / "history.csv").read_text().splitlines()[1:]
    losses = client.get_metric_history(record["run_id"], "val_loss")
    assert [m.step for m in losses] == [1, 2, 3] and len(history) == 3
    assert [m.value for m in losses] == pytest.approx([float(r.split(",")[3]) for r in history])
    assert logged.data.metrics["evaluation_accuracy"] == json.loads((run / "metrics.json").read_text())["accuracy"]
    names = {a.path for a in client.list_artifacts(record["run_id"])}
    assert {"config.yaml", "history.csv", "plots", "report.html", "metrics.json", "model"} <= names
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)  # runs:/ URIs resolve against the tracking URI
    loaded = mlflow.keras.load_model(f"runs:/{record['run_id']}/model")
    from imgclf import ImageClassifier

    clf = ImageClassifier.load(run)
    images = clf.load_images(sorted(str(p) for p in (data / "a_tl").glob("*.png"))[:4])
    np.testing.assert_allclose(loaded.predict(images, verbose=0), clf.model_.predict(images, verbose=0), atol=1e-6)


def test_bad_track_values_end_in_one_line(tmp_path, monkeypatch, capsys):
    data = write_class_folder(tmp_path / "data", {"a_tl": 6, "b_br": 6}, size=40)
    for value, message in (("wandb", "track must be 'mlflow' or 'mlflow:URI'"), ("mlflow:", "track must be")):
        code, _, err = run_cli(monkeypatch, capsys, "train", data, "--track", value, "--runs-dir", tmp_path / "runs")
        assert code == 2 and message in err
    assert not (tmp_path / "runs").exists()  # checked before anything is written
