"""The whole error tree of toolauth.

```
ToolAuthError                      error = "toolauth_error"
├── ClientClosedError              the client was closed (also a RuntimeError): make a new one
├── ConfigurationError             bad settings, missing key, unknown toolkit, missing OAuth app
│   └── CatalogError               a toolkit definition file that does not validate
├── ValidationError                bad input to a public method: names the field and what is allowed
├── NotFoundError                  no auth config / connected account / link with that id
├── ConflictError                  the change clashes with the current state (e.g. config in use)
├── ConfirmationError              a confirmation code unknown, used, expired, or another user's
├── StoreError                     the database failed
│   ├── DecryptionError            wrong or rotated key, tampered row
│   └── MigrationError             schema newer than this code, or a migration failed
├── ConnectionRequiredError        no ACTIVE account to act with; carries toolkit and status
│   └── ScopeRequiredError         the account lacks a scope the call needs; carries scopes
├── AccountChoiceError             several accounts of a toolkit and no way to tell which one
├── ConnectionFailedError          a connected account ended FAILED / EXPIRED / INACTIVE
├── ConnectionTimeoutError         waiting for a connection ran out of time (also a TimeoutError)
├── ToolApiError                   a toolkit's API refused a tool call; carries ``status_code``
├── WebhookVerificationError       a webhook delivery's signature or timestamp did not verify
└── OAuthError                     an authorization server answered with an error
    └── TokenRefreshError          a refresh failed; ``retryable`` says whether to try again
```

``error`` is always a short snake_case code a program can branch on, saying what went wrong:
a fixed code per class (``"not_found"``, ``"connection_required"``, …), and for
:class:`OAuthError` the code the authorization server sent (RFC 6749 §5.2, e.g.
``"invalid_grant"``), as Authlib's errors do. Context goes on attributes. No message ever
contains a token, secret, key or password.
"""

from __future__ import annotations

__all__ = [
    "AccountChoiceError",
    "CatalogError",
    "ClientClosedError",
    "ConfigurationError",
    "ConfirmationError",
    "ConflictError",
    "ConnectionFailedError",
    "ConnectionRequiredError",
    "ConnectionTimeoutError",
    "DecryptionError",
    "MigrationError",
    "NotFoundError",
    "OAuthError",
    "ScopeRequiredError",
    "StoreError",
    "TokenRefreshError",
    "ToolApiError",
    "ToolAuthError",
    "ValidationError",
    "WebhookVerificationError",
]


class ToolAuthError(Exception):
    """Base class of every error toolauth raises on purpose."""

    error: str = "toolauth_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ClientClosedError(ToolAuthError, RuntimeError):
    """The client was closed (``aclose()``, ``close()`` or the end of ``async with``); a closed
    client never reopens behind your back. Make a new one."""

    error = "client_closed"


class ConfigurationError(ToolAuthError):
    """The deployment is set up wrongly; the message says which setting to change."""

    error = "configuration_error"


class CatalogError(ConfigurationError):
    """A toolkit definition did not validate; names the file and the field."""

    error = "catalog_error"

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message)
        self.source = source


class ValidationError(ToolAuthError):
    """Bad input to a public method. Nothing was changed."""

    error = "validation_error"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotFoundError(ToolAuthError):
    """No object with that id (or it belongs to someone else)."""

    error = "not_found"

    def __init__(self, kind: str, id: str) -> None:
        super().__init__(f"No {kind} with id {id!r}.")
        self.kind = kind
        self.id = id


class ConflictError(ToolAuthError):
    """The change clashes with the current state; nothing was changed."""

    error = "conflict"


class ConfirmationError(ToolAuthError):
    """``connected_accounts.confirm(code, user_id=...)`` refused the code; nothing changed.

    ``reason`` says why: ``"unknown"`` (no such code, or already used), ``"expired"`` (not
    confirmed in time: the grant was revoked and erased), ``"wrong_user"`` (the link was made
    for another user) or ``"identity_mismatch"`` (the grant is of another provider identity
    than the account it would reconnect). The message never contains the code.
    """

    error = "confirmation_failed"

    _MESSAGES = {
        "unknown": "This confirmation code is unknown or was already used. Nothing was "
        "changed; if the user still needs to connect, create a new connect link.",
        "expired": "This confirmation code expired: the grant was not confirmed in time "
        "(TOOLAUTH_CONFIRM_TTL), so it was revoked and erased. Create a new connect link.",
        "wrong_user": "This confirmation code belongs to a connect link made for another "
        "user, so it was not confirmed and nothing was changed. Pass the user_id of the "
        "user signed in to your app, or send this user a link of their own.",
        "identity_mismatch": "This grant is of another provider identity than the account it "
        "would reconnect, so it was not confirmed and the account was not changed. Create a "
        "link with allow_identity_change=True if the switch is meant, or connect another "
        "account with an alias.",
    }

    def __init__(self, reason: str) -> None:
        super().__init__(self._MESSAGES[reason])
        self.reason = reason


