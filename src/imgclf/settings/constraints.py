"""What a setting's value may be, declared with the setting (as scikit-learn's ``_parameter_constraints`` do:
``Interval(Real, 0, 1, closed="left")``, ``StrOptions({...})``), and checked from that declaration.

A constraint checks one value and returns it as the setting holds it (``check(name, value)``), and says in words
what it allows (``describe()``, shown in ``--help`` and in errors). Errors name the setting, what was expected and
the value received: ``dropout must be a number in [0, 1). Received: 1.5``. Nothing heavy is imported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from numbers import Integral, Real

from imgclf.errors import ImgclfError, check_one_of


@dataclass(frozen=True)
class Options:
    """One of ``values`` (``aliases`` map other spellings to one of them: ``{True: "memory"}``)."""

    values: tuple
    aliases: dict = field(default_factory=dict)

    def __init__(self, *values, aliases: dict | None = None):
        object.__setattr__(self, "values", tuple(values))
        object.__setattr__(self, "aliases", dict(aliases or {}))

    def check(self, name: str, value):
        key = value.lower() if isinstance(value, str) else value
        for alias, meant in self.aliases.items():
            if type(alias) is type(key) and alias == key:
                return meant
        return check_one_of(name, value, self.values)

    def allows(self, value) -> bool:
        return _passes(self, value)

    def describe(self) -> str:
        return repr(self.values[0]) if len(self.values) == 1 else f"one of {list(self.values)}"


@dataclass(frozen=True)
class Interval:
    """A number of ``kind`` (``int`` or ``float``; never a bool) between ``low`` and ``high`` (``None``: unbounded),
    ``closed`` on the ``"both"``, ``"left"``, ``"right"`` or ``"neither"`` side (scikit-learn's ``Interval``)."""

    kind: type
    low: float | None
    high: float | None
    closed: str = "both"

    def check(self, name: str, value):
        number = Integral if self.kind is int else Real
        ok = isinstance(value, number) and not isinstance(value, bool) and (self.kind is int or math.isfinite(value))
        ok = ok and self._inside(value)
        if not ok:
            raise ImgclfError(f"{name} must be {self.describe()}. Received: {value!r}")
        return int(value) if self.kind is int else float(value)

    def _inside(self, value) -> bool:
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (value < self.low or (value == self.low and not left)):
            return False
        return self.high is None or value < self.high or (value == self.high and right)

    def allows(self, value) -> bool:
        return _passes(self, value)

    def describe(self) -> str:
        word = "int" if self.kind is int else "float"
        if self.high is None and self.low == 0:
            return f"a positive {word}" if self.closed in ("right", "neither") else f"a non-negative {word}"
        if self.high is None and self.low == 1 and self.kind is int and self.closed in ("both", "left"):
            return "a positive int"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        brackets = {"both": "[]", "left": "[)", "right": "(]", "neither": "()"}[self.closed]
        return f"a number in {brackets[0]}{low}, {high}{brackets[1]}"


@dataclass(frozen=True)
class AnyOf:
    """Any one of several constraints, or a value of one of the types among them (``AnyOf(Options("balanced"),
    dict)``)."""

    parts: tuple

    def __init__(self, *parts):
        object.__setattr__(self, "parts", tuple(parts))

    def check(self, name: str, value):
        for part in self.parts:
            if isinstance(part, type):
                if isinstance(value, part) and not (part is not bool and isinstance(value, bool)):
                    return value
            elif part.allows(value):
                return part.check(name, value)
        raise ImgclfError(f"{name} must be {self.describe()}. Received: {value!r}")

    def allows(self, value) -> bool:
        return _passes(self, value)

    def describe(self) -> str:
        words = {dict: "a mapping", str: "a string", bool: "true or false"}
        return " or ".join(words.get(p, p.__name__) if isinstance(p, type) else p.describe() for p in self.parts)


def _passes(constraint, value) -> bool:
    try:
        constraint.check("value", value)
    except ImgclfError:
        return False
    return True


def check_value(name: str, value, constraint, none_allowed: bool = False):
    """``value`` as the setting ``name`` holds it, checked against ``constraint`` (an :class:`Options`,
    :class:`Interval` or :class:`AnyOf`; ``None``: anything). ``None`` passes when ``none_allowed`` (a setting
    whose default is ``None`` = not given).

    Raises:
        ImgclfError: ``value`` breaks ``constraint``, naming ``name``, what it allows and ``value``.
    """
    if value is None and none_allowed or constraint is None:
        return value
    return constraint.check(name, value)


__all__ = ["Options", "Interval", "AnyOf", "check_value"]
