"""Putting a connected account's credentials onto an outgoing request."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence

import httpx
from pydantic import SecretStr

from ..catalog import CredentialPlacement
from .templates import render

__all__ = ["apply_placements", "credential_values"]


def credential_values(
    credentials: Mapping[str, SecretStr], data: Mapping[str, object]
) -> dict[str, str]:
    """Every value a placement template may use: the plain fields and the secrets."""
    values = {k: str(v) for k, v in data.items() if isinstance(v, (str, int))}
    values.update({k: v.get_secret_value() for k, v in credentials.items()})
    return values


def apply_placements(
    request: httpx.Request, placements: Sequence[CredentialPlacement], values: Mapping[str, str]
) -> None:
    """Set each placement's header, query parameter or Basic credentials on ``request``."""
    for placement in placements:
        if placement.in_ == "basic":
            user = render(placement.username or "", values, what="Basic auth")
            password = render(placement.password or "", values, what="Basic auth")
            pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
            request.headers["Authorization"] = f"Basic {pair}"
        elif placement.in_ == "header":
            value = render(placement.format or "", values, what=f"header {placement.name}")
            request.headers[placement.name or ""] = value
        else:
            value = render(placement.format or "", values, what=f"query {placement.name}")
            request.url = request.url.copy_merge_params({placement.name or "": value})