class StoreError(ToolAuthError):
    """The database failed."""

    error = "store_error"


class DecryptionError(StoreError):
    """A secret could not be decrypted: the key is missing or wrong, or the row was altered."""

    error = "decryption_error"


class MigrationError(StoreError):
    """The database schema cannot be brought to the version this code needs."""

    error = "migration_error"


class ConnectionRequiredError(ToolAuthError):
    """There is no ACTIVE account to act with: the user must connect (or reconnect) first.

    Carries ``toolkit``, ``connected_account_id`` (when there is one) and ``status``.
    """

    error = "connection_required"

    def __init__(
        self, toolkit: str, connected_account_id: str | None = None, status: str | None = None
    ) -> None:
        what = (
            f"account {connected_account_id} is {status}"
            if connected_account_id
            else ("there is no connected account")
        )
        super().__init__(
            f"A {toolkit} connection is required: {what}. Create a connect link for the user."
        )
        self.toolkit = toolkit
        self.connected_account_id = connected_account_id
        self.status = status


class ScopeRequiredError(ConnectionRequiredError):
    """The account lacks a scope the call needs: known from its granted scopes, or from the
    provider's 403 ``insufficient_scope`` (RFC 6750 §3.1). The user must grant ``scopes`` on
    the same account (a step-up link); the account keeps working meanwhile.
    """

    error = "scope_required"

    def __init__(
        self,
        toolkit: str,
        scopes: tuple[str, ...] = (),
        connected_account_id: str | None = None,
    ) -> None:
        ToolAuthError.__init__(
            self,
            f"The {toolkit} account lacks a permission this needs"
            + (f" ({', '.join(scopes)})" if scopes else "")
            + ". The user must grant it through a connect link for the same account.",
        )
        self.toolkit = toolkit
        self.connected_account_id = connected_account_id
        self.status = "ACTIVE"
        self.scopes = scopes


class AccountChoiceError(ToolAuthError):
    """The user has several accounts of a toolkit and the call did not say which one (and no
    default is set), or named none of them. Never a guess: ``choices`` lists them (``id``,
    ``alias``, ``connected_as``, ``is_default``), and the message tells the model what to pass.
    """

    error = "account_choice_required"

    def __init__(
        self, toolkit: str, choices: list[dict[str, object]], asked: str | None = None
    ) -> None:
        names = ", ".join(
            f"{c['alias']} ({c['connected_as']})" if c.get("alias") and c.get("connected_as")
            else str(c.get("alias") or c.get("connected_as") or c["id"])
            for c in choices
        )  # fmt: skip
        first = (
            f"No connected {toolkit} account is named {asked!r}"
            if asked is not None
            else f"The user has several {toolkit} accounts and none is the default"
        )
        super().__init__(
            f"{first}. Accounts: {names}. Call the tool again with `account` set to one of "
            "these aliases, logins or emails; if it is not clear which one the user means, "
            "ask them."
        )
        self.toolkit = toolkit
        self.choices = choices
        self.asked = asked


class ConnectionFailedError(ToolAuthError):
    """A connected account did not become ACTIVE.

    Carries ``connected_account_id``, ``status`` and ``reason``.
    """

    error = "connection_failed"

    def __init__(self, connected_account_id: str, status: str, reason: str | None) -> None:
        detail = f": {reason}" if reason else ""
        super().__init__(f"Connected account {connected_account_id} is {status}{detail}")
        self.connected_account_id = connected_account_id
        self.status = status
        self.reason = reason


class ConnectionTimeoutError(ToolAuthError, TimeoutError):
    """The account did not become ACTIVE in time. Carries ``connected_account_id``."""

    error = "connection_timeout"

    def __init__(self, connected_account_id: str, timeout: float) -> None:
        super().__init__(
            f"Connected account {connected_account_id} did not become ACTIVE within "
            f"{timeout:g} s. The user may not have finished; call wait_for_connection() again "
            "or create a new link."
        )
        self.connected_account_id = connected_account_id
        self.timeout = timeout


class OAuthError(ToolAuthError):
    """The authorization server answered with an error (RFC 6749 §5.2 / §4.1.2.1)."""

    error = "oauth_error"

    def __init__(self, error: str, description: str | None = None) -> None:
        detail = f": {description}" if description else ""
        super().__init__(f"OAuth error {error}{detail}")
        self.error = error
        self.description = description


class TokenRefreshError(OAuthError):
    """A refresh failed. ``retryable`` is True for provider outages, False for invalid_grant."""

    def __init__(self, error: str, description: str | None = None, *, retryable: bool) -> None:
        super().__init__(error, description)
        self.retryable = retryable


class ToolApiError(ToolAuthError):
    """The toolkit's API refused a call; the message tells the model what to do next."""

    error = "tool_api_error"

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class WebhookVerificationError(ToolAuthError):
    """A webhook delivery did not verify (Standard Webhooks): a header is missing, its
    timestamp is outside the tolerance, or no signature matches. Do not act on the payload."""

    error = "webhook_verification_failed"
