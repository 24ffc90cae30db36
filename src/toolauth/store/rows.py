"""The row codec every backend shares: models to rows and back.

Turning models into rows — JSON for lists and dicts, ``credentials`` encrypted with the
keyring, the row's table and id as associated data — happens here, once, for every backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import SecretStr

from .._crypto import Keyring
from .._exceptions import DecryptionError
from .._models import AuthConfig, ConnectedAccount, ConnectionLink

__all__ = [
    "COLUMNS",
    "KINDS",
    "TABLES",
    "AnyModel",
    "Model",
    "decode_row",
    "encode_row",
]

Model = TypeVar("Model", AuthConfig, ConnectedAccount, ConnectionLink)
AnyModel = AuthConfig | ConnectedAccount | ConnectionLink

TABLES: dict[type[Any], str] = {
    AuthConfig: "auth_configs",
    ConnectedAccount: "connected_accounts",
    ConnectionLink: "connection_links",
}
_AUTH_CONFIG_COLUMNS = (
    "id", "toolkit", "name", "type", "auth_scheme", "scopes", "enabled", "is_default",
    "key_id", "secret", "version", "created_at", "updated_at",
)  # fmt: skip
_ACCOUNT_COLUMNS = (
    "id", "user_id", "toolkit", "auth_config_id", "status", "status_reason", "scopes",
    "expires_at", "issued_at", "label", "data", "shared", "key_id", "secret", "version",
    "created_at", "updated_at", "identity", "alias", "is_default",
)  # fmt: skip
_LINK_COLUMNS = (
    "id", "connected_account_id", "user_id", "toolkit", "auth_config_id", "auth_scheme",
    "status", "pending_key", "callback_url", "redirect_uri", "state_hash", "error",
    "error_description", "key_id", "secret", "version", "expires_at", "completed_at",
    "created_at", "updated_at", "confirm_hash", "scopes", "allow_identity_change",
)  # fmt: skip
# The columns of each table, the same in every dialect (migrations/<dialect>/*.sql).
COLUMNS: dict[type[Any], tuple[str, ...]] = {
    AuthConfig: _AUTH_CONFIG_COLUMNS,
    ConnectedAccount: _ACCOUNT_COLUMNS,
    ConnectionLink: _LINK_COLUMNS,
}
KINDS: dict[type[Any], str] = {
    AuthConfig: "auth config",
    ConnectedAccount: "connected account",
    ConnectionLink: "connect link",
}
_SECRET_FIELD: dict[type[Any], str] = {ConnectionLink: "secrets"}
_JSON_COLUMNS = frozenset({"scopes", "data", "identity"})


def encode_row(keyring: Keyring, model: AnyModel) -> dict[str, Any]:
    """The row for ``model``: plain columns, JSON for lists and dicts, the secrets encrypted."""
    secret_field = _SECRET_FIELD.get(type(model), "credentials")
    row = model.model_dump(mode="python", exclude={secret_field})
    row["version"] = model.version
    for column in _JSON_COLUMNS & row.keys():
        value = row[column]
        row[column] = json.dumps(list(value) if isinstance(value, tuple) else value)
    for column in ("type", "auth_scheme", "status"):
        if column in row:
            row[column] = str(row[column])
    secrets = {k: v.get_secret_value() for k, v in getattr(model, secret_field).items()}
    aad = f"{TABLES[type(model)]}:{model.id}".encode()
    row["key_id"], row["secret"] = keyring.encrypt(json.dumps(secrets).encode(), aad=aad)
    return row


def decode_row(keyring: Keyring, cls: type[Model], row: Mapping[str, Any]) -> Model:
    """The model for ``row``; secrets decrypted (a clear ``DecryptionError`` if they cannot be)."""
    values = dict(row)
    aad = f"{TABLES[cls]}:{values['id']}".encode()
    plaintext = keyring.decrypt(values.pop("key_id"), bytes(values.pop("secret")), aad=aad)
    try:
        secrets = json.loads(plaintext)
    except ValueError:
        raise DecryptionError(f"The secrets of {values['id']} are not readable.") from None
    for column in _JSON_COLUMNS & values.keys():
        if isinstance(values[column], str):
            values[column] = json.loads(values[column])
    secret_field = _SECRET_FIELD.get(cls, "credentials")
    values[secret_field] = {k: SecretStr(v) for k, v in secrets.items()}
    return cls.model_validate(values)
