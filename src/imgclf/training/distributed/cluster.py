"""Where a distributed run stands: the ``distribute`` setting, the ``tf.distribute`` strategy it names, the cluster
(``TF_CONFIG``) and this process's place in it.

``distribute="mirrored"`` is ``tf.distribute.MirroredStrategy`` over the local GPUs (over two logical CPU devices
on a machine without one, as Keras' own distribute tests do: a check of a distributed set-up, not a speed-up);
``"multi-worker"`` is ``tf.distribute.MultiWorkerMirroredStrategy`` over the machines that ``TF_CONFIG`` lists
(:func:`cluster_config` writes it from ``host:port`` addresses). Training itself is
:mod:`imgclf.training.distributed.steps`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

from imgclf.errors import ImgclfError
from imgclf.settings import DISTRIBUTE, check_setting  # noqa: F401  (DISTRIBUTE re-exported)

#: Logical CPU devices ``mirrored`` splits a machine without GPUs into.
CPU_REPLICAS = 2

_STRATEGIES: dict[str, object] = {}  # one per process: TensorFlow allows a single multi-worker set-up


def check_distribute(value) -> str:
    """Validate the ``distribute`` setting (one of :data:`DISTRIBUTE`)."""
    return check_setting("distribute", value)


def scope(strategy):
    """``strategy.scope()``, or a context that does nothing for ``None``: where models and optimizers are made
    (their variables are then mirrored over the replicas)."""
    return strategy.scope() if strategy is not None else contextlib.nullcontext()


def cluster_config(workers: str, worker_index: int) -> str:
    """The ``TF_CONFIG`` JSON of a cluster of workers (worker 0 is the chief).

    Args:
        workers: comma-separated ``host:port`` addresses, the same list on every machine.
        worker_index: this machine's position in ``workers``, from 0.

    Raises:
        ImgclfError: an address that is not ``host:port`` with a port in 1-65535, a repeated address, or an index
            outside the list.
    """
    addresses = [w.strip() for w in str(workers).split(",") if w.strip()]
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImgclfError(f"workers must be host:port addresses separated by commas. Received: {workers!r}")
    if not addresses or len(set(addresses)) != len(addresses):
        raise ImgclfError(f"workers must list distinct host:port addresses. Received: {workers!r}")
    if isinstance(worker_index, bool) or not isinstance(worker_index, int) or not 0 <= worker_index < len(addresses):
        raise ImgclfError(f"worker_index must be 0 to {len(addresses) - 1} (a position in workers). "
                          f"Received: {worker_index!r}")  # fmt: skip
    return json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": worker_index}})


def worker_role(environ=None) -> tuple[int, bool]:
    """``(task index, is chief)`` from ``TF_CONFIG``: the ``chief`` task, or worker 0 of a cluster without one;
    ``(0, True)`` without ``TF_CONFIG``.

    Raises:
        ImgclfError: ``TF_CONFIG`` that is not JSON with a ``task``.
    """
    config = _tf_config(environ)
    if config is None:
        return 0, True
    kind, index, cluster = config["task"]["type"], config["task"]["index"], config.get("cluster", {})
    return index, kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)


def _address(text: str) -> tuple[str, int]:
    host, _, port = str(text).rpartition(":")
    return host.strip("[]"), int(port)


def wait_for_peers(environ=None, poll: float = 0.5) -> None:
    """Return once every other task of ``TF_CONFIG``'s cluster accepts TCP connections on its address (at once
    without ``TF_CONFIG``). Meanwhile this task listens on its own address and accepts (and closes) what connects, so
    that the others see it too.

    ``MultiWorkerMirroredStrategy`` waits for missing peers inside C++ while holding Python's GIL, so neither
    Ctrl-C nor SIGTERM (nor any Python thread) can act until every worker has joined: a worker whose peer never came
    ignored both for 845 s (issue 23). This wait is a Python loop, where a ``KeyboardInterrupt`` lands within
    ``poll`` seconds; the strategy is made only once everyone is there.

    Raises:
        ImgclfError: ``TF_CONFIG`` that is not JSON with a task, or an address that is not ``host:port``.
    """
    import socket
    import time

    config = _tf_config(environ)
    if config is None:
        return
    tasks = [(kind, i, a) for kind, addresses in config.get("cluster", {}).items() for i, a in enumerate(addresses)]
    own = config["task"]["type"], config["task"]["index"]
    try:
        peers = {a: _address(a) for kind, i, a in tasks if (kind, i) != own}
        mine = next((_address(a) for kind, i, a in tasks if (kind, i) == own), None)
    except ValueError:
        raise ImgclfError(f"TF_CONFIG's cluster must list host:port addresses. Received: {tasks!r}") from None
    listener = None
    if mine is not None:
        with contextlib.suppress(OSError):  # taken (a server of this process already): the others see that one
            listener = socket.create_server(("" if mine[0] in ("0.0.0.0", "") else mine[0], mine[1]), reuse_port=False)
            listener.setblocking(False)
    try:
        while peers:
            for name, (host, port) in list(peers.items()):
                try:
                    socket.create_connection((host, port), timeout=poll).close()
                    del peers[name]
                except OSError:
                    pass
            while listener is not None:  # answer the others' checks (a full backlog would hide this task)
                try:
                    listener.accept()[0].close()
                except (BlockingIOError, InterruptedError):
                    break
            if peers:
                time.sleep(poll)
    finally:
        if listener is not None:
            listener.close()


def _tf_config(environ=None) -> dict | None:
    """``TF_CONFIG`` parsed (what ``MultiWorkerMirroredStrategy`` reads), or ``None`` when unset.

    Raises:
        ImgclfError: not JSON with a task type and index.
    """
    text = (os.environ if environ is None else environ).get("TF_CONFIG")
    if not text:
        return None
    try:
        config = json.loads(text)
        config["task"] = {"type": str(config["task"]["type"]), "index": int(config["task"]["index"])}
    except (ValueError, KeyError, TypeError):
        raise ImgclfError(f"TF_CONFIG must be JSON with a task type and index. Received: {text!r}") from None
    return config


def get_strategy(distribute: str):
    """The ``tf.distribute`` strategy of ``distribute`` (``None`` for ``"none"``), made once per process.

    ``mirrored`` on a machine without GPUs first splits the CPU into :data:`CPU_REPLICAS` logical devices, which
    TensorFlow allows only before its runtime starts; otherwise it mirrors over the devices there are.

    Raises:
        ImgclfError: an unknown ``distribute``, or ``multi-worker`` after TensorFlow's runtime has started in this
            process (TensorFlow sets up collective operations only at start-up).
    """
    if check_distribute(distribute) == "none":
        return None
    if distribute not in _STRATEGIES:
        import tensorflow as tf

        if distribute == "mirrored":
            gpus = tf.config.list_physical_devices("GPU")  # listing logical devices would start the runtime
            devices = [d.name for d in tf.config.list_logical_devices("GPU")] if gpus else _cpu_devices(tf)
            _STRATEGIES[distribute] = tf.distribute.MirroredStrategy(devices)
        else:
            wait_for_peers()  # in Python, where Ctrl-C works: TensorFlow would wait inside C++ holding the GIL
            try:
                _STRATEGIES[distribute] = tf.distribute.MultiWorkerMirroredStrategy()
            except (RuntimeError, ValueError) as exc:
                raise ImgclfError(f"distribute='multi-worker' must be set up before TensorFlow runs anything in this "
                                  f"process (start a new one): {exc}") from None  # fmt: skip
    return _STRATEGIES[distribute]


def _cpu_devices(tf) -> list[str]:
    cpu = tf.config.list_physical_devices("CPU")[0]
    with contextlib.suppress(RuntimeError):  # the runtime has started: mirror over the logical CPUs it has
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * CPU_REPLICAS)
    return [d.name for d in tf.config.list_logical_devices("CPU")]


def own_folder(run_dir, strategy) -> tuple[Path | None, bool]:
    """``(folder, is chief)``: the run folder this process writes. The chief (and a single process) writes
    ``run_dir``; the other workers of a multi-worker cluster write nothing (``None``): on a restart they take the
    chief's checkpoint (see :func:`imgclf.training.distributed.steps.chief_state`)."""
    chief = worker_role()[1] if is_multi_worker(strategy) else True
    return (Path(run_dir) if run_dir is not None and chief else None), chief


