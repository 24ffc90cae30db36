"""The row codec every backend shares: models to rows and back.

Turning models into rows — JSON for lists and dicts, ``credentials`` encrypted with the
keyring — happens here, once, for every backend.

The database is not trusted (SECURITY.md, "The database is not trusted"). Whoever can write
rows without the key must not be able to send a secret somewhere else, so the AEAD's
associated data (NIST SP 800-38D §3) holds, besides the table and the row's key, every plain
column that decides where the row's secret goes (:data:`BOUND`): changing one makes the row
fail its integrity check (a :class:`~toolauth.DecryptionError` naming the row) before the
secret is used. Rows carry the version of their associated data (``aad_version``): version 1
(``"<table>:<id>"``, before this rule) is still read, and rewritten as version 2 when the store
opens (:meth:`toolauth.store.sql.SQLStore.open`) or the row is next written.

Connect links are stored under the SHA-256 of their id (:func:`link_key`): the id is the
link (whoever holds it may open it), so a read of the database must not give usable links.
The clear id travels inside the ciphertext, so the process that holds the key reads a link
back with its id, and a model's ``id`` is always the id the URL carries.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import SecretStr

from .._crypto import Keyring
from .._exceptions import DecryptionError
from .._models import AuthConfig, ConnectedAccount, ConnectionLink

__all__ = [
    "AAD_VERSION",
    "BOUND",
    "COLUMNS",
    "KINDS",
    "TABLES",
    "AnyModel",
    "Model",
    "decode_plain",
    "decode_row",
    "encode_row",
    "link_key",
    "row_key",
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
    "key_id", "secret", "aad_version", "version", "created_at", "updated_at",
)  # fmt: skip
_ACCOUNT_COLUMNS = (
    "id", "user_id", "toolkit", "auth_config_id", "status", "status_reason", "scopes",
    "expires_at", "issued_at", "label", "data", "shared", "key_id", "secret", "aad_version",
    "version", "created_at", "updated_at", "identity", "alias", "is_default",
)  # fmt: skip
_LINK_COLUMNS = (
    "id", "connected_account_id", "user_id", "toolkit", "auth_config_id", "auth_scheme",
    "status", "pending_key", "callback_url", "redirect_uri", "state_hash", "error",
    "error_description", "key_id", "secret", "aad_version", "version", "expires_at",
    "completed_at", "created_at", "updated_at", "confirm_hash", "scopes", "allow_identity_change",
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

AAD_VERSION = 2  # what every write uses; 1 is read, and rewritten
_LEGACY_AAD = 1
# The plain columns bound into each row's associated data: those that decide whose secret it
# is and where it goes. An auth config's client secret goes to its toolkit's token endpoint,
# as its type (managed: the deployment's app; custom: its own) and scheme say. An account's
# credentials belong to one user, toolkit and auth config, are sent to the API its ``data``
# names (URL variables such as a site or region, a Basic username), and ``shared`` decides
# that its auth config's credential is used instead. A link's state, PKCE verifier and form
# token belong to one user's account through one auth config, and its ``redirect_uri`` and
# ``callback_url`` say where the code and the user go.
BOUND: dict[type[Any], tuple[str, ...]] = {
    AuthConfig: ("toolkit", "type", "auth_scheme"),
    ConnectedAccount: ("user_id", "toolkit", "auth_config_id", "shared", "data"),
    ConnectionLink: (
        "connected_account_id", "user_id", "toolkit", "auth_config_id", "auth_scheme",
        "callback_url", "redirect_uri", "confirm_hash", "allow_identity_change",
    ),
}  # fmt: skip
_LINK_ID = "_link_id"  # the clear link id, inside a link's ciphertext


def link_key(link_id: str) -> str:
    """The key a link is stored under: the SHA-256 of its id (160 random bits, so a hash
    without a salt is enough), never the id itself."""
    return "sha256:" + hashlib.sha256(link_id.encode()).hexdigest()


def row_key(cls: type[Any], id: str) -> str:
    """The ``id`` column of model ``id`` of ``cls``."""
    return link_key(id) if cls is ConnectionLink else id


def _canonical(value: Any) -> Any:
    """``value`` as both databases give it back: a whole float becomes an int (PostgreSQL's
    ``jsonb`` keeps ``1e16`` as ``10000000000000000``)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def _aad(cls: type[Any], key: str, model: AnyModel) -> bytes:
    """Version-2 associated data: the table, the row's key and its bound columns, as
    canonical JSON (one spelling for one content, so nothing can be moved between fields)."""
    bound = model.model_dump(mode="json", include=set(BOUND[cls]))
    document = {"v": AAD_VERSION, "table": TABLES[cls], "id": key, "bound": _canonical(bound)}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def encode_row(keyring: Keyring, model: AnyModel) -> dict[str, Any]:
    """The row for ``model``: plain columns, JSON for lists and dicts, the secrets encrypted
    with the row's bound columns as associated data."""
    cls = type(model)
    secret_field = _SECRET_FIELD.get(cls, "credentials")
    row = model.model_dump(mode="python", exclude={secret_field})
    row["version"] = model.version
    for column in _JSON_COLUMNS & row.keys():
        value = row[column]
        row[column] = json.dumps(list(value) if isinstance(value, tuple) else value)
    for column in ("type", "auth_scheme", "status"):
        if column in row:
            row[column] = str(row[column])
    secrets = {k: v.get_secret_value() for k, v in getattr(model, secret_field).items()}
    key = row["id"] = row_key(cls, model.id)
    if cls is ConnectionLink:
        secrets[_LINK_ID] = model.id
    aad = _aad(cls, key, model)
    row["key_id"], row["secret"] = keyring.encrypt(json.dumps(secrets).encode(), aad=aad)
    row["aad_version"] = AAD_VERSION
    return row


