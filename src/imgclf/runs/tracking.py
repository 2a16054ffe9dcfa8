"""Experiment tracking: a finished run folder, logged to MLflow (``track="mlflow[:URI]"``, the mlflow extra).

Logged from the run's own files once training (and calibration) ended, so what MLflow shows is exactly what the
folder holds: every setting and what it resolved to as params (``config.yaml``, flattened, ``resolved.`` in front
of the resolved values), each epoch's ``history.csv`` row as metrics at ``step = epoch``, the final figures
(evaluation accuracy and loss, calibration's temperature and ECE), the model through MLflow's Keras flavour
(``mlflow.keras.save_model`` logged as the run's ``model`` artifact: ``mlflow.keras.load_model("runs:/ID/model")``
loads it), and the files (``config.yaml``, ``history.csv``, ``plots/``, ``calibration.json``, ``classes.json``,
``report.html``, ``metrics.json``). A run is tracked once it is finished
(:func:`imgclf.report.finish.finish_run`), every file at once; the MLflow run's id is kept in ``RUN/tracking.json``.

MLflow is imported only when tracking is asked for. Without a URI the run goes where MLflow's own default points
(``MLFLOW_TRACKING_URI``, else ``sqlite:///mlflow.db`` in the current folder: local, offline; ``mlflow ui`` opens it;
the artifacts then go to ``./mlruns``, MLflow's default artifact root). MLflow's file store (``./mlruns`` or
``file:`` as the tracking URI) is refused before training: MLflow 3 put it in maintenance mode and refuses it itself.

Tracking never holds a finished run hostage: a server URI is asked ``/health`` first (:data:`PROBE_TIMEOUT`), and all
of the logging runs in a daemon thread given :data:`TRACK_TIMEOUT` (MLflow's own client retries a silent server for
many minutes). A server that does not answer, or fails, raises :class:`TrackingFailed`; the run folder is kept whole,
without ``tracking.json``.
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

from imgclf import _io
from imgclf.errors import ImgclfError
from imgclf.runs import record as runfiles

TRACKING_FILE = "tracking.json"
#: Files of the run folder logged as artifacts when present (folders whole).
RUN_FILES = (runfiles.CONFIG_FILE, runfiles.HISTORY_FILE, runfiles.CLASSES_FILE, runfiles.CALIBRATION_FILE,
             runfiles.PLOTS_DIR, runfiles.SUMMARY_FILE, "report.html", runfiles.METRICS_FILE, runfiles.SPLIT_FILE,
             runfiles.PROBLEMS_FILE)  # fmt: skip
#: Longest param value MLflow keeps (its limit is 6,000 characters).
MAX_PARAM = 500
#: Seconds a tracking server has to answer ``GET /health`` before the run is left untracked.
PROBE_TIMEOUT = 5.0
#: Seconds the whole logging of a run may take (a 10 MB model to a server on the network: seconds).
TRACK_TIMEOUT = 120.0
#: MLflow's switch that keeps its file store usable (its own exception names it).
ALLOW_FILE_STORE = "MLFLOW_ALLOW_FILE_STORE"
#: URI schemes of a database store MLflow reads without a server.
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")


class TrackingFailed(ImgclfError):
    """The tracking server did not answer in time or refused the run; the run folder itself is whole."""


def _file_store(uri: str | None) -> bool:
    if not uri:
        return False
    scheme = uri.partition(":")[0].partition("+")[0].lower() if "://" in uri or uri.startswith("file:") else ""
    return scheme in ("", "file") and os.environ.get(ALLOW_FILE_STORE, "").lower() not in ("true", "1")


def parse_track(value: str) -> tuple[str, str | None]:
    """``("mlflow", uri or None)`` from ``mlflow`` or ``mlflow:URI``.

    Raises:
        ImgclfError: another tracker, an empty URI, or MLflow not installed (the message names the extra).
    """
    tracker, _, uri = str(value).partition(":")
    if tracker != "mlflow" or (_ and not uri):
        raise ImgclfError(
            f"track must be 'mlflow' or 'mlflow:URI' (e.g. mlflow:sqlite:///mlflow.db). Received: {value!r}"
        )
    if importlib.util.find_spec("mlflow") is None:
        raise ImgclfError("track='mlflow' needs MLflow: pip install 'imgclf[mlflow]'.")
    effective = uri or os.environ.get("MLFLOW_TRACKING_URI")
    if _file_store(effective):
        raise ImgclfError(
            f"track={value!r} goes to MLflow's file store ({effective!r}), in maintenance mode since MLflow 3 and "
            "refused by it: use mlflow:sqlite:///mlflow.db (local, offline) or a server, mlflow:http://HOST:5000 "
            f"({ALLOW_FILE_STORE}=true keeps the file store)."
        )
    return tracker, uri or None


def _flat(mapping: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        elif value is not None:
            out[f"{prefix}{key}"] = str(value)[:MAX_PARAM]
    return out


def _client(uri: str | None):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri)


def _probe(uri: str | None) -> None:
    """Ask a tracking server's ``/health`` (MLflow's server has it) for an answer within :data:`PROBE_TIMEOUT`."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if not uri.lower().startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=PROBE_TIMEOUT):
            pass
    except urllib.error.HTTPError:
        return  # it answered (a proxy's 401, an old server's 404): the logging itself will tell
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TrackingFailed(f"the MLflow server {uri!r} did not answer in {PROBE_TIMEOUT:.0f} s ({reason})") from None


