"""CLI options made from the one declaration of the settings (:class:`imgclf.settings.Settings`)."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from typing import Annotated

import typer

from imgclf import settings


def cli_type(f) -> type:
    """The type of a setting's CLI option: the declared ``cli`` type, else the field's type without ``None``."""
    if f.metadata.get("cli") is not None:
        return f.metadata["cli"]
    hint = typing.get_type_hints(settings.Settings)[f.name]
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return args[0] if len(args) == 1 else str
    return hint


def option_name(name: str) -> str:
    """``--target-size`` for ``target_size``."""
    return "--" + name.replace("_", "-")


def option_names(f) -> str:
    """A setting's option: ``--target-size``; an on/off setting gets both ``--calibrate/--no-calibrate``."""
    name = option_name(f.name)
    return f"{name}/--no-{name[2:]}" if cli_type(f) is bool else name


def help_text(f) -> str:
    """A setting's help with its default, as ``--help`` shows it."""
    return f"{f.metadata['help']} (default: {settings.shown_default(f)})"


def with_settings_options(command):
    """Give ``command`` one ``--option`` per setting, defaulting to ``None`` (= not given), after its own
    parameters. The command receives them as keyword arguments named like the settings."""
    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    extra = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                cli_type(f) | None,
                typer.Option(option_names(f), help=help_text(f), rich_help_panel=f.metadata["panel"]),
            ],
        )  # fmt: skip
        for f in settings.fields()
    ]

    @functools.wraps(command)
    def wrapper(**kwargs):
        return command(**kwargs)

    wrapper.__signature__ = inspect.Signature([*own, *extra])
    return wrapper


def given_settings(values: dict) -> dict:
    """The settings given on the command line (``None`` = not given), with CLI text turned into values:
    ``--cache true|false`` (memory|none)."""
    out = {k: v for k, v in values.items() if k in settings.names() and v is not None}
    if isinstance(out.get("cache"), str):
        out["cache"] = {"true": True, "false": False}.get(out["cache"].lower(), out["cache"])
    if out.get("target_size") is not None:
        out["target_size"] = tuple(out["target_size"])
    return out