def decode_plain(cls: type[Model], row: Mapping[str, Any]) -> Model:
    """The model for ``row`` from its plain columns only, without its secrets (to tell what a
    change was, for a row whose secrets cannot be read)."""
    values = {k: v for k, v in row.items() if k not in ("key_id", "secret", "aad_version")}
    for column in _JSON_COLUMNS & values.keys():
        if isinstance(values[column], str):
            values[column] = json.loads(values[column])
    return cls.model_validate(values)


def decode_row(keyring: Keyring, cls: type[Model], row: Mapping[str, Any]) -> Model:
    """The model for ``row``; secrets decrypted. A row whose secret or bound columns were
    changed without the key is a ``DecryptionError`` naming the row, never the secret."""
    key = row["id"]
    what = f"{KINDS[cls]} {key}"
    key_id, blob = row["key_id"], bytes(row["secret"])
    version = row.get("aad_version", _LEGACY_AAD)
    model = decode_plain(cls, row)
    if version == AAD_VERSION:
        aad = _aad(cls, key, model)
    elif version == _LEGACY_AAD:
        aad = f"{TABLES[cls]}:{key}".encode()
    else:
        raise DecryptionError(
            f"The {what} was written by a newer toolauth (associated data version "
            f"{version!r}). Upgrade toolauth."
        )
    plaintext = keyring.decrypt(key_id, blob, aad=aad, what=what)
    try:
        secrets = json.loads(plaintext)
    except ValueError:
        raise DecryptionError(f"The secrets of {what} are not readable.") from None
    update: dict[str, Any] = {}
    if cls is ConnectionLink and version == AAD_VERSION:
        link_id = secrets.pop(_LINK_ID, None)
        if not isinstance(link_id, str) or link_key(link_id) != key:
            raise DecryptionError(f"The {what} does not hold the id it is stored under.")
        update["id"] = link_id
    update[_SECRET_FIELD.get(cls, "credentials")] = {k: SecretStr(v) for k, v in secrets.items()}
    return model.model_copy(update=update)
