"""``--track mlflow:URI`` (issue 27): a tiny run logged to a local MLflow store, read back with MLflow's own client."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from helpers import run_cli, write_class_folder

mlflow = pytest.importorskip("mlflow", reason="the mlflow extra is not installed")


def test_train_with_track_logs_params_epochs_files_and_a_loadable_model(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root is ./mlruns
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


def _tiny_train(tmp_path, monkeypatch, capsys, track):
    data = write_class_folder(tmp_path / "data", {"a_tl": 6, "b_br": 6}, size=40)
    started = time.monotonic()
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--model", "course_small", "--target-size", 32, 32,
                           "--epochs", 1, "--batch-size", 8, "--runs-dir", tmp_path / "runs", "--name", "r",
                           "--precision", "float32", "--track", track)  # fmt: skip
    return code, err, time.monotonic() - started


@pytest.fixture
def silent_server():
    """A socket on 127.0.0.1 that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_tracking_server_that_never_answers_is_bounded_and_the_run_kept(tmp_path, monkeypatch, capsys,
                                                                         silent_server):  # fmt: skip
    import imgclf.runs.tracking as tracking

    monkeypatch.setattr(tracking, "PROBE_TIMEOUT", 0.5)
    code, err, seconds = _tiny_train(tmp_path, monkeypatch, capsys, f"mlflow:{silent_server}")
    assert code == 0, err
    assert "Not tracked:" in err and f"the MLflow server '{silent_server}' did not answer in 0 s" in err
    run = tmp_path / "runs" / "r"
    assert (run / "model.keras").is_file() and (run / "report.html").is_file() and not (run / "tracking.json").exists()
    assert seconds < 120


class _HealthyThenSilent(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        if self.path == "/health":
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")
        else:
            time.sleep(5)

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


def test_a_server_that_stalls_after_its_health_check_is_bounded_too(tmp_path, monkeypatch, capsys):
    import imgclf.runs.tracking as tracking

    monkeypatch.setattr(tracking, "TRACK_TIMEOUT", 1.0)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # the abandoned thread then ends soon
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HealthyThenSilent)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, err, _ = _tiny_train(tmp_path, monkeypatch, capsys, f"mlflow:http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
    assert code == 0, err
    assert "Not tracked:" in err and "did not finish logging in 1 s" in err
    run = tmp_path / "runs" / "r"
    assert (run / "model.keras").is_file() and not (run / "tracking.json").exists()


@pytest.mark.parametrize("track, env", [("mlflow:./mlruns", None), ("mlflow:file:///tmp/mlruns", None),
                                        ("mlflow", "mlruns"), ("mlflow", "file:./elsewhere")])  # fmt: skip
def test_mlflows_file_store_is_refused_before_training_naming_what_to_use(tmp_path, monkeypatch, capsys, track, env):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    if env:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", env)
    code, err, _ = _tiny_train(tmp_path, monkeypatch, capsys, track)
    assert code == 2 and "MLflow's file store" in err and "mlflow:sqlite:///mlflow.db" in err, err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "runs").exists()
