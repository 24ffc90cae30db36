"""Small helpers shared by the built-in tools: error checks with toolkit hints, JSON bodies
read with their shape checked, and text trimming."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import httpx

from ._spec import ToolApiError, check_response

__all__ = [
    "check",
    "clip",
    "json_of",
    "objects",
    "optional",
    "required",
    "unexpected",
]

_KINDS = {dict: "an object", list: "a list", str: "text", int: "a number", float: "a number"}


def _seconds_until(epoch: str | None) -> str | None:
    try:
        return str(max(0, int(epoch or "") - int(time.time())))
    except ValueError:
        return None


def check(
    response: httpx.Response, toolkit: str, *, hints: Mapping[int, str] | None = None
) -> None:
    """Like ``check_response``, plus: a 403 that is really a rate limit (GitHub's primary and
    secondary limits) says so, and ``hints[status]`` is added to the message."""
    if response.is_success:
        return
    status = response.status_code
    headers = response.headers
    if status == 403 and (headers.get("x-ratelimit-remaining") == "0" or "retry-after" in headers):
        wait = headers.get("retry-after") or _seconds_until(headers.get("x-ratelimit-reset"))
        when = f" after {wait} s" if wait else " later"
        raise ToolApiError(
            f"{toolkit} rate limit reached. Wait and try again{when}.", status_code=status
        )
    try:
        check_response(response, toolkit)
    except ToolApiError as exc:
        hint = (hints or {}).get(status)
        if hint is None:
            raise
        raise ToolApiError(f"{exc} {hint}", status_code=status) from None


def json_of(response: httpx.Response, toolkit: str) -> Any:
    """The response's JSON body, or a ``ToolApiError`` when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        raise ToolApiError(
            f"{toolkit} sent an answer that is not JSON (HTTP {response.status_code}). "
            "Try again later; if it keeps happening, tell the user.",
            status_code=response.status_code,
        ) from None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    return next((k for t, k in _KINDS.items() if isinstance(value, t)), type(value).__name__)


def unexpected(toolkit: str, what: str) -> ToolApiError:
    """The error for an answer that is not shaped as the toolkit documents it."""
    return ToolApiError(
        f"{toolkit} sent an unexpected answer ({what}). Try again later; if it keeps "
        "happening, tell the user."
    )


def required(
    value: Any, toolkit: str, what: str, fields: Mapping[str, type] | None = None
) -> dict[str, Any]:
    """``value`` when it is an object (a ``dict``) with every one of ``fields`` of its type;
    ``unexpected`` otherwise. ``what`` names it in the message ("the answer", "an issue")."""
    if not isinstance(value, dict):
        raise unexpected(toolkit, f"{what} is {_kind(value)}, not an object")
    for name, kind in (fields or {}).items():
        if name not in value or value[name] is None:
            raise unexpected(toolkit, f"{what} has no {name!r}")
        found = value[name]
        if not isinstance(found, kind) or (isinstance(found, bool) and kind is not bool):
            wanted = _KINDS.get(kind, kind.__name__)
            raise unexpected(toolkit, f"{name!r} in {what} is {_kind(value[name])}, not {wanted}")
    return value


def objects(
    value: Any, toolkit: str, what: str, fields: Mapping[str, type] | None = None
) -> list[dict[str, Any]]:
    """``value`` when it is a list of objects with ``fields`` (see :func:`required`)."""
    if not isinstance(value, list):
        raise unexpected(toolkit, f"{what} is {_kind(value)}, not a list")
    return [required(item, toolkit, f"an item of {what}", fields) for item in value]


def optional(value: Any) -> dict[str, Any]:
    """``value`` if it is an object, else ``{}``: for nested parts a tool can do without."""
    return value if isinstance(value, dict) else {}


def clip(text: Any, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was longer (``None``
    when it is not text)."""
    if not isinstance(text, str):
        return None
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"
