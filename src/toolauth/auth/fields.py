"""The fields of key schemes (API_KEY, BEARER_TOKEN, BASIC): what a user or an app typed,
checked against the catalog's field definitions and split into secret and plain values."""

from __future__ import annotations

import importlib
import re
import sys
from typing import Any

from pydantic import SecretStr

from .._exceptions import ValidationError
from .._validation import check_no_control_characters
from ..catalog import ApiKeySchemeSpec, CredentialField

__all__ = ["split_fields"]


def split_fields(
    spec: ApiKeySchemeSpec, values: dict[str, Any]
) -> tuple[dict[str, SecretStr], dict[str, str]]:
    """Check the user's values against the scheme's fields; (secret values, plain values)."""
    known = {f.name: f for f in spec.fields}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValidationError(
            f"Unknown field(s) {unknown}; this scheme takes {sorted(known)}.", field=unknown[0]
        )
    secrets: dict[str, SecretStr] = {}
    plain: dict[str, str] = {}
    for name, field in known.items():
        raw = values.get(name)
        if isinstance(raw, SecretStr):
            raw = raw.get_secret_value()
        raw = raw.strip() if isinstance(raw, str) else raw
        if raw in (None, ""):
            if field.required:
                raise ValidationError(f"{field.label} is required.", field=name)
            continue
        if not isinstance(raw, str):
            raise ValidationError(f"{field.label} must be text.", field=name)
        # Every value ends up in a header, a URL or a Basic pair: CR/LF/NUL would split them.
        check_no_control_characters(raw, field=name, what=field.label)
        if field.pattern and not re.fullmatch(field.pattern, raw):
            raise ValidationError(_format_error(field, len(raw)), field=name)
        if field.secret:
            secrets[name] = SecretStr(raw)
        else:
            plain[name] = raw
    return secrets, plain


def _format_error(field: CredentialField, given: int) -> str:
    """What a value of ``field`` should look like, and how long it should be (never the value:
    only its length)."""
    looks = field.placeholder or f"the pattern {field.pattern}"
    length = _length_rule(field.pattern or "")
    size = f", {length}" if length else ""
    return (
        f"{field.label} does not have the expected format: it should look like {looks}{size} "
        f"(the value given has {given})."
    )


def _length_rule(pattern: str) -> str | None:
    """How many characters ``pattern`` matches, in words ("at least 23 characters"), from the
    regex parser's width; ``None`` when it cannot tell."""
    try:  # the parser is private: re._parser from 3.11, sre_parse before
        parser: Any = importlib.import_module(
            "re._parser" if sys.version_info >= (3, 11) else "sre_parse"
        )
        low, high = parser.parse(pattern).getwidth()
    except Exception:
        return None
    if high >= parser.MAXREPEAT:
        return f"at least {low} characters" if low else None
    if low == high:
        return f"{low} characters"
    return f"{low} to {high} characters"
