"""Small helpers shared by the built-in tools: error checks with toolkit hints, safe path
segments, JSON bodies and text trimming."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx

from ._spec import ToolApiError, check_response

__all__ = ["check", "clip", "json_of", "segment"]


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
            "Try again later.",
            status_code=response.status_code,
        ) from None


def segment(value: str, what: str) -> str:
    """``value`` as one URL path segment (percent-encoded; never ``.`` or ``..``)."""
    if value in ("", ".", ".."):
        raise ToolApiError(f"{value!r} is not a valid {what}. Fix the arguments and try again.")
    return quote(value, safe="")


def clip(text: str | None, limit: int) -> str | None:
    """``text`` cut to ``limit`` characters, with an ellipsis when it was longer."""
    if text is None or len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + "…"
