"""``imgclf studio``: the browser app over a project folder (data folders + ``runs/``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from imgclf.cli._common import app, err


@app.command()
def studio(
    project: Annotated[Path, typer.Argument(help="Folder holding the data folder(s) and runs/ (default: this folder).")] = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this computer only; elsewhere a token is required).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
):  # fmt: skip
    """The studio: the whole loop in a browser on this computer — data, checks, wrong labels, webcam pictures,
    training, runs, exports, live predictions, the inbox (needs the serve extra)."""
    from imgclf.studio.app import serve_studio

    def announce(address: str) -> None:
        err.print(f"imgclf studio for {escape(str(project.resolve()))}: open {escape(address)}  (Ctrl-C stops)")

    serve_studio(project, host, port, announce)
