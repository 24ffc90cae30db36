"""URL paths for tools: a model-chosen value fills one path segment and can never pick another
endpoint."""

from __future__ import annotations

import string
from urllib.parse import quote

from .._exceptions import ValidationError

__all__ = ["path"]

_FORMATTER = string.Formatter()


def _placeholders(template: str) -> list[str]:
    """The ``{name}`` placeholders of ``template``; ``ValueError`` for any other field."""
    names: list[str] = []
    for _, field, spec, conversion in _FORMATTER.parse(template):
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            raise ValueError(f"path template {template!r}: use plain {{name}} placeholders")
        names.append(field)
    return names


def _check_template(template: str) -> None:
    literal = "".join(text for text, *_ in _FORMATTER.parse(template))
    if template.startswith("//") or "://" in template or any(c in literal for c in "?#\\"):
        raise ValueError(
            f"path template {template!r} must be a path only (no host, query or fragment)"
        )
    if any(part in (".", "..") for part in literal.split("/")):
        raise ValueError(f"path template {template!r} must not contain '.' or '..' segments")


def _segment(name: str, value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"path value {name} must be a str or an int, not {type(value).__name__}")
    text = str(value)
    if text in ("", ".", ".."):
        shown = "empty" if not text else f"{text!r}"
        raise ValidationError(
            f"The argument {name} is {shown}, which is not a valid name or id here. Fix the "
            "arguments and try again.",
            field=name,
        )
    return quote(text, safe="")  # "/", "?", "#", "%", "\" and non-ASCII are all encoded


def path(template: str, **values: str | int) -> str:
    """``template`` with each ``{name}`` replaced by ``values[name]`` as ONE path segment.

    Every value is percent-encoded whole (``/``, ``?``, ``#``, ``%``, ``\\`` and non-ASCII
    included), so an argument the model chose cannot climb out of its segment, add a query
    or point the request at another host: the result is always a relative path under the
    toolkit's API.

    ```python
    client.put(path("/user/starred/{owner}/{repo}", owner=owner, repo=repo))
    ```

    Raises:
        ValidationError: a value is empty, ``.`` or ``..`` (``field`` names the argument).
        ValueError: the template's placeholders are not exactly the names given, or the
            template is not a plain path.
    """
    names = _placeholders(template)
    if sorted(set(names)) != sorted(values):
        missing = sorted(set(names) - set(values))
        extra = sorted(set(values) - set(names))
        raise ValueError(
            f"path template {template!r} does not match its values "
            f"(missing: {missing or 'none'}, not in the template: {extra or 'none'})"
        )
    _check_template(template)
    encoded = {name: _segment(name, value) for name, value in values.items()}
    return _FORMATTER.vformat(template, (), encoded)
