"""``{placeholder}`` templates in catalog URLs and credential placements."""

from __future__ import annotations

import string
from collections.abc import Mapping

from .._exceptions import ConfigurationError

__all__ = ["render", "template_names"]


def template_names(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def render(template: str, values: Mapping[str, str], *, what: str) -> str:
    """Fill ``template``; a missing value is a ``ConfigurationError`` naming it (not the
    values: they may be secret)."""
    missing = template_names(template) - set(values)
    if missing:
        raise ConfigurationError(f"{what} needs {sorted(missing)}, which this account lacks.")
    return template.format_map(dict(values))
