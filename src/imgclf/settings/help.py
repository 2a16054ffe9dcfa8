"""How the declared settings read to a person: a default as ``--help`` shows it, and the estimator's ``Args:``."""

from __future__ import annotations

import dataclasses


def shown_default(f: dataclasses.Field) -> str:
    """How a setting's default reads in help text."""
    if f.metadata.get("shown"):
        return f.metadata["shown"]
    value = f.metadata.get("fallback", f.default)
    if isinstance(value, bool):
        return "on" if value else "off"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def describe_fields(fields, indent: str = "        ") -> str:
    """The settings ``fields`` (dataclass fields of :class:`imgclf.settings.Settings`) as the entries of a
    Google-style ``Args:`` section (``name (type): help Default: value.``); ``indent`` starts each entry."""
    return "\n".join(f"{indent}{f.name} ({f.type}): {f.metadata['help']} Default: ``{shown_default(f)}``."
                     for f in fields)  # fmt: skip
