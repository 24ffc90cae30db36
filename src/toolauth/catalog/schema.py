"""The schema of a toolkit definition: what one data file in ``toolkits/`` holds.

Definitions are data, validated on load; users add their own with the same schema through
``ta.toolkits.register(...)``. String URLs may contain ``{field}`` placeholders, filled from the
connected account's non-secret field values (for example a Jira site) and from ``{base_url}``,
the connect app's public URL (for the local demo provider).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    HttpUrl,
    Tag,
    field_validator,
    model_validator,
)

from .._exceptions import ConfigurationError
from .._models import AuthScheme
from .templates import template_names

__all__ = [
    "ApiKeySchemeSpec",
    "CredentialField",
    "CredentialPlacement",
    "IdentitySpec",
    "McpServerSpec",
    "McpToolSpec",
    "NoAuthSchemeSpec",
    "OAuth2SchemeSpec",
    "TestRequest",
    "ToolkitDefinition",
    "ToolkitSource",
]

# Where a stored definition came from. A source with fields of its own (an MCP server's URL and
# resource) keeps them in a typed, optional sub-object of ToolkitDefinition named after it
# (``mcp``), so every definition still validates with the one schema.
ToolkitSource = Literal["registered", "discovered", "file", "mcp"]
TOOLKIT_SOURCES: tuple[str, ...] = ("registered", "discovered", "file", "mcp")

_SLUG = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TestRequest(_Strict):
    """A cheap request that succeeds only with valid credentials (e.g. ``GET /user``)."""

    __test__ = False  # not a pytest class

    method: Literal["GET", "POST"] = "GET"
    path: str = Field(description="Path below the toolkit's api_base_url, or an absolute URL.")
    json_body: dict[str, object] | None = None
    expect_status: tuple[int, ...] = (200,)


_JSON_PATH = r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$"


class IdentitySpec(_Strict):
    """How to learn who an account is at the provider, once it is connected: a request made
    with the new credentials and where its JSON answer names the account (dotted paths, e.g.
    ``"data.viewer.email"``). ``path`` None: the scheme's ``test_request`` (key schemes).
    OAuth toolkits that grant ``openid`` use the ID token or ``userinfo_url`` first."""

    method: Literal["GET", "POST"] = "GET"
    path: str | None = Field(
        default=None, description="Path below the toolkit's api_base_url, or an absolute URL."
    )
    json_body: dict[str, object] | None = None
    scopes: tuple[str, ...] = Field(
        default=(),
        description="OAuth scopes reading the identity needs; a link that asks for its tools' "
        "scopes asks for these too.",
    )
    id: str | None = Field(default=None, pattern=_JSON_PATH)
    login: str | None = Field(default=None, pattern=_JSON_PATH)
    email: str | None = Field(default=None, pattern=_JSON_PATH)
    name: str | None = Field(default=None, pattern=_JSON_PATH)

    @model_validator(mode="after")
    def _names_something(self) -> IdentitySpec:
        if not (self.id or self.login or self.email or self.name):
            raise ValueError("an identity section names at least one of id, login, email, name")
        return self


class CredentialField(_Strict):
    """A value the user types into the connect form."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    label: str
    help: str | None = None
    secret: bool = True
    required: bool = True
    pattern: str | None = Field(default=None, description="A regex the whole value must match.")
    placeholder: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


class CredentialPlacement(_Strict):
    """Where a credential goes on each request.

    ``in_="header"``: header ``name`` set to ``format`` (``"Bearer {api_key}"``);
    ``in_="query"``: query parameter ``name``; ``in_="basic"``: HTTP Basic auth from the
    ``username`` and ``password`` templates.
    """

    in_: Literal["header", "query", "basic"] = Field(alias="in")
    name: str | None = None
    format: str | None = None
    username: str | None = None
    password: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _complete(self) -> CredentialPlacement:
        if self.in_ == "basic":
            if self.username is None or self.password is None:
                raise ValueError("a basic placement needs 'username' and 'password' templates")
        elif self.name is None or self.format is None:
            raise ValueError(f"a {self.in_} placement needs 'name' and 'format'")
        self.names()  # a malformed template fails here, at load, not on a request
        return self

    def names(self) -> set[str]:
        """The ``{names}`` its templates use."""
        used: set[str] = set()
        for what, template in (
            ("format", self.format), ("username", self.username), ("password", self.password),
        ):  # fmt: skip
            try:
                used |= template_names(template or "", what=what)
            except ConfigurationError as exc:
                raise ValueError(exc.message) from None
        return used


