"""Random ids with a type prefix: ``ac_`` auth config, ``ca_`` connected account, ``ln_`` link."""

from __future__ import annotations

import secrets

__all__ = ["new_id"]

_PREFIXES = frozenset({"ac", "ca", "ln"})


def new_id(prefix: str) -> str:
    """A new id: the prefix, an underscore and 160 random bits as URL-safe base64 (27 chars)."""
    if prefix not in _PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{secrets.token_urlsafe(20)}"
