"""The ``imgclf`` command line: a thin Typer + Rich skin over the Python API.

Each command lives in a small module (``train``, ``use``, ``data``, ``inspect``) and only calls public functions.
Every failure a user can cause (a bad option, path, file or setting, a read-only or full disk, too little
memory) ends in one line ``Error: ...`` on stderr and exit code 2, never a traceback. Anything else is a bug in
imgclf: exit code 1, a short message, and the traceback in a log file under ``$IMGCLF_HOME/logs``.
"""

from __future__ import annotations

import errno
import os
import sys

from rich.markup import escape

from imgclf.cli import curation, data, datasets, doctor, inspect, runs, studio, train, use  # noqa: F401  (register the commands)
from imgclf.cli._common import app, err

#: Exit codes: bad input (as click's usage errors), a bug in imgclf, Ctrl-C (128 + SIGINT).
USER_ERROR, INTERNAL_ERROR, INTERRUPTED = 2, 1, 130


#: The longest error message printed whole; a longer one (a huge value quoted back) keeps its start and end.
MAX_MESSAGE = 1000


def shorten(message: str, limit: int = MAX_MESSAGE) -> str:
    """``message`` on one line, at most about ``limit`` characters: the middle of a longer one is left out, and
    said so."""
    if len(message) > 4 * limit:  # split() of a huge value is itself slow: cut first
        message = message[: 2 * limit] + " " + message[-limit:]
    one_line = " ".join(message.split())
    if len(one_line) <= limit:
        return one_line
    head, tail = one_line[: limit * 7 // 10], one_line[-(limit * 2 // 10) :]
    return f"{head} … ({len(one_line) - len(head) - len(tail):,} characters left out) … {tail}"


def _say(message: str) -> None:
    err.print(f"[bold red]Error:[/bold red] {escape(shorten(message))}", soft_wrap=True)


#: What a full disk leaves behind, by command (every file imgclf writes is written atomically).
KEPT = {
    "train": "nothing half-written was kept (a run being replaced was put back, a new run keeps its finished epochs "
             "for --resume)",
    "export": "a failed export left nothing",
    "pack": "a failed pack left nothing",
    "relabel": "no picture is lost: the moves made so far are in DATA/.relabel/manifest.json, and imgclf relabel DATA "
               "--undo puts them back",
    "triage": "no picture is lost: the pictures filed so far are in DATA/.relabel/manifest.json, and imgclf relabel "
              "DATA --undo puts them back",
    "doctor": "no picture is lost: what was set aside is in DATA/.quarantine/manifest.json, and imgclf doctor DATA "
              "--restore puts it back",
}  # fmt: skip
#: A full disk in any other command: each file is written whole or not at all.
KEPT_ANY = "nothing half-written was kept"
#: A place the user cannot write to.
NOT_WRITABLE = "choose a folder you can write to"


def os_error_message(exc: OSError, command: str | None = None) -> str:
    """One line for an operating-system error the user can act on: what failed, on which path, what to do — said
    for ``command`` (the subcommand that hit it: a full disk in ``relabel`` is not a full disk in ``train``)."""
    where = f" {exc.filename!r}" if exc.filename else ""
    what = exc.strerror or str(exc) or type(exc).__name__
    full = f"free some disk space; {KEPT.get(command or '', KEPT_ANY)}"
    writable = NOT_WRITABLE + (" (e.g. --runs-dir)" if command in ("train", "lr-find", "demo") else "")
    hints = {errno.ENOSPC: full, errno.EDQUOT: full, errno.EACCES: writable, errno.EROFS: writable,
             errno.EPERM: writable}  # fmt: skip
    hint = hints.get(exc.errno)
    return f"{what}:{where}" + (f"; {hint}" if hint else "")


def _is_out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or type(exc).__name__ == "ResourceExhaustedError"


def _log_internal_error(exc: BaseException) -> str:
    """Write the traceback to ``$IMGCLF_HOME/logs/crash-<time>.log``; return where (or the traceback itself)."""
    import time
    import traceback

    from imgclf.data.cache import imgclf_home

    text = "".join(traceback.format_exception(exc))
    try:
        logs = imgclf_home() / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        path = logs / f"crash-{time.strftime('%Y%m%d-%H%M%S')}-{id(exc):x}.log"
        path.write_text(f"imgclf {' '.join(sys.argv[1:])}\n\n{text}", encoding="utf-8")
        return str(path)
    except OSError:
        sys.stderr.write(text)
        return "printed above"


#: glibc's ``mallopt`` parameter number of ``M_ARENA_MAX`` (malloc.h).
M_ARENA_MAX = -8
#: Heaps glibc may keep (what ``MALLOC_ARENA_MAX=2`` does); its default is 8 per core.
ARENAS = 2


def bound_heap_growth() -> bool:
    """Have glibc keep at most :data:`ARENAS` heaps, so that freed blocks are reused instead of spread over more.

    Streaming packed shards keeps ~3,800 decoded images (67.5 KB each at 150x150) in a shuffle buffer refilled every
    epoch; under glibc's default the heaps fragment and grow: peak RSS 1,341 / 1,550 / 1,737 / 1,754 MB over 4
    epochs of 25,000 images, against 1,344 / 1,547 / 1,547 / 1,547 MB with two arenas, epochs 51.9-54.7 s instead
    of 56-62 s (bench/README.md). (An earlier fix, a 64 KB mmap threshold, was flatter still but gave every tensor
    of 64 KB or more its own mapping: TensorFlow's per-step activations were mapped, zeroed and unmapped every step,
    and an augmented `course_small` epoch took 37-66 s instead of 28-29 s: issue 23.) The command line owns its
    process, so it sets this at start-up (the library never does); ``MALLOC_ARENA_MAX`` or
    ``MALLOC_MMAP_THRESHOLD_`` already in the environment win. Returns whether it was set (``False`` off glibc).
    """
    if {"MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_"} & set(os.environ) or not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        return bool(ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, ARENAS))
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False


