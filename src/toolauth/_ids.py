"""Random ids with a type prefix: ``ac_`` auth config, ``ca_`` connected account, ``ln_`` link,
``ev_`` event, ``au_`` audit entry, ``wh_`` webhook endpoint, ``dl_`` webhook delivery."""

from __future__ import annotations

import secrets

__all__ = ["new_id"]

_PREFIXES = frozenset({"ac", "ca", "ln", "ev", "au", "wh", "dl"})


def new_id(prefix: str) -> str:
    """A new id: the prefix, an underscore and 160 random bits as URL-safe base64 (27 chars)."""
    if prefix not in _PREFIXES:
        raise ValueError(f"unknown id prefix {prefix!r}")
    return f"{prefix}_{secrets.token_urlsafe(20)}"
