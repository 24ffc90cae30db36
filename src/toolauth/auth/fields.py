"""The fields of key schemes (API_KEY, BEARER_TOKEN, BASIC): what a user or an app typed,
checked against the catalog's field definitions and split into secret and plain values."""

from __future__ import annotations

import re
from typing import Any

from pydantic import SecretStr

from .._exceptions import ValidationError
from .._validation import check_no_control_characters
from ..catalog import ApiKeySchemeSpec

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
            hint = f" It should look like {field.placeholder}." if field.placeholder else ""
            raise ValidationError(
                f"{field.label} does not have the expected format.{hint}", field=name
            )
        if field.secret:
            secrets[name] = SecretStr(raw)
        else:
            plain[name] = raw
    return secrets, plain
