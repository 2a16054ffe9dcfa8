"""The ``imgclf`` command line: a thin Typer + Rich skin over the Python API.

Each command lives in a small module (``train``, ``use``, ``data``, ``inspect``) and only calls public functions.
Bad input ends in one line ``Error: ...`` on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

from rich.markup import escape

from imgclf.cli import data, datasets, doctor, inspect, train, use  # noqa: F401  (register the commands)
from imgclf.cli._common import app, err


def main() -> None:
    """Console-script entry point: run the app, turning bad input into a one-line error."""
    from imgclf.errors import ImgclfError

    try:
        app()
    except ImgclfError as exc:
        err.print(f"[bold red]Error:[/bold red] {escape(str(exc))}", soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("Interrupted.")
        sys.exit(130)


__all__ = ["app", "main"]