class OAuth2SchemeSpec(_Strict):
    """An OAuth 2.0 authorization-code integration (RFC 6749 §4.1, with PKCE per RFC 7636)."""

    authorization_url: str
    token_url: str
    issuer: str | None = Field(
        default=None,
        description="The authorization server's issuer identifier; when set, an 'iss' in the "
        "authorization response must equal it (RFC 9207).",
    )
    revocation_url: str | None = None
    userinfo_url: str | None = None
    default_scopes: tuple[str, ...] = ()
    scope_separator: str = " "
    authorization_params: dict[str, str] = Field(default_factory=dict)
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] = (
        "client_secret_basic"
    )
    pkce: bool = True
    token_path: str | None = Field(
        default=None,
        description="Dotted path to the token object inside the token response "
        "(Slack user tokens: 'authed_user'); None when the tokens are at the top level.",
    )
    issues_refresh_tokens: bool = True
    resource: str | None = Field(
        default=None,
        description="The resource indicator (RFC 8707) sent with every authorization and token "
        "request, so tokens are issued for that resource only (an MCP server's URL).",
    )
    placement: CredentialPlacement = CredentialPlacement.model_validate(
        {"in": "header", "name": "Authorization", "format": "Bearer {access_token}"}
    )
    test_request: TestRequest | None = None


def _object_schema() -> dict[str, object]:
    return {"type": "object"}


class McpToolSpec(_Strict):
    """One tool of a remote MCP server, as its ``tools/list`` describes it."""

    name: str = Field(min_length=1, max_length=128)
    description: str = ""
    input_schema: dict[str, object] = Field(default_factory=_object_schema)


class McpServerSpec(_Strict):
    """A remote MCP server (streamable HTTP) whose tools are this toolkit's tools.

    Filled by ``ta.toolkits.add_mcp(...)`` from the server's protected resource metadata
    (RFC 9728) and its authorization server's metadata (RFC 8414).
    """

    url: str = Field(description="The MCP endpoint, e.g. 'https://mcp.example.com/mcp'.")
    resource: str | None = Field(
        default=None,
        description="The resource identifier the server's metadata names (RFC 9728 §2); "
        "tokens are asked for it (RFC 8707). None for a server that needs no auth.",
    )
    resource_metadata_url: str | None = None
    issuer: str | None = Field(default=None, description="The authorization server used.")
    client_registration: Literal["metadata_document", "dynamic", "manual", "none"] = Field(
        default="none",
        description="How a managed auth config gets its OAuth client, in MCP's order of "
        "preference: 'metadata_document' uses the URL of a client ID metadata document served "
        "by the connect app as client_id, 'dynamic' registers one (RFC 7591) on first use, "
        "'manual' needs a custom auth config or TOOLAUTH_<TOOLKIT>_CLIENT_ID/_SECRET, 'none' "
        "for a server without auth.",
    )
    registration_endpoint: str | None = None
    client_id_metadata_document_supported: bool = False
    tools: tuple[McpToolSpec, ...] = Field(
        default=(),
        description="The server's tools as last listed (shared by every user's session; "
        "refreshed whenever a user's session lists them).",
    )


class ApiKeySchemeSpec(_Strict):
    """A credential the user types in: API_KEY, BEARER_TOKEN or BASIC."""

    fields: tuple[CredentialField, ...] = Field(min_length=1)
    placements: tuple[CredentialPlacement, ...] = Field(min_length=1)
    test_request: TestRequest | None = None

    @model_validator(mode="after")
    def _placements_use_known_fields(self) -> ApiKeySchemeSpec:
        names = {f.name for f in self.fields}
        for placement in self.placements:
            for used in sorted(placement.names()):
                if used not in names:
                    raise ValueError(
                        f"placement uses {{{used}}}, which is not one of the fields {sorted(names)}"
                    )
        return self


