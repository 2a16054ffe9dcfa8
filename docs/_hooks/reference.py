"""MkDocs hooks (``hooks:`` in mkdocs.yml): the pages that come from elsewhere are made at build time, never typed.

- ``cli.md``: mkdocs-click reads the click command this module builds from the Typer app (``imgclf --help``'s own
  source), so the reference cannot drift from the command.
- ``index.md``: the README, its ``docs/`` links made relative to the site.
- ``api.md``'s table of the settings: from their one declaration (:mod:`imgclf.settings`).
- ``bench.md``: ``bench/README.md``, its link to the README made a link to the home page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _command():
    """The click command of ``imgclf`` (Typer builds it from the same declarations ``--help`` prints)."""
    import typer

    from imgclf.cli import app

    return typer.main.get_command(app)


cli = _command()


def on_startup(**kwargs):
    sys.path.insert(0, str(Path(__file__).parent))  # mkdocs-click imports this module by name


def settings_table() -> str:
    """The settings' one declaration (:mod:`imgclf.settings`) as a Markdown table: name, option, default, help."""
    from imgclf import settings

    rows = ["| setting | `imgclf train` option | default | what it does |", "|---|---|---|---|"]
    for f in settings.fields():
        option = "--" + f.name.replace("_", "-")
        help_text = f.metadata["help"].replace("|", "\\|")
        rows.append(f"| `{f.name}` | `{option}` | `{settings.shown_default(f)}` | {help_text} |")
    return "\n".join(rows)


def on_page_markdown(markdown, page, config, files, **kwargs):
    if page.file.src_uri == "api.md":
        return markdown.replace("{{ settings_table }}", settings_table())
    return markdown


def on_page_read_source(page, config, **kwargs):
    if page.file.src_uri == "index.md":
        text = (ROOT / "README.md").read_text(encoding="utf-8")
        return re.sub(r"\]\(docs/", "](", text).replace("](bench/README.md)", "](bench.md)")
    if page.file.src_uri == "bench.md":
        text = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
        return re.sub(r"\]\(\.\./README\.md", "](index.md", text)
    return None
