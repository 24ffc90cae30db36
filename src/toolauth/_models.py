"""The public data: enums, auth configs and connected accounts.

Secret fields (``credentials``) are ``SecretStr``, left out of ``repr`` and of every
serialisation (``model_dump``, ``model_dump_json``): reading one takes an explicit
``.get_secret_value()`` inside toolauth's auth layer.
"""

from __future__ import annotations

from datetime import datetime, timezone
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "AccountIdentity",
    "AuthConfig",
    "AuthConfigType",
    "AuthScheme",
    "ConnectedAccount",
    "ConnectionLink",
    "ConnectionStatus",
    "LinkStatus",
    "utcnow",
]


def utcnow() -> datetime:
    """Now, as an aware UTC datetime truncated to microseconds (what both stores keep)."""
    return datetime.now(timezone.utc)


class _Choice(str, Enum):
    """A string enum whose members compare equal to their values and print as them."""

    def __str__(self) -> str:
        return str(self.value)

    @classmethod
    def parse(cls, value: object, *, field: str) -> Any:
        """The member for ``value`` (case-insensitive), or a ValidationError naming ``field``."""
        from ._exceptions import ValidationError

        if isinstance(value, cls):
            return value
        if isinstance(value, str):
            for member in cls:
                if value.upper() == member.value.upper() or value.upper() == member.name:
                    return member
            found = cls._missing_(value)
            if found is not None:
                return found
        allowed = ", ".join(repr(m.value) for m in cls)
        raise ValidationError(f"{field}={value!r} is not valid; use one of {allowed}.", field=field)


class AuthScheme(_Choice):
    """How a toolkit authenticates."""

    OAUTH2 = "OAUTH2"
    API_KEY = "API_KEY"
    BEARER_TOKEN = "BEARER_TOKEN"
    BASIC = "BASIC"
    NO_AUTH = "NO_AUTH"


class ConnectionStatus(_Choice):
    """Where a connected account stands. ``INITIATED`` → ``ACTIVE``, or one of the ends.

    ``PENDING_CONFIRMATION``: a new account whose grant is held until the app confirms the
    user (``connected_accounts.confirm``); it has no usable credentials yet."""

    INITIATED = "INITIATED"
    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"  # granted; waiting for the app to confirm
    ACTIVE = "ACTIVE"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"
    INACTIVE = "INACTIVE"


class AuthConfigType(_Choice):
    """Whose OAuth app an auth config uses: the deployment's settings, or its own."""

    MANAGED = "use_managed_auth"
    CUSTOM = "use_custom_auth"

    @classmethod
    def _missing_(cls, value: object) -> AuthConfigType | None:
        aliases = {"managed": cls.MANAGED, "custom": cls.CUSTOM}
        return aliases.get(str(value).lower()) if isinstance(value, str) else None


_Secrets = dict[str, SecretStr]


class AuthConfig(BaseModel):
    """How this deployment connects to one toolkit.

    ``credentials`` (the custom OAuth app's ``client_id`` / ``client_secret``) never appears in
    ``repr`` or JSON.
    """

    model_config = ConfigDict(frozen=True, use_enum_values=False)

    id: str
    toolkit: str
    name: str
    type: AuthConfigType
    auth_scheme: AuthScheme
    scopes: tuple[str, ...] = ()
    enabled: bool = True
    is_default: bool = False
    created_at: datetime
    updated_at: datetime
    credentials: _Secrets = Field(default_factory=dict, exclude=True, repr=False)
    version: int = Field(default=1, exclude=True, repr=False)

    @property
    def is_managed(self) -> bool:
        return self.type is AuthConfigType.MANAGED

    @property
    def is_shared(self) -> bool:
        """Its users are connected at once, with no link: a ``NO_AUTH`` config, or a key-scheme
        config that holds the credential itself (every user's calls carry it)."""
        if self.auth_scheme is AuthScheme.NO_AUTH:
            return True
        return self.auth_scheme is not AuthScheme.OAUTH2 and bool(self.credentials)


