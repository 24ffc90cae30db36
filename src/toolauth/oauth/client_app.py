"""The OAuth client (the "app") an auth config connects through: its client id and secret.

RFC 6749 §2.3: a confidential client authenticates to the token endpoint with credentials the
provider issued it. A custom auth config carries them; a managed one takes them from settings
(``TOOLAUTH_<TOOLKIT>_CLIENT_ID`` / ``_CLIENT_SECRET``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .._models import AuthConfig
from .._settings import Settings

__all__ = ["REGISTERED_FOR", "OAuthApp", "oauth_app"]

REGISTERED_FOR = "registered_redirect_uri"
"""The credential a client registered by toolauth (RFC 7591) is kept with: the redirect URI
it was registered for. A managed config holding it uses that client, not settings."""


@dataclass(frozen=True)
class OAuthApp:
    """A client id and, for confidential clients, its secret (never shown in a ``repr``)."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)


def oauth_app(config: AuthConfig, settings: Settings) -> OAuthApp:
    """The OAuth app of ``config``: the client it holds (a custom config's, or one registered
    for a managed config, RFC 7591), else a managed config's from settings; a
    ``ConfigurationError`` naming the variables to set when there is none."""
    if config.is_managed and REGISTERED_FOR not in config.credentials:
        client_id, secret = settings.managed_oauth_app(config.toolkit)
        return OAuthApp(client_id, secret.get_secret_value())
    secret_value = config.credentials.get("client_secret")
    return OAuthApp(
        config.credentials["client_id"].get_secret_value(),
        secret_value.get_secret_value() if secret_value else None,
    )
