"""Settings, read once from the environment; keyword arguments to the client override them.

| variable | default |
|---|---|
| ``TOOLAUTH_HOME`` | ``./.toolauth`` (holds the SQLite file and the key file) |
| ``TOOLAUTH_DATABASE_URL`` | ``sqlite:///$TOOLAUTH_HOME/toolauth.db`` |
| ``TOOLAUTH_ENCRYPTION_KEY`` | a key file in ``TOOLAUTH_HOME``, made on first use (SQLite only) |
| ``TOOLAUTH_BASE_URL`` | ``http://127.0.0.1:8765`` (the connect app's public URL) |
| ``TOOLAUTH_LINK_TTL`` | ``600`` seconds |
| ``TOOLAUTH_ALLOWED_CALLBACK_ORIGINS`` | empty: loopback origins only |
| ``TOOLAUTH_CONFIRM_URL`` | none: the app's page that confirms a link's user (``confirm()``) |
| ``TOOLAUTH_CONFIRM_TTL`` | ``600`` s an unconfirmed grant is held before it is revoked |
| ``TOOLAUTH_UNVERIFIED_LINKS`` | off: ``1`` lets a public connect app complete unbound links |
| ``TOOLAUTH_REFRESH_MARGIN`` | ``60`` seconds before expiry (at most half the token's life) |
| ``TOOLAUTH_HTTP_TIMEOUT`` | ``10`` s for each phase of a call to a provider (token, revoke…) |
| ``TOOLAUTH_HTTP_DEADLINE`` | ``3 x TOOLAUTH_HTTP_TIMEOUT``: the whole of one call to a provider |
| ``TOOLAUTH_API_TIMEOUT`` | ``30`` seconds for tool calls to toolkit APIs |
| ``TOOLAUTH_REFRESH_LEASE`` | ``30`` s one process may hold a refresh (renewed every third) |
| ``TOOLAUTH_REFRESH_LEASE_POLL`` | ``1`` s between looks at another process's refresh |
| ``TOOLAUTH_REFRESH_RETRY_DELAYS`` | ``0.2,0.5,1`` s between retries while a provider is down |
| ``TOOLAUTH_WATCH_INTERVAL`` | ``0.01`` seconds between SQLite change checks while someone waits |
| ``TOOLAUTH_SQLITE_BUSY_TIMEOUT`` | ``10`` seconds a SQLite write waits for the lock |
| ``TOOLAUTH_TOOLKITS_DIR`` | unset: a folder of toolkit definition files (``*.json``) to load |
| ``TOOLAUTH_ACCOUNT_CACHE`` | ``1`` second an account read may be reused while nothing changed |
| ``TOOLAUTH_WEBHOOK_ALLOW_PRIVATE`` | off: public https hosts only (``1``: private, http too) |
| ``TOOLAUTH_WEBHOOK_TIMEOUT`` | ``10`` seconds one delivery attempt may take |
| ``TOOLAUTH_WEBHOOK_RETRY`` | ``5,3600`` s: first retry delay (doubling), and the longest |
| ``TOOLAUTH_WEBHOOK_DISABLE_AFTER`` | ``5`` days of failed deliveries, then the endpoint is off |
| ``TOOLAUTH_KEEPER_INTERVAL`` | ``30`` s between two rounds of the keeper (refresh, probe) |
| ``TOOLAUTH_PROBE_INTERVAL`` | ``3600`` s between two probes of one account (``0``: never probe) |
| ``TOOLAUTH_<TOOLKIT>_CLIENT_ID`` / ``_CLIENT_SECRET`` | the OAuth app of managed auth configs |
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

from ._callbacks import is_loopback_url
from ._exceptions import ConfigurationError

__all__ = ["ConnectUrls", "Settings", "display_url"]

log = logging.getLogger("toolauth.links")

DEFAULT_BASE_URL = "http://127.0.0.1:8765"


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds.") from None
    return value


def _origins(value: object) -> tuple[str, ...]:
    """Origins from a comma-separated string or a list of strings (a plain string is never
    read as a sequence of characters)."""
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, (list, tuple, set, frozenset)) or not all(
        isinstance(o, str) for o in value
    ):
        raise ConfigurationError(
            "allowed_callback_origins takes a list of origins or a comma-separated string, "
            "e.g. ['https://app.example.com']."
        )
    return tuple(o.strip().rstrip("/") for o in value if o.strip())


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = environ.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigurationError(f"{name}={raw!r} is not a yes/no value; use 1 or 0.")


def _floats(environ: Mapping[str, str], name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    return tuple(_float({name: p}, name, 0.0) for p in parts)


def display_url(url: str) -> str:
    """``url`` with any password masked (in the user part or a ``password=`` parameter), for
    logs, reprs and error messages."""
    parts = urlsplit(url)
    if parts.password is None and "password=" not in parts.query.lower():
        return url
    netloc = parts.netloc
    if parts.password is not None:
        host = netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username or ''}:***@{host}"
    query = "&".join(
        f"{k}=***" if k.lower() == "password" else (f"{k}={v}" if sep else k)
        for k, sep, v in (pair.partition("=") for pair in parts.query.split("&") if pair)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


@dataclass(frozen=True)
class Settings:
    """Everything a client is configured with. Build it with :meth:`from_env`."""

    home: Path
    database_url: str
    database_url_explicit: bool = False
    encryption_key: SecretStr | None = field(default=None, repr=False)
    base_url: str = DEFAULT_BASE_URL
    base_url_explicit: bool = False
    demo_provider_url: str | None = None
    link_ttl: float = 600.0
    refresh_margin: float = 60.0
    allowed_callback_origins: tuple[str, ...] = ()
    confirm_url: str | None = None
    confirm_ttl: float = 600.0
    unverified_links: bool = False
    http_timeout: float = 10.0
    http_deadline: float | None = None
    api_timeout: float = 30.0
    refresh_lease: float = 30.0
    refresh_lease_poll: float = 1.0
    refresh_retry_delays: tuple[float, ...] = (0.2, 0.5, 1.0)
    watch_interval: float = 0.01
    sqlite_busy_timeout: float = 10.0
    account_cache: float = 1.0
    mcp_idle_timeout: float = 300.0
    toolkits_dir: Path | None = None
    webhook_allow_private: bool = False
    webhook_timeout: float = 10.0
    webhook_retry: tuple[float, ...] = (5.0, 3600.0)
    webhook_disable_after: float = 5.0  # days
    keeper_interval: float = 30.0
    probe_interval: float = 3600.0
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from ``environ`` (default ``os.environ``); ``None`` overrides are ignored."""
        env = dict(os.environ if environ is None else environ)
        home = Path(overrides.get("home") or env.get("TOOLAUTH_HOME") or ".toolauth")
        key = env.get("TOOLAUTH_ENCRYPTION_KEY") or None
        origins = env.get("TOOLAUTH_ALLOWED_CALLBACK_ORIGINS", "")
        settings = cls(
            home=home,
            database_url=env.get("TOOLAUTH_DATABASE_URL") or f"sqlite:///{home / 'toolauth.db'}",
            database_url_explicit=bool(env.get("TOOLAUTH_DATABASE_URL")),
            encryption_key=SecretStr(key) if key else None,
            base_url=env.get("TOOLAUTH_BASE_URL") or DEFAULT_BASE_URL,
            base_url_explicit=bool(env.get("TOOLAUTH_BASE_URL")),
            demo_provider_url=env.get("TOOLAUTH_DEMO_PROVIDER_URL") or None,
            link_ttl=_float(env, "TOOLAUTH_LINK_TTL", 600.0),
            refresh_margin=_float(env, "TOOLAUTH_REFRESH_MARGIN", 60.0),
            allowed_callback_origins=_origins(origins),
            confirm_url=env.get("TOOLAUTH_CONFIRM_URL") or None,
            confirm_ttl=_float(env, "TOOLAUTH_CONFIRM_TTL", 600.0),
            unverified_links=_flag(env, "TOOLAUTH_UNVERIFIED_LINKS"),
            http_timeout=_float(env, "TOOLAUTH_HTTP_TIMEOUT", 10.0),
            http_deadline=_float(env, "TOOLAUTH_HTTP_DEADLINE", 0.0) or None,
            api_timeout=_float(env, "TOOLAUTH_API_TIMEOUT", 30.0),
            refresh_lease=_float(env, "TOOLAUTH_REFRESH_LEASE", 30.0),
            refresh_lease_poll=_float(env, "TOOLAUTH_REFRESH_LEASE_POLL", 1.0),
            refresh_retry_delays=_floats(env, "TOOLAUTH_REFRESH_RETRY_DELAYS", (0.2, 0.5, 1.0)),
            watch_interval=_float(env, "TOOLAUTH_WATCH_INTERVAL", 0.01),
            sqlite_busy_timeout=_float(env, "TOOLAUTH_SQLITE_BUSY_TIMEOUT", 10.0),
            account_cache=_float(env, "TOOLAUTH_ACCOUNT_CACHE", 1.0),
            mcp_idle_timeout=_float(env, "TOOLAUTH_MCP_IDLE_TIMEOUT", 300.0),
            toolkits_dir=Path(env["TOOLAUTH_TOOLKITS_DIR"])
            if env.get("TOOLAUTH_TOOLKITS_DIR")
            else None,
            webhook_allow_private=_flag(env, "TOOLAUTH_WEBHOOK_ALLOW_PRIVATE"),
            webhook_timeout=_float(env, "TOOLAUTH_WEBHOOK_TIMEOUT", 10.0),
            webhook_retry=_floats(env, "TOOLAUTH_WEBHOOK_RETRY", (5.0, 3600.0)),
            webhook_disable_after=_float(env, "TOOLAUTH_WEBHOOK_DISABLE_AFTER", 5.0),
            keeper_interval=_float(env, "TOOLAUTH_KEEPER_INTERVAL", 30.0),
            probe_interval=_float(env, "TOOLAUTH_PROBE_INTERVAL", 3600.0),
            environ=env,
        )
        return settings.with_overrides(**overrides)

    def with_overrides(self, **overrides: Any) -> Settings:
        """A copy with every non-``None`` override applied."""
        given = {k: v for k, v in overrides.items() if v is not None}
        if "database_url" in given:
            given.setdefault("database_url_explicit", True)
        if "home" in given:
            given["home"] = Path(given["home"])
            if "database_url" not in given and not self.database_url_explicit:
                # The default database lives in home: it moves with it (as the key file does).
                given["database_url"] = f"sqlite:///{given['home'] / 'toolauth.db'}"
        if isinstance(given.get("encryption_key"), str):
            given["encryption_key"] = SecretStr(given["encryption_key"])
        if "base_url" in given:
            given.setdefault("base_url_explicit", True)
        if "allowed_callback_origins" in given:
            given["allowed_callback_origins"] = _origins(given["allowed_callback_origins"])
        if "toolkits_dir" in given:
            given["toolkits_dir"] = Path(given["toolkits_dir"])
        if "refresh_retry_delays" in given:
            given["refresh_retry_delays"] = tuple(given["refresh_retry_delays"])
        settings = replace(self, **given)
        return replace(settings, base_url=settings.base_url.rstrip("/"))

    def __repr__(self) -> str:
        return (
            f"Settings(home={str(self.home)!r}, database_url="
            f"{display_url(self.database_url)!r}, base_url={self.base_url!r}, "
            f"link_ttl={self.link_ttl!r}, allowed_callback_origins="
            f"{list(self.allowed_callback_origins)!r})"
        )

    def binding_required(self, base_url: str) -> bool:
        """Whether a connect link served at ``base_url`` must be bound to its user: always,
        unless the connect app is on loopback (only this machine reaches it) or the operator
        opted out with ``TOOLAUTH_UNVERIFIED_LINKS=1``."""
        return not self.unverified_links and not is_loopback_url(base_url)

    @property
    def call_deadline(self) -> float:
        """The most one call to an authorization server may take in all, however slowly it
        answers: ``TOOLAUTH_HTTP_DEADLINE``, or 3 x ``TOOLAUTH_HTTP_TIMEOUT`` when unset."""
        return self.http_deadline or 3 * self.http_timeout

    def retry_delay(self, attempts: int) -> float:
        """Seconds before delivery attempt ``attempts + 1``: the first delay of
        ``TOOLAUTH_WEBHOOK_RETRY``, doubled each attempt, at most its second value."""
        first = self.webhook_retry[0] if self.webhook_retry else 5.0
        longest = self.webhook_retry[1] if len(self.webhook_retry) > 1 else 3600.0
        return float(min(first * 2 ** max(attempts - 1, 0), longest))

    @property
    def url_variables(self) -> dict[str, str]:
        """Values for ``{placeholders}`` in catalog URLs."""
        return url_variables(self, self.base_url)

    def managed_oauth_app(self, toolkit: str) -> tuple[str, SecretStr]:
        """The managed OAuth app for ``toolkit``, or an error naming the variables to set."""
        prefix = f"TOOLAUTH_{toolkit.upper()}_"
        client_id = self.environ.get(prefix + "CLIENT_ID")
        client_secret = self.environ.get(prefix + "CLIENT_SECRET")
        if not client_id or not client_secret:
            raise ConfigurationError(
                f"Managed auth for {toolkit!r} needs an OAuth app: set {prefix}CLIENT_ID and "
                f"{prefix}CLIENT_SECRET, or create a custom auth config with "
                "auth_configs.create(..., type='use_custom_auth', credentials={...})."
            )
        return client_id, SecretStr(client_secret)