class AccountIdentity(BaseModel):
    """Who a connected account is at the provider: non-secret, captured when a connection
    completes (the OIDC ID token or userinfo, else the toolkit's identity endpoint).

    ``id`` is the provider's stable id (OIDC ``sub``, GitHub's numeric id); ``login`` a user
    name, ``email`` an address, ``name`` a display name (for Slack and Notion, the workspace).
    """

    model_config = ConfigDict(frozen=True)

    id: str | None = None
    login: str | None = None
    email: str | None = None
    name: str | None = None

    @property
    def display(self) -> str:
        """What to call the account: "alice@example.com", "octocat", or its name or id."""
        return self.email or self.login or self.name or self.id or "an unknown account"

    def same_as(self, other: AccountIdentity) -> bool:
        """Whether ``other`` is the same provider identity: by ``id`` when both have one,
        else by login, else by email (case-insensitive for these two)."""
        if self.id is not None and other.id is not None:
            return self.id == other.id
        for mine, theirs in ((self.login, other.login), (self.email, other.email)):
            if mine is not None and theirs is not None:
                return mine.casefold() == theirs.casefold()
        return True  # nothing to compare: not known to differ

    def names(self) -> tuple[str, ...]:
        """The values a model may name this account by (login, email), casefolded."""
        return tuple(v.casefold() for v in (self.login, self.email) if v)


class ConnectedAccount(BaseModel):
    """One user's credentials for one toolkit, through one auth config.

    ``credentials`` (tokens, keys, passwords) never appears in ``repr`` or JSON; ``data`` holds
    the non-secret values (for example a Jira site name or the provider's user id).
    """

    model_config = ConfigDict(frozen=True)

    id: str
    user_id: str
    toolkit: str
    auth_config_id: str
    status: ConnectionStatus
    status_reason: str | None = None
    scopes: tuple[str, ...] = ()
    expires_at: datetime | None = None
    issued_at: datetime | None = None
    label: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    shared: bool = False
    identity: AccountIdentity | None = None
    alias: str | None = None
    is_default: bool = False
    created_at: datetime
    updated_at: datetime
    credentials: _Secrets = Field(default_factory=dict, exclude=True, repr=False)
    version: int = Field(default=1, exclude=True, repr=False)

    @property
    def is_active(self) -> bool:
        return self.status is ConnectionStatus.ACTIVE

    @property
    def display_name(self) -> str:
        """How the account is named to a user or a model: its alias and who it is."""
        who = self.identity.display if self.identity is not None else None
        if self.alias and who:
            return f"{self.alias} ({who})"
        return self.alias or who or self.id


class LinkStatus(_Choice):
    """Where a connect link stands. Only a ``PENDING`` link can be used; a
    ``PENDING_CONFIRMATION`` one holds the provider's grant until the app confirms the user."""

    PENDING = "PENDING"
    PENDING_CONFIRMATION = "PENDING_CONFIRMATION"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"


class ConnectionLink(BaseModel):
    """A short-lived, single-use link that walks one user through one toolkit's flow.

    ``secrets`` (the PKCE code verifier, the form's CSRF token) never appear in ``repr``/JSON.
    """

    model_config = ConfigDict(frozen=True)

    id: str
    connected_account_id: str
    user_id: str
    toolkit: str
    auth_config_id: str
    auth_scheme: AuthScheme
    status: LinkStatus
    pending_key: str
    callback_url: str | None = None
    redirect_uri: str | None = None
    state_hash: str | None = None
    confirm_hash: str | None = None  # SHA-256 of the one-time confirmation code
    scopes: tuple[str, ...] | None = None  # what this link asks for (None: the config's)
    allow_identity_change: bool = False  # the app may reconnect another provider identity
    error: str | None = None
    error_description: str | None = None
    expires_at: datetime
    completed_at: datetime | None = None
    created_at: datetime
    updated_at: datetime
    secrets: _Secrets = Field(default_factory=dict, exclude=True, repr=False)
    version: int = Field(default=1, exclude=True, repr=False)

    def is_usable(self, now: datetime | None = None) -> bool:
        return self.status is LinkStatus.PENDING and (now or utcnow()) < self.expires_at
