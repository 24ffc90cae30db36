"""Checks on the input of public methods. Each failure names the field and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pydantic import SecretStr

from ._exceptions import ValidationError

__all__ = ["check_credentials", "check_scopes", "check_text", "check_user_id"]

_SCOPE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")  # RFC 6749 §3.3 scope-token


def check_text(value: object, *, field: str, max_length: int = 200) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{field} must be a non-empty string.", field=field)
    if len(value) > max_length:
        raise ValidationError(f"{field} is longer than {max_length} characters.", field=field)
    return value.strip()


def check_user_id(value: object) -> str:
    return check_text(value, field="user_id", max_length=256)


def check_scopes(scopes: Iterable[str] | str | None, *, field: str = "scopes") -> tuple[str, ...]:
    """Scopes as a tuple of RFC 6749 §3.3 scope-tokens, duplicates removed, order kept."""
    if scopes is None:
        return ()
    if isinstance(scopes, str):
        raise ValidationError(f"{field} must be a list of strings, e.g. ['repo'].", field=field)
    seen: dict[str, None] = {}
    for scope in scopes:
        if not isinstance(scope, str) or not _SCOPE.match(scope):
            raise ValidationError(
                f"{field} contains {scope!r}, which is not a valid OAuth scope (RFC 6749 §3.3: "
                "printable ASCII without spaces, quotes or backslashes).",
                field=field,
            )
        seen[scope] = None
    return tuple(seen)


def check_credentials(
    credentials: Mapping[str, object] | None,
    *,
    allowed: Iterable[str],
    required: Iterable[str],
    field: str = "credentials",
) -> dict[str, SecretStr]:
    """A credentials mapping with only ``allowed`` keys and every ``required`` one, non-empty."""
    given = dict(credentials or {})
    allowed_set, required_set = set(allowed), set(required)
    unknown = sorted(set(given) - allowed_set)
    if unknown:
        raise ValidationError(
            f"{field} has unknown key(s) {unknown}; allowed: {sorted(allowed_set) or 'none'}.",
            field=field,
        )
    missing = sorted(k for k in required_set if not given.get(k))
    if missing:
        raise ValidationError(f"{field} is missing {missing}.", field=field)
    result = {}
    for key, value in given.items():
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not isinstance(value, str):
            raise ValidationError(f"{field}[{key!r}] must be a string.", field=f"{field}.{key}")
        result[key] = SecretStr(value)
    return result
