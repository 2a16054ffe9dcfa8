"""The studio's long work — ``imgclf train``, ``imgclf suspects``, ``imgclf triage`` — in background processes, one
at a time, a queue beyond that.

A job is the command line a person would type (``imgclf train DATA --runs-dir PROJECT/runs --name NAME …``, or
``--resume``; ``imgclf suspects DATA --out …``; ``imgclf triage RUN FOLDER --json``), run as its own process so the
server stays responsive and a crash stays in the job. Its log lines are kept (the epoch log), a training's
``history.csv`` is what the page draws as it grows, a command's stdout can go to a file (triage's JSON lines), and
**Stop** sends SIGINT, as Ctrl-C in a terminal does: a run records ``"status": "interrupted"`` and ``--resume``
continues it.
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
from imgclf.report.diagnosis import diagnose
from imgclf.runs.history import read_history_csv
from imgclf.studio.project import inside

#: Log lines a job keeps (the newest).
LOG_LINES = 400
#: The settings a studio form may set (each becomes its ``--option``); the rest keep their defaults.
FORM_SETTINGS = ("recipe", "model", "backbone", "weights", "head", "target_size", "epochs", "batch_size",
                 "learning_rate", "augment", "validation_split", "seed", "fine_tune")  # fmt: skip


@dataclass
class Job:
    """One command: ``id``, ``kind`` (``train``, ``suspects``, ``triage``), the ``command`` it runs, the ``run``
    folder a training writes (``None`` otherwise), the file its stdout goes to (``output``; ``None``: into the log),
    ``status`` (``queued``, ``running``, ``finished``, ``failed``, ``interrupted``), the process's ``returncode``, its
    last ``log`` lines, and ``about`` (what the page links to when it ends: a data folder, an inbox)."""

    id: int
    command: list[str]
    run: Path | None
    kind: str = "train"
    output: Path | None = None
    about: str = ""
    status: str = "queued"
    returncode: int | None = None
    log: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    process: subprocess.Popen | None = None

    def to_dict(self) -> dict:
        history_file = self.run / "history.csv" if self.run is not None else None
        try:
            history = read_history_csv(history_file) if history_file is not None and history_file.is_file() else []
        except ImgclfError:
            history = []
        diagnosis = None
        if self.kind == "train" and self.status in ("finished", "interrupted") and history:
            diagnosis = diagnose(history).to_dict()  # what the command printed at its end, for the page's box
        return {"id": self.id, "kind": self.kind, "run": self.run.name if self.run is not None else None,
                "about": self.about, "status": self.status, "returncode": self.returncode, "log": list(self.log),
                "history": history, "diagnosis": diagnosis}  # fmt: skip


def train_command(root: Path, form: dict) -> tuple[list[str], Path]:
    """``(argv, run folder)`` of ``imgclf train`` for a studio form: ``data`` (a data folder of the project) and
    ``name``, the :data:`FORM_SETTINGS` given, or ``resume`` (a run's name) alone.

    Raises:
        ImgclfError: a path outside the project, a missing data folder or run, or a setting the form may not set.
    """
    base = imgclf_command("train")
    runs = root / "runs"
    if form.get("resume"):
        run = inside(root, f"runs/{_run_name(form['resume'], 'resume')}")
        if not run.is_dir():
            raise ImgclfError(f"no run {form['resume']!r} to resume in {runs}.")
        return [*base, "--resume", str(run)], run
    data = inside(root, str(form.get("data", "")))
    if data == root.resolve() or not data.is_dir():
        raise ImgclfError(f"data must be a data folder of the project. Received: {form.get('data')!r}")
    name = _run_name(form.get("name"), "name")
    argv = [*base, str(data), "--runs-dir", str(runs), "--name", name]
    unknown = sorted(set(form) - {"data", "name", *FORM_SETTINGS})
    if unknown:
        raise ImgclfError(f"the studio sets only {list(FORM_SETTINGS)}. Received: {unknown}")
    for key in FORM_SETTINGS:
        if form.get(key) not in (None, ""):
            values, option = form_value(key, form[key]), "--" + key.replace("_", "-")
            # --option=value: the value is the option's, never another option, whatever it holds; target_size's
            # two values are positive ints by then (click reads a two-value option as two arguments)
            argv += [option, *values] if key == "target_size" else [f"{option}={values[0]}"]
    return argv, inside(root, f"runs/{name}")


def _run_name(value, what: str) -> str:
    """A run's folder name from a form: a printable string, no ``/`` or ``\\``, not hidden.

    Raises:
        ImgclfError: naming ``what`` and the value received.
    """
    name = value.strip() if isinstance(value, str) else ""
    if not name or any(c in name for c in "/\\") or name.startswith(".") or not name.isprintable():
        raise ImgclfError(f"{what} must be a run name (printable, no '/' or '\\', not hidden). Received: {value!r}")
    return name


def form_value(key: str, value) -> list[str]:
    """The command-line values of the form field ``key`` (a :data:`FORM_SETTINGS` name), parsed as its declared
    setting's type (``typing.get_type_hints`` of :class:`imgclf.settings.Settings`, validated by Pydantic):
    ``target_size`` as two positive ints (``"227,227"``, ``"227 227"`` or a list), numbers as numbers, names as one
    string. A list where one value is expected, a bool for a number, or a NUL is refused.

    Raises:
        ImgclfError: the value is not of the setting's type.
    """
    import typing

    from pydantic import TypeAdapter, ValidationError

    hint = typing.get_type_hints(declared.Settings)[key]
    if key == "target_size" and isinstance(value, str):
        value = value.replace(",", " ").split()
    if isinstance(value, bool) or (isinstance(value, str) and "\x00" in value):
        raise ImgclfError(f"{key} must be a {_type_name(hint)}. Received: {value!r}")
    try:
        parsed = TypeAdapter(hint).validate_python(value)
    except ValidationError:
        raise ImgclfError(f"{key} must be a {_type_name(hint)}. Received: {value!r}") from None
    if isinstance(parsed, dict):  # augment's mapping form is for config files and the API, not a form field
        raise ImgclfError(f"{key} must be a {_type_name(str)}. Received: {value!r}")
    values = list(parsed) if isinstance(parsed, tuple) else [parsed]
    if key == "target_size" and not all(v > 0 for v in values):
        raise ImgclfError(f"target_size must be two positive ints. Received: {value!r}")
    return [str(v) for v in values]


def _type_name(hint) -> str:
    text = getattr(hint, "__name__", str(hint)).replace(" | None", "").replace(" | dict", "")
    return {"int": "whole number", "float": "number", "str": "single name or path",
            "tuple[int, int]": "pair of positive whole numbers"}.get(text, text)  # fmt: skip


def imgclf_command(*args: str) -> list[str]:
    """``argv`` of ``imgclf ARGS`` run by this Python (the studio's own installation)."""
    return [sys.executable, "-m", "imgclf.cli", *args]


class Jobs:
    """The studio's queue: :meth:`submit` a training form or :meth:`submit_command` another command; one job runs at
    a time, the next starts when it ends."""

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
        return self.submit_command("train", command, run=run)

    def submit_command(self, kind: str, command: list[str], run: Path | None = None, output: Path | None = None,
                       about: str = "") -> Job:  # fmt: skip
        """Queue ``command`` (an argv), its stdout into ``output`` when given, and start it if nothing runs."""
        with self._lock:
            job = Job(next(self._ids), command, run, kind, output, about)
            self.jobs[job.id] = job
        self._next()
        return job

    def latest(self, kind: str, about: str) -> Job | None:
        """The newest job of ``kind`` about ``about``, or ``None``."""
        found = [j for j in self.jobs.values() if j.kind == kind and j.about == about]
        return found[-1] if found else None

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
            raise ImgclfError(f"no job {job_id}.")
        return self.jobs[job_id]

    def _next(self) -> None:
        """Start the first queued job if nothing runs; a job that cannot start (a read-only project, a file where
        its output folder should be, a command that is not there) is ``failed`` with its reason, and the next
        queued one starts instead: the queue never jams."""
        with self._lock:
            if any(j.status == "running" for j in self.jobs.values()):
                return
            for job in [j for j in self.jobs.values() if j.status == "queued"]:
                try:
                    self._start(job)
                except (OSError, ValueError, subprocess.SubprocessError) as exc:
                    job.status, job.process = "failed", None
                    job.log.append(f"Error: the job could not start: {getattr(exc, 'strerror', None) or exc}"
                                   f"{f' ({exc.filename!r})' if getattr(exc, 'filename', None) else ''}")  # fmt: skip
                    continue
                break
            else:
                return
        threading.Thread(target=self._follow, args=(job,), daemon=True).start()

    def _start(self, job: Job) -> None:
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        stdout = subprocess.PIPE
        if job.output is not None:
            job.output.parent.mkdir(parents=True, exist_ok=True)
            stdout = open(job.output.with_name(job.output.name + ".part"), "w", encoding="utf-8")  # noqa: SIM115
        try:
            job.process = subprocess.Popen(job.command, stdout=stdout, text=True, env=env, cwd=self.root,
                                           stderr=subprocess.PIPE if job.output else subprocess.STDOUT,
                                           preexec_fn=_default_sigint)  # fmt: skip
        finally:
            if job.output is not None:
                stdout.close()  # the child holds its own copy
        job.status = "running"

    def _follow(self, job: Job) -> None:
        for line in job.process.stderr if job.output is not None else job.process.stdout:
            if "━" not in line and line.strip():  # the progress bar's redraws: the epoch lines say it all
                job.log.append(line.rstrip("\n"))
        job.returncode = job.process.wait()
        if job.output is not None:
            part = job.output.with_name(job.output.name + ".part")
            if job.returncode == 0:
                part.replace(job.output)  # a finished answer only: a failed run leaves the last good one
            else:
                part.unlink(missing_ok=True)
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
