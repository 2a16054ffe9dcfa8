"""Distributed training (``--distribute mirrored|multi-worker``): worker processes on 127.0.0.1, a kill and restart.

TensorFlow splits the CPU into logical devices and sets up collective operations only before its runtime starts, so
every distributed run here is a fresh process (the test process has long started TensorFlow).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from helpers import free_ports, run_cli, wait_for_line, wait_until, write_class_folder

from imgclf.errors import ImgclfError
from imgclf.training.distributed.cluster import cluster_config, worker_role

IMGCLF = [sys.executable, "-m", "imgclf"]
#: Settings of every distributed run here: the course's first ConvNet, small images, a global batch of 16.
COMMON = ["--batch-size", "16", "--seed", "1", "--no-calibrate"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """DATA/train/{a_tl: 41, b_br: 40} + DATA/validation/{a_tl: 11, b_br: 10}, 48x48 PNG: odd counts, so two
    workers' shards differ by an image (one runs out first) and the last batch leaves a replica empty."""
    root = tmp_path_factory.mktemp("distribute") / "data"
    write_class_folder(root / "train", {"a_tl": 41, "b_br": 40})
    write_class_folder(root / "validation", {"a_tl": 11, "b_br": 10}, start=500)
    return root


def env_for(home: Path) -> dict:
    """The environment of a worker: its own imgclf home (to see what it writes), TensorFlow's logs quiet."""
    return {**os.environ, "IMGCLF_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


def start_workers(data: Path, runs: Path, name: str, epochs: int, tmp: Path, size: int = 32,
                  tf_config: bool = False) -> list[subprocess.Popen]:  # fmt: skip
    """Two ``imgclf train --distribute multi-worker`` processes on free ports of 127.0.0.1; worker 0 is the chief.
    The cluster is given by ``--workers``/``--worker-index``, or with ``tf_config`` by ``TF_CONFIG`` alone."""
    workers = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    procs = []
    for index in (0, 1):
        log = open(tmp / f"worker{index}-{time.monotonic_ns()}.log", "w")  # noqa: SIM115  (closed with the process)
        env = env_for(tmp / f"home{index}")
        cluster = ["--workers", workers, "--worker-index", str(index)]
        if tf_config:
            env["TF_CONFIG"], cluster = cluster_config(workers, index), []
        cmd = [*IMGCLF, "train", str(data), "--runs-dir", str(runs), "--name", name, "--epochs", str(epochs),
               *COMMON, "--target-size", str(size), str(size), "--distribute", "multi-worker", *cluster]  # fmt: skip
        procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
        procs[-1].log_path = log.name
    return procs


def wait_all(procs, timeout: float = 240) -> list[int]:
    return [p.wait(timeout=timeout) for p in procs]


def log_of(proc) -> str:
    return Path(proc.log_path).read_text(errors="replace")


def history(run: Path) -> list[dict]:
    from imgclf.runs.history import read_history_csv

    return read_history_csv(run / "history.csv")


# -- the cluster and the setting ------------------------------------------------------------------------------
def test_cluster_config_and_worker_role():
    config = json.loads(cluster_config("10.0.0.1:2222, 10.0.0.2:2222", 1))
    assert config == {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}
    assert worker_role({"TF_CONFIG": json.dumps(config)}) == (1, False)
    config["task"]["index"] = 0
    assert worker_role({"TF_CONFIG": json.dumps(config)}) == (0, True)  # worker 0 is the chief without a chief task
    chief_job = {"cluster": {"chief": ["a:1"], "worker": ["b:1"]}, "task": {"type": "worker", "index": 0}}
    assert worker_role({"TF_CONFIG": json.dumps(chief_job)}) == (0, False)
    assert worker_role({}) == (0, True)
    for workers, index, named in (("host", 0, "workers"), ("a:1,a:1", 0, "workers"), ("a:1,b:2", 2, "worker_index"),
                                  ("a:99999", 0, "workers"), ("a:1", True, "worker_index")):  # fmt: skip
        with pytest.raises(ImgclfError, match=named):
            cluster_config(workers, index)
    with pytest.raises(ImgclfError, match="TF_CONFIG must be JSON"):
        worker_role({"TF_CONFIG": "{not json"})


def test_distribute_setting_is_checked():
    from imgclf import ImageClassifier

    with pytest.raises(ImgclfError, match=r"distribute must be one of \['none', 'mirrored', 'multi-worker'\]"):
        ImageClassifier(distribute="ring").resolve_settings()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--workers", "127.0.0.1:1,127.0.0.1:2", "--worker-index", "0"], "--workers needs --distribute multi-worker"),
        (["--distribute", "multi-worker", "--workers", "127.0.0.1:1"], "--workers and --worker-index go together"),
        (["--distribute", "multi-worker"], "needs --name"),
        (["--distribute", "multi-worker", "--name", "x", "--workers", "nohost", "--worker-index", "0"], "host:port"),
    ],
)
def test_multi_worker_options_are_checked(monkeypatch, capsys, data, tmp_path, args, message):
    code, _, err = run_cli(monkeypatch, capsys, "train", data, "--runs-dir", tmp_path / "runs", *args)
    assert code == 2 and message in " ".join(err.split())
    assert not (tmp_path / "runs").exists()


