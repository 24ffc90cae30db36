"""Rows as toolauth wrote them before the bound associated data (schema 4 and earlier): the
secrets encrypted with ``"<table>:<row id>"`` as associated data, a connect link stored under
its clear id. A copy of that codec, so upgrade tests build the databases old releases made."""

from __future__ import annotations

import json
from typing import Any

from toolauth._crypto import Keyring
from toolauth._models import ConnectionLink
from toolauth.store.rows import TABLES, AnyModel

__all__ = ["legacy_row"]


def legacy_row(keyring: Keyring, model: AnyModel) -> dict[str, Any]:
    """``model``'s row as the previous codec wrote it (no ``aad_version`` column yet)."""
    secret_field = "secrets" if isinstance(model, ConnectionLink) else "credentials"
    row = model.model_dump(mode="python", exclude={secret_field})
    row["version"] = model.version
    for column in {"scopes", "data"} & row.keys():
        value = row[column]
        row[column] = json.dumps(list(value) if isinstance(value, tuple) else value)
    for column in ("type", "auth_scheme", "status"):
        if column in row:
            row[column] = str(row[column])
    secrets = {k: v.get_secret_value() for k, v in getattr(model, secret_field).items()}
    aad = f"{TABLES[type(model)]}:{model.id}".encode()
    row["key_id"], row["secret"] = keyring.encrypt(json.dumps(secrets).encode(), aad=aad)
    return row
