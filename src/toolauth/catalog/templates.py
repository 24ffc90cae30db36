"""``{placeholder}`` templates in catalog URLs and credential placements."""

from __future__ import annotations

import string
from collections.abc import Mapping

from .._exceptions import ConfigurationError

__all__ = ["render", "template_names"]


def template_names(template: str, *, what: str = "template") -> set[str]:
    """The ``{names}`` in ``template``; a ``ConfigurationError`` when it is malformed (an
    unclosed brace, an empty ``{}``, an attribute or index that could read beyond a value)."""
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ConfigurationError(f"{what} is not a valid template ({exc}).") from None
    names = set()
    for _, name, _, _ in fields:
        if name is None:
            continue
        if not name.isidentifier():
            raise ConfigurationError(
                f"{what} is not a valid template: use {{name}} placeholders only."
            )
        names.add(name)
    return names


def render(template: str, values: Mapping[str, str], *, what: str) -> str:
    """Fill ``template``; a missing value is a ``ConfigurationError`` naming it (not the
    values: they may be secret)."""
    missing = template_names(template, what=what) - set(values)
    if missing:
        raise ConfigurationError(f"{what} needs {sorted(missing)}, which this account lacks.")
    return template.format_map(dict(values))
