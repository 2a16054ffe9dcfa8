"""CLI options made from the one declaration of the settings (:class:`imgclf.settings.Settings`)."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from typing import Annotated

import typer

from imgclf import settings


@functools.cache
def _hints() -> dict:
    """The settings' type hints, evaluated once (every command's start pays for it: 0.3 s when done per option)."""
    return typing.get_type_hints(settings.Settings)


def cli_type(f) -> type:
    """The type of a setting's CLI option: the declared ``cli`` type, else the field's type without ``None``."""
    if f.metadata.get("cli") is not None:
        return f.metadata["cli"]
    hint = _hints()[f.name]
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


def _with_options(command, extra: list[inspect.Parameter]):
    """``command`` with keyword-only parameters ``extra`` after its own; it receives them in its ``**kwargs``."""
    own = [
        p
        for p in inspect.signature(command, eval_str=True).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]

    @functools.wraps(command)
    def wrapper(**kwargs):
        return command(**kwargs)

    wrapper.__signature__ = inspect.Signature([*own, *extra])
    return wrapper


def _option(name: str, kind: type, option: typer.models.OptionInfo) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[kind | None, option]
    )


def with_settings_options(command, names: tuple[str, ...] | None = None):
    """Give ``command`` one ``--option`` per setting (of ``names``, else every one), defaulting to ``None`` (= not
    given), after its own parameters. The command receives them as keyword arguments named like the settings."""
    return _with_options(command, [
        _option(f.name, cli_type(f), typer.Option(option_names(f), help=help_text(f), rich_help_panel=f.metadata["panel"]))
        for f in settings.fields() if names is None or f.name in names
    ])  # fmt: skip



def with_these_settings_options(*names: str):
    """A decorator: :func:`with_settings_options` for the settings ``names`` only (``imgclf doctor``'s table
    options)."""
    return functools.partial(with_settings_options, names=names)


#: The augmentation options' names (:data:`imgclf.settings.AUGMENTATION_OPTIONS`).
AUG_FLAGS = tuple(o.name for o in settings.AUGMENTATION_OPTIONS)


def with_augmentation_options(command):
    """Give ``command`` one ``--option`` per augmentation field (``--rotation-range``...), from their one declaration
    (:data:`imgclf.settings.AUGMENTATION_OPTIONS`), each defaulting to ``None`` (= not given)."""
    return _with_options(command, [
        _option(o.name, o.cli, typer.Option(help=o.help, rich_help_panel=settings.AUGMENTATION_PANEL))
        for o in settings.AUGMENTATION_OPTIONS
    ])  # fmt: skip


def augmentation_flags(values: dict) -> dict:
    """The augmentation options given (not ``None``), ranges given as text (``0.8,1.2``) turned into numbers.

    Raises:
        ImgclfError: a range that is not one or two numbers of its kind.
    """
    out = {}
    for o in settings.AUGMENTATION_OPTIONS:
        value = values.get(o.name)
        if value is not None:
            out[o.name] = parse_range(value, o.number) if o.number is not None else value
    return out


def parse_range(text: str | None, number=float):
    """``"0.2"`` → 0.2; ``"0.8,1.2"`` → [0.8, 1.2]; ``None`` stays ``None``. ``number``: ``float`` or ``int``.

    Raises:
        ImgclfError: not one or two numbers of that kind.
    """
    if text is None:
        return None
    from imgclf.errors import ImgclfError

    kind = "an integer" if number is int else "a number"
    try:
        values = [number(v) for v in text.split(",")]
    except ValueError:
        raise ImgclfError(f"expected {kind} or LOW,HIGH. Received: {text!r}") from None
    if len(values) > 2:
        raise ImgclfError(f"expected {kind} or LOW,HIGH. Received: {text!r}")
    return values[0] if len(values) == 1 else values


def given_settings(values: dict) -> dict:
    """The settings given on the command line (``None`` = not given), ``target_size`` as a tuple (``--cache
    true|false`` are the setting's own aliases of memory|none)."""
    out = {k: v for k, v in values.items() if k in settings.names() and v is not None}
    if out.get("target_size") is not None:
        out["target_size"] = tuple(out["target_size"])
    return out
