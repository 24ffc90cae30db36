"""Checks on the input of public methods. Each failure names the field and what is allowed."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from pydantic import SecretStr

from ._exceptions import ValidationError

__all__ = [
    "check_credentials",
    "check_hosts",
    "check_no_control_characters",
    "check_scopes",
    "check_server_url",
    "check_text",
    "check_user_id",
    "is_loopback_host",
]

_SCOPE = re.compile(r"^[\x21\x23-\x5B\x5D-\x7E]+$")  # RFC 6749 §3.3 scope-token
# C0 and C1 control characters (NUL, CR, LF, TAB, DEL, U+0080-U+009F): never part of a key or
# token, and the tools of header and log injection (RFC 9110 §5.5 forbids CR, LF, NUL in
# field values; RFC 6749 §A.12 limits access tokens to printable ASCII).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_HOST = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$")


def check_no_control_characters(value: str, *, field: str, what: str | None = None) -> str:
    """``value`` unchanged, or a ``ValidationError`` naming ``field`` (never the value, which
    may be secret) when it holds a C0/C1 control character such as CR, LF or NUL."""
    if _CONTROL.search(value):
        raise ValidationError(
            f"{what or field} contains a control character (such as a line break, tab or NUL); "
            "credentials cannot contain them. Paste the value again without it.",
            field=field,
        )
    return value


def is_loopback_host(host: str | None) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_server_url(
    value: object, *, field: str, hosts: Iterable[str] | None = None, query: bool = True
) -> str:
    """An absolute ``https`` URL (``http`` only on a loopback host), without a fragment, user
    info, control characters or ``{}`` (catalog URLs are templates); on one of ``hosts`` when
    given. A ``ValidationError`` naming ``field`` otherwise."""
    if not isinstance(value, str) or not value:
        raise ValidationError(f"{field} must be a URL string.", field=field)
    shown = repr(value[:200])
    if _CONTROL.search(value) or " " in value or "{" in value or "}" in value:
        raise ValidationError(
            f"{field} {shown} contains spaces, control characters or braces.", field=field
        )
    try:
        parts = urlsplit(value)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise ValidationError(f"{field} {shown} is not a valid URL.", field=field) from None
    if parts.scheme not in ("https", "http") or not host:
        raise ValidationError(
            f"{field} {shown} is not an absolute http(s) URL (a relative URL is not allowed).",
            field=field,
        )
    if parts.scheme == "http" and not is_loopback_host(host):
        raise ValidationError(
            f"{field} {shown} must use https (http is allowed only on a loopback address).",
            field=field,
        )
    if parts.fragment or "#" in value or parts.username is not None:
        raise ValidationError(
            f"{field} {shown} must not have a fragment or user info.", field=field
        )
    if not query and parts.query:
        raise ValidationError(f"{field} {shown} must not have a query.", field=field)
    if hosts is not None and host.lower() not in {h.lower() for h in hosts}:
        raise ValidationError(
            f"{field} {shown} is on host {host!r}, not on the issuer's host; pass "
            f"allowed_hosts=[{host!r}] if that server is really part of this provider.",
            field=field,
        )
    return value


def check_hosts(hosts: Iterable[str] | str | None, *, field: str = "allowed_hosts") -> set[str]:
    """Host names (``auth.example.com``, no scheme, port or path), lower-cased."""
    if hosts is None:
        return set()
    if isinstance(hosts, str):
        raise ValidationError(
            f"{field} must be a list of host names, e.g. ['auth.example.com'].", field=field
        )
    found = set()
    for host in hosts:
        if not isinstance(host, str) or not _HOST.match(host.lower()):
            raise ValidationError(
                f"{field} contains {str(host)[:100]!r}, which is not a host name (no scheme, "
                "port or path: e.g. 'auth.example.com').",
                field=field,
            )
        found.add(host.lower())
    return found


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
        check_no_control_characters(value, field=f"{field}.{key}", what=f"{field}[{key!r}]")
        result[key] = SecretStr(value)
    return result
