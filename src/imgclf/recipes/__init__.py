"""Recipes: named, versioned sets of settings, shipped as YAML files in this package.

A recipe sets settings a user left unset (``None``; :func:`imgclf.settings.recipe_settable`); settings given
as well override it. ``imgclf recipes`` lists them with the figures measured for them; a run's ``config.yaml``
records the recipe's name and version under ``resolved``.

A recipe file reads::

    name: fast
    version: 1
    description: one line
    measured: what bench/time_to_accuracy.py measured, in words
    settings: {model: resnet_small, optimizer: adamw, ...}
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import yaml

from imgclf import settings as _settings
from imgclf.errors import ImgclfError, check_one_of


@dataclass(frozen=True)
class Recipe:
    """One recipe.

    Attributes:
        name: what ``--recipe`` takes.
        version: a positive int, raised whenever its settings change (recorded in ``config.yaml``).
        description: one line.
        measured: the figures measured with it (``bench/time_to_accuracy.py``), or ``""``.
        settings: ``{setting: value}`` for settings a recipe may set.
    """

    name: str
    version: int
    description: str
    measured: str = ""
    settings: dict = field(default_factory=dict)


def parse_recipe(text: str, source: str) -> Recipe:
    """A :class:`Recipe` from its YAML ``text`` (``source`` names it in errors).

    Raises:
        ImgclfError: not a mapping, a missing name/version/description, a version that is not a positive int, or a
            setting that does not exist or that recipes may not set.
    """
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ImgclfError(f"recipe {source} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict) or not {"name", "version", "description"} <= set(raw):
        raise ImgclfError(f"recipe {source} must be a mapping with name, version and description. Received: {raw!r}")
    version = raw["version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ImgclfError(f"recipe {source}: version must be a positive int. Received: {version!r}")
    values = raw.get("settings") or {}
    settable = _settings.recipe_settable()
    bad = sorted(k for k in values if k not in settable)
    if bad:
        raise ImgclfError(f"recipe {source} sets {bad[0]!r}; a recipe may set only {settable}.")
    return Recipe(str(raw["name"]), version, str(raw["description"]), str(raw.get("measured") or "").strip(), values)


@functools.cache
def _shipped() -> dict[str, Recipe]:
    out = {}
    for entry in sorted(resources.files(__name__).iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            recipe = parse_recipe(entry.read_text(encoding="utf-8"), entry.name)
            out[recipe.name] = recipe
    return out


def list_recipes() -> list[Recipe]:
    """The recipes shipped with imgclf, by name."""
    return [r for _, r in sorted(_shipped().items())]


def get_recipe(name: str) -> Recipe:
    """The recipe called ``name``.

    Raises:
        ImgclfError: no such recipe.
    """
    recipes = _shipped()
    return recipes[check_one_of("recipe", name, recipes)]


def effective_settings(given: dict) -> dict:
    """Every setting's value: ``given`` (``{name: value}``, ``None`` = not given), then the recipe it names, then
    each setting's fallback (:func:`imgclf.settings.fallbacks`). Settings without either stay ``None`` (their
    value derives from others, e.g. the model's ``target_size``).

    Raises:
        ImgclfError: an unknown recipe.
    """
    values = dict(given)
    recipe = get_recipe(values["recipe"]) if values.get("recipe") is not None else None
    for name, value in (recipe.settings if recipe else {}).items():
        if values.get(name) is None:
            values[name] = value
    for name, value in _settings.fallbacks().items():
        if values.get(name) is None:
            values[name] = value
    return values


__all__ = ["Recipe", "parse_recipe", "list_recipes", "get_recipe", "effective_settings"]
