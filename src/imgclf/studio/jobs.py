"""Training from the studio: ``imgclf train`` in a background process, one at a time, a queue beyond that.

A job is the command line a person would type (``imgclf train DATA --runs-dir PROJECT/runs --name NAME …``, or
``--resume``), run as its own process so the server stays responsive and a crash stays in the job. Its stderr lines
are kept (the epoch log), its run folder's ``history.csv`` is what the page draws as it grows, and **Stop** sends it
SIGINT, as Ctrl-C in a terminal does: the run records ``"status": "interrupted"`` and ``--resume`` continues it.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from imgclf import settings as declared
from imgclf.errors import ImgclfError
from imgclf.runs.history import read_history_csv
from imgclf.studio.project import inside

#: Log lines a job keeps (the newest).
LOG_LINES = 400
#: The settings a studio form may set (each becomes its ``--option``); the rest keep their defaults.
FORM_SETTINGS = ("recipe", "model", "backbone", "weights", "head", "target_size", "epochs", "batch_size",
                 "learning_rate", "augment", "validation_split", "seed", "fine_tune")  # fmt: skip


@dataclass
class Job:
    """One training: ``id``, the ``command`` it runs, its ``run`` folder, ``status`` (``queued``, ``running``,
    ``finished``, ``failed``, ``interrupted``), the process's ``returncode`` and its last ``log`` lines."""

    id: int
    command: list[str]
    run: Path
    status: str = "queued"
    returncode: int | None = None
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    process: subprocess.Popen | None = None

    def to_dict(self) -> dict:
        history_file = self.run / "history.csv"
        try:
            history = read_history_csv(history_file) if history_file.is_file() else []
        except ImgclfError:
            history = []
        return {"id": self.id, "run": self.run.name, "status": self.status, "returncode": self.returncode,
                "log": list(self.log), "history": history}  # fmt: skip


def train_command(root: Path, form: dict) -> tuple[list[str], Path]:
    """``(argv, run folder)`` of ``imgclf train`` for a studio form: ``data`` (a data folder of the project) and
    ``name``, the :data:`FORM_SETTINGS` given, or ``resume`` (a run's name) alone.

    Raises:
        ImgclfError: a path outside the project, a missing data folder or run, or a setting the form may not set.
    """
    base = [sys.executable, "-m", "imgclf.cli", "train"]
    runs = root / "runs"
    if form.get("resume"):
        run = inside(root, f"runs/{form['resume']}")
        if not run.is_dir():
            raise ImgclfError(f"no run {form['resume']!r} to resume in {runs}.")
        return [*base, "--resume", str(run)], run
    data = inside(root, str(form.get("data", "")))
    if data == root.resolve() or not data.is_dir():
        raise ImgclfError(f"data must be a data folder of the project. Received: {form.get('data')!r}")
    name = str(form.get("name") or "").strip()
    if not name or "/" in name or name.startswith("."):
        raise ImgclfError(f"name must be a run name (no '/', not hidden). Received: {name!r}")
    argv = [*base, str(data), "--runs-dir", str(runs), "--name", name]
    unknown = sorted(set(form) - {"data", "name", *FORM_SETTINGS})
    if unknown:
        raise ImgclfError(f"the studio sets only {list(FORM_SETTINGS)}. Received: {unknown}")
    for key in FORM_SETTINGS:
        value = form.get(key)
        if value in (None, ""):
            continue
        if key not in declared.names():  # pragma: no cover — FORM_SETTINGS names declared settings
            raise ImgclfError(f"unknown setting {key!r}")
        values = value if isinstance(value, list) else str(value).replace(",", " ").split() if key == "target_size" \
            else [value]  # fmt: skip
        argv += ["--" + key.replace("_", "-"), *map(str, values)]
    return argv, inside(root, f"runs/{name}")


class Trainer:
    """The studio's training queue: :meth:`submit` a form, one job runs at a time, the next starts when it ends."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).resolve()
        self.jobs: dict[int, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def submit(self, form: dict) -> Job:
        """Queue ``imgclf train`` for ``form`` (:func:`train_command`) and start it if nothing runs.

        Raises:
            ImgclfError: as :func:`train_command`.
        """
        command, run = train_command(self.root, form)
        with self._lock:
            job = Job(next(self._ids), command, run)
            self.jobs[job.id] = job
        self._next()
        return job

    def stop(self, job_id: int) -> Job:
        """Interrupt a running job (SIGINT: the run is recorded as interrupted, resumable) or drop a queued one.

        Raises:
            ImgclfError: no such job.
        """
        job = self.get(job_id)
        with self._lock:
            if job.status == "queued":
                job.status = "interrupted"
            elif job.status == "running" and job.process is not None:
                job.process.send_signal(signal.SIGINT)
        return job

    def get(self, job_id: int) -> Job:
        if job_id not in self.jobs:
            raise ImgclfError(f"no training job {job_id}.")
        return self.jobs[job_id]

    def _next(self) -> None:
        with self._lock:
            if any(j.status == "running" for j in self.jobs.values()):
                return
            job = next((j for j in self.jobs.values() if j.status == "queued"), None)
            if job is None:
                return
            job.status = "running"
            env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
            job.process = subprocess.Popen(job.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                           env=env, cwd=self.root, preexec_fn=_default_sigint)  # fmt: skip
        threading.Thread(target=self._follow, args=(job,), daemon=True).start()

    def _follow(self, job: Job) -> None:
        for line in job.process.stdout:
            if "━" not in line and line.strip():  # the progress bar's redraws: the epoch lines say it all
                job.log.append(line.rstrip("\n"))
        job.returncode = job.process.wait()
        job.status = {0: "finished", 130: "interrupted"}.get(job.returncode, "failed")
        self._next()

    def shutdown(self) -> None:
        """Interrupt whatever runs (the server is stopping): the run stays resumable."""
        for job in self.jobs.values():
            if job.status == "running" and job.process is not None and job.process.poll() is None:
                job.process.send_signal(signal.SIGINT)


def _default_sigint() -> None:
    """In the child: SIGINT's default disposition, so Python turns it into KeyboardInterrupt even when the server
    itself was started with SIGINT ignored (a background job)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