class NoAuthSchemeSpec(_Strict):
    """A toolkit whose API needs no credentials (``NO_AUTH``): ``{}`` in a definition."""


def _spec_kind(value: object) -> str:
    if isinstance(value, dict):
        return "key" if "fields" in value else ("none" if not value else "oauth2")
    if isinstance(value, NoAuthSchemeSpec):
        return "none"
    return "key" if isinstance(value, ApiKeySchemeSpec) else "oauth2"


SchemeSpec = Annotated[
    Annotated[OAuth2SchemeSpec, Tag("oauth2")]
    | Annotated[ApiKeySchemeSpec, Tag("key")]
    | Annotated[NoAuthSchemeSpec, Tag("none")],
    Discriminator(_spec_kind),
]
_SPEC_OF: dict[AuthScheme, type[_Strict]] = {
    AuthScheme.OAUTH2: OAuth2SchemeSpec,
    AuthScheme.API_KEY: ApiKeySchemeSpec,
    AuthScheme.BEARER_TOKEN: ApiKeySchemeSpec,
    AuthScheme.BASIC: ApiKeySchemeSpec,
    AuthScheme.NO_AUTH: NoAuthSchemeSpec,
}


def _origin(value: str) -> str:
    """``value`` as a normalised origin (``scheme://host[:port]``, lowercase, no default port),
    or a ``ValueError`` saying what an origin is."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        parts, port = None, None
    if (
        parts is None
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or "@" in parts.netloc
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "{" in value
    ):
        raise ValueError(
            f"{value!r} is not an origin: write scheme, host and optional port only, "
            "e.g. 'https://uploads.example.com' or 'http://127.0.0.1:8080'"
        )
    scheme, host = parts.scheme.lower(), parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


class ToolkitDefinition(_Strict):
    """One app tools act on, and how it authenticates."""

    slug: str
    name: str
    description: str
    categories: tuple[str, ...] = ()
    docs_url: HttpUrl | None = None
    logo_url: str | None = None
    api_base_url: str
    api_origins: tuple[str, ...] = Field(
        default=(),
        description="More origins of the toolkit's API than api_base_url's (an uploads host, "
        "a regional endpoint): 'https://uploads.example.com'. An account's HTTP client sends "
        "credentials to these and to api_base_url's origin only.",
    )
    default_headers: dict[str, str] = Field(default_factory=dict)
    auth_schemes: dict[AuthScheme, SchemeSpec] = Field(min_length=1)
    mcp: McpServerSpec | None = Field(
        default=None, description="Set when the toolkit's tools come from a remote MCP server."
    )
    identity: IdentitySpec | None = Field(
        default=None,
        description="Where a connected account's identity (id, login or email, name) is read.",
    )
    incremental_auth: bool = Field(
        default=False,
        description="The provider adds scopes to an existing grant (Google's "
        "include_granted_scopes=true): a step-up link asks for the missing scopes only.",
    )

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise ValueError("a slug is 2-48 characters: lowercase letters, digits, underscores")
        return value

    @field_validator("api_origins")
    @classmethod
    def _origins(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_origin(origin) for origin in value)

    @model_validator(mode="after")
    def _spec_fits_scheme(self) -> ToolkitDefinition:
        for scheme, spec in self.auth_schemes.items():
            wanted = _SPEC_OF[scheme]
            if not isinstance(spec, wanted):
                raise ValueError(f"auth_schemes.{scheme.value} needs a {wanted.__name__} body")
        return self

    @property
    def default_scheme(self) -> AuthScheme:
        """The first scheme the definition lists: what a managed auth config uses."""
        return next(iter(self.auth_schemes))

    def oauth2(self) -> OAuth2SchemeSpec | None:
        spec = self.auth_schemes.get(AuthScheme.OAUTH2)
        return spec if isinstance(spec, OAuth2SchemeSpec) else None

    def scheme(
        self, scheme: AuthScheme
    ) -> OAuth2SchemeSpec | ApiKeySchemeSpec | NoAuthSchemeSpec | None:
        return self.auth_schemes.get(scheme)