def _bounded(uri: str | None, work, *args):
    """``work(*args)`` in a daemon thread, given :data:`TRACK_TIMEOUT` seconds; MLflow's errors as one line."""
    where = uri or os.environ.get("MLFLOW_TRACKING_URI") or "MLflow's default store"
    _probe(uri)
    box = {}

    def target():
        try:
            box["value"] = work(*args)
        except Exception as exc:  # noqa: BLE001 - MLflow's and the network's errors, reported as one line
            box["error"] = exc

    thread = threading.Thread(target=target, name="imgclf-tracking", daemon=True)
    thread.start()
    thread.join(TRACK_TIMEOUT)
    if thread.is_alive():
        raise TrackingFailed(f"MLflow at {where!r} did not finish logging in {TRACK_TIMEOUT:.0f} s")
    if "error" in box:
        first = (str(box["error"]).strip().splitlines() or [type(box["error"]).__name__])[0]
        raise TrackingFailed(f"MLflow at {where!r} refused the run: {first[:300]}")
    return box["value"]


def track_run(run: str | os.PathLike, value: str, model=None) -> str:
    """Log the run folder ``run`` to MLflow (see the module) and return the MLflow run id.

    Args:
        value: the ``track`` setting (``mlflow`` or ``mlflow:URI``).
        model: the trained Keras model if it is at hand (else ``model.keras`` is loaded).

    Raises:
        ImgclfError: a bad ``value`` or MLflow missing (:func:`parse_track`), or a run folder without a record.
        TrackingFailed: the server did not answer within :data:`PROBE_TIMEOUT`, the logging took over
            :data:`TRACK_TIMEOUT` seconds, or MLflow refused it (the run folder is kept as it is).
    """
    _, uri = parse_track(value)
    run = runfiles.check_run_dir(run)
    if model is None:
        model = runfiles.load_model_file(run / runfiles.MODEL_FILE)
    run_id = _bounded(uri, _log_run, run, uri, model)
    _io.write_json(run / TRACKING_FILE, {"tracker": "mlflow", "uri": uri, "run_id": run_id})
    return run_id


def _log_run(run: Path, uri: str | None, model) -> str:
    import mlflow
    from mlflow.entities import Metric, Param

    from imgclf.runs.history import read_history_csv

    config = _io.read_yaml(run / runfiles.CONFIG_FILE) or {}
    params = _flat({k: v for k, v in config.items() if k not in ("versions", "data")})
    params |= _flat({"data": config.get("data") or {}})
    client = _client(uri)
    experiment = client.get_experiment_by_name("imgclf") or client.get_experiment(client.create_experiment("imgclf"))
    mlrun = client.create_run(experiment.experiment_id, run_name=run.resolve().name, tags={"imgclf.run": str(run)})
    run_id = mlrun.info.run_id
    history = read_history_csv(run / runfiles.HISTORY_FILE) if (run / runfiles.HISTORY_FILE).is_file() else []
    metrics = [Metric(k, float(v), 0, int(row["epoch"])) for row in history for k, v in row.items() if k != "epoch"]
    calibration = _io.read_json(run / runfiles.CALIBRATION_FILE) if (run / runfiles.CALIBRATION_FILE).is_file() else {}
    final = {f"calibration_{k}": calibration[k] for k in ("temperature", "ece_before", "ece_after") if k in calibration}
    evaluation = _io.read_json(run / runfiles.METRICS_FILE) if (run / runfiles.METRICS_FILE).is_file() else {}
    final |= {f"evaluation_{k}": evaluation[k] for k in ("accuracy", "loss")
              if isinstance(evaluation, dict) and isinstance(evaluation.get(k), (int, float))}  # fmt: skip
    metrics += [Metric(k, float(v), 0, 0) for k, v in final.items()]
    for start in range(0, max(len(params), 1), 100):  # MLflow takes at most 100 params a batch
        client.log_batch(run_id, params=[Param(k, v) for k, v in list(params.items())[start : start + 100]])
    for start in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[start : start + 1000])
    for name in RUN_FILES:
        path = run / name
        if path.is_dir():
            client.log_artifacts(run_id, str(path), name)
        elif path.is_file():
            client.log_artifact(run_id, str(path))
    with tempfile.TemporaryDirectory() as tmp:  # saved, then logged through the client: no global MLflow state
        mlflow.keras.save_model(model, os.path.join(tmp, "model"), pip_requirements=_requirements())
        client.log_artifacts(run_id, os.path.join(tmp, "model"), "model")
    client.set_terminated(run_id)
    return run_id


def _requirements() -> list[str]:
    """The model's requirements, stated (MLflow's inference imports the model in a subprocess: ~15 s)."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("keras", "tensorflow-cpu", "tensorflow"):
        try:
            found.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            continue
    return found