def is_multi_worker(strategy) -> bool:
    """Whether ``strategy`` spans processes (a multi-worker cluster), where every worker must make the same
    variables in the same order: a checkpoint is then loaded outside the strategy and copied in
    (:func:`imgclf.training.distributed.steps.fit`'s ``checkpoint``)."""
    return strategy is not None and not _is_mirrored(strategy)


def _is_mirrored(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MirroredStrategy)


def worker_position(strategy) -> tuple[int, int]:
    """``(number of workers, this worker's index)`` of a multi-worker cluster (a ``chief`` task first), from
    ``TF_CONFIG``; ``(1, 0)`` for one process."""
    config = _tf_config() if is_multi_worker(strategy) else None
    if config is None:
        return 1, 0
    cluster, task = config.get("cluster", {}), config["task"]
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    return max(chiefs + workers, 1), 0 if task["type"] == "chief" else chiefs + task["index"]


def check_batch_size(strategy, batch_size: int) -> int:
    """Images per replica: ``batch_size`` (the global batch) split over the replicas.

    Raises:
        ImgclfError: ``batch_size`` is not a multiple of the number of replicas.
    """
    replicas = strategy.num_replicas_in_sync
    if batch_size % replicas:
        raise ImgclfError(f"batch_size must be a multiple of the number of replicas ({replicas}): it is split "
                          f"evenly over them. Received: {batch_size}")  # fmt: skip
    return batch_size // replicas