def url_variables(settings: Settings, base_url: str) -> dict[str, str]:
    """Values for ``{placeholders}`` in catalog URLs, with the connect app at ``base_url``."""
    demo = settings.demo_provider_url or f"{base_url}/demo"
    return {"base_url": base_url, "demo_provider_url": demo.rstrip("/")}


class ConnectUrls:
    """Where the connect app is reachable: ``settings.base_url``, or, when that was not set
    explicitly, the URL the app is being served at (``ta.serve()``, the demo)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._served: str | None = None
        self._app_made = False
        self._warned = False

    def app_made(self) -> None:
        """Record that this client's connect app was made (to mount or serve)."""
        self._app_made = True

    def check_served(self) -> None:
        """Warn once when links are handed out while no connect app of this client can be
        serving them (no explicit ``base_url``, nothing served or mounted)."""
        if self._warned or self._app_made or self._served or self._settings.base_url_explicit:
            return
        self._warned = True
        log.warning(
            "A connect link points at %s, but no connect app of this client serves it. Start "
            "one: `toolauth serve`, `async with ta.serve():`, or mount `ta.asgi_app()` in your "
            "app and set TOOLAUTH_BASE_URL to its public URL.",
            self.base_url,
        )

    @property
    def base_url(self) -> str:
        if self._served is not None and not self._settings.base_url_explicit:
            return self._served
        return self._settings.base_url

    def serving_at(self, url: str | None) -> None:
        """Record the URL the connect app is served at (``None`` when it stops)."""
        self._served = url.rstrip("/") if url is not None else None

    def link(self, link_id: str) -> str:
        """The public URL of connect link ``link_id``."""
        return f"{self.base_url}/link/{link_id}"

    @property
    def redirect_uri(self) -> str:
        """The OAuth redirect URI (RFC 6749 §3.1.2) of this deployment."""
        return f"{self.base_url}/oauth/callback"

    @property
    def variables(self) -> dict[str, str]:
        """Values for ``{placeholders}`` in catalog URLs."""
        return url_variables(self._settings, self.base_url)
