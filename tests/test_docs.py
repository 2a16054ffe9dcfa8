"""The documentation site builds with ``mkdocs build --strict`` (no broken link, anchor or docstring), and its
command reference is generated from the command, not typed."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install '.[docs]')")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8"))))


def test_command_reference_lists_every_command_and_train_option(site):
    import typer

    from imgclf.cli import app

    command = typer.main.get_command(app)
    reference = text_of(site / "cli" / "index.html")
    for name in command.commands:
        assert f"imgclf {name}" in reference, name
    train_options = [o for p in command.commands["train"].params for o in p.opts if o.startswith("--")]
    assert "--rotation-range" in train_options and "--target-size" in train_options
    missing = [o for o in train_options if o not in reference]
    assert not missing, missing


def test_api_reference_comes_from_the_docstrings(site):
    from imgclf.predict.predictor import Predictor

    api = text_of(site / "api" / "index.html")
    first_line = Predictor.predict.__doc__.strip().split("\n")[0]
    assert first_line in api and "FitResult" in api
    from imgclf import settings

    epochs = next(f for f in settings.fields() if f.name == "epochs")
    assert epochs.metadata["help"] in api  # the estimator's parameters, from the settings' one declaration


def test_readme_is_the_front_page_and_short(site):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    front = text_of(site / "index.html")
    assert 'pip install ".[test]" && python -m pytest' in front
    for page in re.findall(r"\]\(docs/([a-z\-]+)\.md", readme):
        assert (site / page / "index.html").is_file(), page


def test_api_reference_settings_table_names_real_train_options(site):
    import typer

    from imgclf import settings
    from imgclf.cli import app

    train = typer.main.get_command(app).commands["train"]
    options = {o for p in train.params for o in p.opts}
    api = text_of(site / "api" / "index.html")
    for field in settings.fields():
        option = "--" + field.name.replace("_", "-")
        assert option in options and option in api, option