def main() -> None:
    """Console-script entry point: run the app; bad input becomes one line ``Error: ...`` and exit code 2."""
    from typer.exceptions import Abort, TyperException

    from imgclf.errors import ImgclfError

    bound_heap_growth()
    try:
        code = app(standalone_mode=False)
    except TyperException as exc:  # usage: unknown command or option, a value of the wrong type
        command = exc.ctx.command_path if getattr(exc, "ctx", None) else "imgclf"
        _say(f"{exc.format_message()} (see '{command} --help')")
        sys.exit(USER_ERROR)
    except (Abort, KeyboardInterrupt):
        err.print("Interrupted.")
        sys.exit(INTERRUPTED)
    except ImgclfError as exc:
        _say(str(exc))
        sys.exit(USER_ERROR)
    except OSError as exc:  # a missing, unreadable, read-only or full place: the user's to fix
        _say(os_error_message(exc, next((a for a in sys.argv[1:] if not a.startswith("-")), None)))
        sys.exit(USER_ERROR)
    except Exception as exc:  # noqa: BLE001
        if _is_out_of_memory(exc):
            first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            _say(f"out of memory ({first}); use a smaller --target-size or --batch-size")
            sys.exit(USER_ERROR)
        where = _log_internal_error(exc)
        err.print(
            f"[bold red]Internal error[/bold red] (a bug in imgclf): {escape(type(exc).__name__)}: "
            f"{escape(str(exc).splitlines()[0][:200] if str(exc) else '')}\n  traceback: {escape(where)}",
            soft_wrap=True,
        )
        sys.exit(INTERNAL_ERROR)
    if code == INTERRUPTED:
        err.print("Interrupted.")
    sys.exit(code if isinstance(code, int) else 0)


def console() -> None:
    """The installed ``imgclf`` script and ``python -m imgclf.cli``: :func:`main`, then a quick exit.

    A process that loaded TensorFlow spends ~1.5 s on two cores tearing its modules down after the work is done
    (a few-shot ``imgclf train`` exited 1.6 s after its last line; 0.1 s this way). Once the command has returned,
    everything it wrote is closed, so this runs the exit handlers Python would run (``atexit``: logging, MLflow,
    temporary folders' finalizers), flushes stdout and stderr and ends the process with ``os._exit`` — unless another
    non-daemon thread is still alive, for which Python's own exit waits, as it would, or a profiler, debugger or
    coverage tool is attached (``python -m cProfile -m imgclf.cli`` writes its file after the command returns).
    In-process callers (tests) call :func:`main`, which raises ``SystemExit`` as usual.
    """
    import atexit
    import threading

    try:
        main()
    except SystemExit as exc:
        code = exc.code
        others = [
            t for t in threading.enumerate() if t is not threading.main_thread() and not t.daemon and t.is_alive()
        ]
        run_exit_handlers = getattr(atexit, "_run_exitfuncs", None)  # CPython's: what interpreter exit calls first
        watched = sys.getprofile() is not None or sys.gettrace() is not None  # a profiler, debugger or coverage
        if not isinstance(code, int) or others or run_exit_handlers is None or watched:  # writes after we return
            raise
        run_exit_handlers()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe: nothing left to say
                pass
        os._exit(code)


__all__ = ["app", "console", "main"]
