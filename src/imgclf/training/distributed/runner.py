"""Where training runs, behind one object: this process alone, or a ``tf.distribute`` strategy.

:class:`Runner` is what ``fit`` and the trainer take instead of a strategy: its scope (where models and optimizers
are made), the run folder this process writes, a restart's state, the input each worker reads, the training loop
and a plain copy of the trained model. :func:`join_cluster` is what the command line does before training on a
cluster: check the multi-worker options, write ``TF_CONFIG`` from ``--workers``, and wait for every worker.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from imgclf.errors import ImgclfError
from imgclf.training.distributed import cluster, steps


@dataclass(frozen=True)
class Runner:
    """Where one training runs.

    Attributes:
        strategy: the ``tf.distribute`` strategy (:func:`imgclf.training.distributed.cluster.get_strategy`), or
            ``None`` for this process alone (Keras' own ``fit`` then trains).
    """

    strategy: object = None

    @classmethod
    def of(cls, distribute: str) -> Runner:
        """The runner of the ``distribute`` setting (``"none"``, ``"mirrored"``, ``"multi-worker"``), made before
        TensorFlow runs anything (a multi-worker cluster needs that).

        Raises:
            ImgclfError: as :func:`~imgclf.training.distributed.cluster.get_strategy`.
        """
        return cls(cluster.get_strategy(distribute))

    @property
    def distributed(self) -> bool:
        """Whether a strategy trains (no cached features then: every replica reads images)."""
        return self.strategy is not None

    @property
    def multi_worker(self) -> bool:
        """Whether training spans processes (every worker makes the same variables in the same order)."""
        return cluster.is_multi_worker(self.strategy)

    def scope(self):
        """The context models and optimizers are made in (their variables mirrored over the replicas)."""
        return cluster.scope(self.strategy)

    def own_folder(self, run_dir) -> Path | None:
        """The run folder this process writes: ``run_dir`` on the chief and a single process, ``None`` on the
        other workers of a cluster."""
        return cluster.own_folder(run_dir, self.strategy)[0]

    def restart_state(self, run: Path | None, record) -> dict | None:
        """The ``state.json`` a restarted cluster continues from (the chief's, on every worker), or ``None`` for a
        new run (always ``None`` for one process: a killed run is continued with ``resume``).

        Raises:
            ImgclfError: the unfinished run in ``run`` was trained with other settings or classes.
        """
        if not self.distributed:
            return None
        return steps.chief_state(self.strategy, steps.restartable(run, record))

    def datasets(self, build: Callable, batch_size: int):
        """``build(shard=..., batch_size=...)``'s datasets for this worker (its shard, its part of the batch)."""
        return steps.worker_datasets(self.strategy, build, batch_size)

    def fit(self, model, train, validation=None, **kwargs):
        """Train ``model`` with the strategy's own loop (:func:`imgclf.training.distributed.steps.fit`)."""
        return steps.fit(self.strategy, model, train, validation, **kwargs)

    @staticmethod
    def local_copy(model):
        """``model`` with plain variables (:func:`imgclf.training.distributed.steps.local_copy`)."""
        return steps.local_copy(model)


def join_cluster(distribute: str, workers: str | None, worker_index: int | None, name: str | None, *,
                 say: Callable[[str], None] = print, sigterm_interrupts: bool = False) -> bool:  # fmt: skip
    """Check the multi-worker options, write ``TF_CONFIG`` from ``workers``, wait for every worker of the cluster,
    and say whether this process is the chief (the one that writes the run folder; ``True`` without a cluster).

    Args:
        distribute: the ``distribute`` setting.
        workers: comma-separated ``host:port`` of every worker, the same on each (``--workers``), or ``None`` to
            read ``TF_CONFIG``.
        worker_index: this worker's position in ``workers``, from 0.
        name: the run's name: every worker, and a restarted one, names the run.
        say: where the one line about waiting goes.
        sigterm_interrupts: while waiting, SIGTERM interrupts like Ctrl-C (``KeyboardInterrupt``) instead of
            killing the process with no word. Process-wide for the wait only: the command line asks for it.

    Raises:
        ImgclfError: ``workers`` without ``worker_index`` or the other way round, ``workers`` without
            multi-worker, multi-worker without ``name``, or a bad ``TF_CONFIG``.
    """
    if (workers is None) != (worker_index is None):
        raise ImgclfError("--workers and --worker-index go together (the cluster, and this worker's place in it).")
    if distribute != "multi-worker":
        if workers is not None:
            raise ImgclfError(f"--workers needs --distribute multi-worker. Received: --distribute {distribute}")
        return True
    if name is None:
        raise ImgclfError("--distribute multi-worker needs --name: every worker, and a restarted one, names the run.")
    if workers is not None:
        os.environ["TF_CONFIG"] = cluster.cluster_config(workers, worker_index)
    chief = cluster.worker_role()[1]
    say("Waiting for every worker of the cluster to start (Ctrl-C or SIGTERM stops this one) ...")
    with _sigterm_interrupts() if sigterm_interrupts else contextlib.nullcontext():
        cluster.get_strategy(distribute)  # waits for the peers in Python, then made once; training uses this one
    return chief


@contextlib.contextmanager
def _sigterm_interrupts():
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
