"""``imgclf datasets list | download NAME | path NAME``: the named datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn
from rich.table import Table

from imgclf._io import is_complete
from imgclf.cli._common import app, err, out

datasets_app = typer.Typer(help="Named datasets: list, download (checksummed, cached), path.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")

DataHome = Annotated[Path | None, typer.Option(help="Cache folder (default: $IMGCLF_HOME or ~/.cache/imgclf).")]


@datasets_app.command("list")
def list_datasets(data_home: DataHome = None):
    """The named datasets, and whether each is in the cache."""
    from imgclf.data.named import dataset_dir, load_registry

    table = Table("name", "layout", "cached", "description")
    for name, spec in sorted(load_registry().items()):
        ready = spec.builtin or is_complete(dataset_dir(name, data_home))
        table.add_row(name, spec.layout, "yes" if ready else "", escape(spec.description))
    out.print(table)


@datasets_app.command()
def download(
    name: Annotated[str, typer.Argument(help="Dataset name (`imgclf datasets list`).")],
    source: Annotated[Path | None, typer.Option("--from", help="Local archive or folder to use instead of the network.")] = None,
    data_home: DataHome = None,
):  # fmt: skip
    """Download (or take --from a local copy), verify the checksum, unpack into the cache."""
    from imgclf.data.named import download as fetch
    from imgclf.data.named import get_spec

    spec = get_spec(name)
    with Progress(TextColumn(name), BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err,
                  transient=True) as bar:  # fmt: skip
        task = bar.add_task("download", total=None)
        path = fetch(
            name, data_home, source, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if spec.licence:
        err.print(f"Licence: {escape(spec.licence)}. Cite: {escape(spec.citation)}")
    print(path)


@datasets_app.command()
def path(name: Annotated[str, typer.Argument(help="Dataset name.")], data_home: DataHome = None):
    """Print where a named dataset lives in the cache (exit 1 if it is not there yet)."""
    from imgclf.data.named import dataset_dir, get_spec

    spec = get_spec(name)
    folder = dataset_dir(name, data_home)
    print(folder)
    if not (spec.builtin or is_complete(folder)):
        err.print(f"{name} is not in the cache yet: run `imgclf datasets download {name}`.")
        raise typer.Exit(1)