# -- mirrored: two logical CPU devices, one process -----------------------------------------------------------
MIRRORED = """
import json, sys
import numpy as np
from imgclf import ImageClassifier
from imgclf.errors import ImgclfError
from imgclf.training.distributed.cluster import get_strategy

data, out = sys.argv[1], sys.argv[2]
settings = dict(target_size=(32, 32), epochs=3, batch_size=16, seed=1, calibrate=False, precision="float32")
mirrored = ImageClassifier(distribute="mirrored", **settings).fit(data, run_dir=out + "/mirrored", verbose=0)
replicas = get_strategy("mirrored").num_replicas_in_sync
try:
    ImageClassifier(distribute="mirrored", **{**settings, "batch_size": 15}).fit(data, verbose=0)
    odd = "accepted"
except ImgclfError as exc:
    odd = str(exc)
single = ImageClassifier(**settings).fit(data, run_dir=out + "/single", verbose=0)
images = mirrored.load_images([data + "/validation/a_tl/500.png", data + "/validation/b_br/500.png"])
print(json.dumps({"replicas": replicas, "odd": odd,
                  "mirrored": mirrored.history_, "single": single.history_,
                  "difference": float(np.abs(mirrored.predict_proba(images) - single.predict_proba(images)).max())}))
"""


def test_mirrored_over_two_logical_cpus_trains_like_one_process(data, tmp_path):
    done = subprocess.run([sys.executable, "-c", MIRRORED, str(data), str(tmp_path)], env=env_for(tmp_path / "home"),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert "batch_size must be a multiple of the number of replicas (2)" in result["odd"] and "15" in result["odd"]
    # One input pipeline: each global batch of 16 is the single process's, split 8 + 8, the loss is the mean over
    # the global batch and the gradients are summed, so in float32 the runs match up to summation order (measured:
    # equal to 6 digits; in mixed_bfloat16 the halves round differently: losses within 1.5 %).
    for a, b in zip(result["mirrored"], result["single"], strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert a[key] == pytest.approx(b[key], rel=1e-4, abs=1e-6), (key, a, b)
    assert result["difference"] < 1e-5
    import keras

    keras.saving.load_model(tmp_path / "mirrored" / "model.keras", safe_mode=True)  # plain Keras, no imgclf


# -- multi-worker: two processes on 127.0.0.1 -----------------------------------------------------------------
def test_two_workers_train_and_only_the_chief_writes(data, tmp_path):
    from imgclf import ImageClassifier

    runs = tmp_path / "runs"
    procs = start_workers(data, runs, "mw", 2, tmp_path)
    codes = wait_all(procs)
    assert codes == [0, 0], [log_of(p)[-2000:] for p in procs]
    assert sorted(p.name for p in runs.iterdir()) == ["mw"]  # the chief's run, nothing else
    run = runs / "mw"
    assert {"model.keras", "history.csv", "state.json", "report.html"} <= {p.name for p in run.iterdir()}
    assert not (tmp_path / "home1").exists() or not any((tmp_path / "home1").rglob("*.keras"))  # worker 1: nothing
    assert "the chief wrote the run" in " ".join(log_of(procs[1]).split())
    rows = history(run)
    assert [r["epoch"] for r in rows] == [1, 2] and rows[1]["loss"] < rows[0]["loss"]

    # Against one process trained as long on the same data with the same settings. The global batches differ
    # (each worker shuffles its own half of the files), so the weights do too; the tolerance is on what the
    # models do: the same validation accuracy within 0.1, the same label for >= 90 % of the validation images,
    # and probabilities within 0.25 on average.
    single = ImageClassifier(target_size=(32, 32), epochs=2, batch_size=16, seed=1, calibrate=False)
    single.fit(data, verbose=0)
    distributed = ImageClassifier.load(run)
    paths = sorted(str(p) for p in (data / "validation").rglob("*.png"))
    p_single, p_distributed = single.predict_proba(paths), distributed.predict_proba(paths)
    assert abs(single.history_[-1]["val_accuracy"] - rows[-1]["val_accuracy"]) <= 0.1
    assert (p_single.argmax(1) == p_distributed.argmax(1)).mean() >= 0.9
    assert np.abs(p_single - p_distributed).mean() <= 0.25


@pytest.mark.slow  # ~50 s: two worker processes, one killed and restarted
def test_a_killed_worker_is_restarted_and_training_resumes(data, tmp_path):
    runs, epochs = tmp_path / "runs", 10
    procs = start_workers(data, runs, "mw", epochs, tmp_path, size=64)
    state_file = runs / "mw" / "state.json"
    def checkpointed():  # once the chief has checkpointed an epoch, kill worker 1 mid-run
        assert procs[0].poll() is None and procs[1].poll() is None, log_of(procs[0])[-2000:]
        text = state_file.read_text() if state_file.is_file() else ""
        return bool(text) and json.loads(text)["epochs_completed"] >= 1

    wait_until(checkpointed, 180, "the chief's first checkpoint")
    procs[1].send_signal(signal.SIGKILL)
    assert procs[0].wait(timeout=120) != 0  # the chief's collective operations abort: it stops, with a message
    assert "a worker was lost" in " ".join(log_of(procs[0]).split())
    state = json.loads(state_file.read_text())
    assert state["status"] == "running" and 1 <= state["epochs_completed"] < epochs

    procs = start_workers(data, runs, "mw", epochs, tmp_path, size=64, tf_config=True)  # the cluster from TF_CONFIG
    assert wait_all(procs) == [0, 0], [log_of(p)[-2000:] for p in procs]
    assert [r["epoch"] for r in history(runs / "mw")] == list(range(1, epochs + 1))  # every epoch once
    assert json.loads(state_file.read_text())["status"] == "finished"


def _default_sigint() -> None:
    """In the worker, before it starts: Ctrl-C as a terminal delivers it. A test run started in the background
    (``cmd &``, ``nohup``) has SIGINT ignored, and a child inherits that: its Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_worker_waiting_for_a_missing_peer_stops_on_a_signal(data, tmp_path, sig):
    """Only worker 0 of two is started: it waits for worker 1 (in Python: TensorFlow would wait inside C++, holding
    the GIL). SIGTERM or Ctrl-C stops it within seconds, with one line (it ignored both for 845 s)."""
    ports = free_ports(2)
    workers = ",".join(f"127.0.0.1:{p}" for p in ports)
    absent = socket.socket()  # the missing peer's port, bound and never listening: no other test's server can take
    absent.bind(("127.0.0.1", ports[1]))  # it meanwhile and answer for the peer (the wait would end, TF block)
    log = tmp_path / "worker0.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([*IMGCLF, "train", str(data), "--runs-dir", str(tmp_path / "runs"), "--name", "alone",
                                 "--epochs", "1", *COMMON, "--target-size", "32", "32", "--distribute", "multi-worker",
                                 "--workers", workers, "--worker-index", "0"],
                                env=env_for(tmp_path / "home"), stdout=out, stderr=subprocess.STDOUT,
                                preexec_fn=_default_sigint)  # fmt: skip
    try:
        wait_for_line(log, "Waiting for every worker", 180, proc)
        time.sleep(2)  # inside the wait for the peer
        assert proc.poll() is None, log.read_text()[-2000:]
        sent = time.monotonic()
        proc.send_signal(sig)
        code = proc.wait(timeout=30)
        assert time.monotonic() - sent < 20
    finally:
        absent.close()
        if proc.poll() is None:
            proc.kill()
    text = log.read_text(errors="replace")
    assert code == 130, text[-2000:]
    assert "Traceback" not in text and "Ctrl-C or SIGTERM stops this one" in " ".join(text.split())
    assert text.strip().splitlines()[-1] == "Interrupted."
    assert not (tmp_path / "runs" / "alone").exists()  # nothing was written yet
