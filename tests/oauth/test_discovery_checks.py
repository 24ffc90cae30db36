"""ta.toolkits.discover against hostile metadata served over real HTTP on loopback: the
metadata decides where users are sent and where the client secret goes, so every rule of
RFC 8414 and RFC 9700 is checked before anything is registered."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from toolauth import AsyncToolAuth, ConfigurationError, ValidationError
from toolauth.connect.serving import serve_app


@dataclass
class Issuer:
    """An authorization server on loopback whose metadata document each test writes."""

    url: str
    body: list[Any] = field(default_factory=list)

    def publish(self, body: Any) -> None:
        self.body[:] = [body]

    def good(self, **changes: Any) -> dict[str, Any]:
        metadata = {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "revocation_endpoint": f"{self.url}/revoke",
            "scopes_supported": ["read"],
            "code_challenge_methods_supported": ["S256"],
        }
        metadata.update(changes)
        return {k: v for k, v in metadata.items() if v is not None}


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    found: list[Issuer] = []

    async def metadata(request: Request) -> Response:
        (body,) = found[0].body
        if isinstance(body, (bytes, str)):
            return Response(body, media_type="application/json")
        return JSONResponse(body)

    app = Starlette(routes=[Route("/.well-known/oauth-authorization-server", metadata)])
    async with serve_app(app) as url:
        found.append(Issuer(url))
        yield found[0]


async def refused(ta: AsyncToolAuth, issuer: Issuer, match: str, **kwargs: Any) -> ValidationError:
    with pytest.raises(ValidationError, match=match) as info:
        await ta.toolkits.discover("acme", issuer=kwargs.pop("at", issuer.url), **kwargs)
    with pytest.raises(ConfigurationError):
        ta.toolkits.get("acme")  # nothing was registered
    return info.value


async def test_good_metadata_is_accepted(ta: AsyncToolAuth, issuer: Issuer) -> None:
    issuer.publish(issuer.good())
    spec = (await ta.toolkits.discover("acme", issuer=issuer.url)).oauth2()
    assert spec is not None and spec.token_url == f"{issuer.url}/token"


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>not json</html>", "is not JSON"),
        (b"[" * 200_000, "is not JSON"),  # nested beyond what the parser can read
        (["an", "array"], r"not a JSON object \(RFC 8414 §3\.2\)"),
        ("null", r"not a JSON object"),
    ],
)
async def test_metadata_that_is_not_a_json_object_is_a_validation_error(
    ta: AsyncToolAuth, issuer: Issuer, body: Any, match: str
) -> None:
    """RFC 8414 §3.2: the metadata is a JSON object. Anything else is the issuer's input
    error, a ValidationError saying so, never a bare exception."""
    issuer.publish(body)
    await refused(ta, issuer, match)


async def test_an_issuer_mismatch_is_refused(ta: AsyncToolAuth, issuer: Issuer) -> None:
    """RFC 8414 §3.3: the ``issuer`` in the metadata MUST be identical to the issuer the
    client asked for; otherwise the metadata MUST NOT be used (mix-up, RFC 9700 §4.4)."""
    issuer.publish(issuer.good(issuer="https://evil.example"))
    await refused(ta, issuer, r"RFC 8414 §3\.3")
    issuer.publish(issuer.good(issuer=None))
    await refused(ta, issuer, r"RFC 8414 §3\.3")


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"token_endpoint": 42}, "token_endpoint .* must be a URL string"),
        ({"token_endpoint": ["https://a"]}, "token_endpoint .* must be a URL string"),
        ({"authorization_endpoint": None}, "has no authorization_endpoint"),
        ({"token_endpoint": "/token"}, "relative URL is not allowed"),
        ({"token_endpoint": "javascript:alert(1)"}, "not an absolute http"),
        ({"authorization_endpoint": "{base_url}/authorize"}, "braces"),
        ({"token_endpoint": "https://evil.example/token"}, "not on the issuer's host"),
        ({"revocation_endpoint": "https://evil.example/revoke"}, "not on the issuer's host"),
        ({"token_endpoint": "https://127.0.0.1:1/t#frag"}, "fragment"),
        ({"code_challenge_methods_supported": "S256"}, "must be a list of strings"),
        ({"token_endpoint_auth_methods_supported": [1]}, "must be a list of strings"),
        ({"scopes_supported": ['read "all"']}, r"RFC 6749 §3\.3"),
    ],
)
async def test_malformed_endpoints_and_lists_are_validation_errors(
    ta: AsyncToolAuth, issuer: Issuer, changes: dict[str, Any], match: str
) -> None:
    """RFC 8414 §2: endpoints are URLs using the https scheme; RFC 9700 §4.4 / §4.11: the
    client must not be sent, with its secret or its users, to a server the issuer does not
    control. Each bad value is named in a ValidationError and nothing is registered."""
    issuer.publish(issuer.good(**changes))
    await refused(ta, issuer, match)


async def test_endpoints_on_another_host_need_allowed_hosts_and_https(
    ta: AsyncToolAuth, issuer: Issuer
) -> None:
    """RFC 8414 §2 (https endpoints): another host is fine when the caller names it in
    ``allowed_hosts``; http is allowed only on loopback, even then."""
    issuer.publish(issuer.good(token_endpoint="https://login.example.com/token"))
    await refused(ta, issuer, "allowed_hosts=")
    definition = await ta.toolkits.discover(
        "acme", issuer=issuer.url, allowed_hosts=["LOGIN.example.com"]
    )
    spec = definition.oauth2()
    assert spec is not None and spec.token_url == "https://login.example.com/token"

    issuer.publish(issuer.good(token_endpoint="http://login.example.com/token"))
    with pytest.raises(ValidationError, match="must use https"):
        await ta.toolkits.discover("acme2", issuer=issuer.url, allowed_hosts=["login.example.com"])


@pytest.mark.parametrize(
    ("issuer_url", "match"),
    [
        ("http://example.com", "must use https"),
        ("ftp://example.com", "not an absolute http"),
        ("example.com", "not an absolute http"),
        ("https://example.com/?tenant=1", "must not have a query"),
        ("https://example.com/#x", "fragment"),
        ("https://user@example.com", "user info"),
    ],
)
async def test_the_issuer_must_be_an_https_url(
    ta: AsyncToolAuth, issuer: Issuer, issuer_url: str, match: str
) -> None:
    """RFC 8414 §2: the issuer identifier is a URL that uses the https scheme and has no
    query or fragment components; refused before any request is made."""
    await refused(ta, issuer, match, at=issuer_url)


async def test_bad_allowed_hosts_are_refused(ta: AsyncToolAuth, issuer: Issuer) -> None:
    issuer.publish(issuer.good())
    with pytest.raises(ValidationError, match="not a host name"):
        await ta.toolkits.discover("acme", issuer=issuer.url, allowed_hosts=["https://x.example/"])
    with pytest.raises(ValidationError, match="list of host names"):
        await ta.toolkits.discover("acme", issuer=issuer.url, allowed_hosts="x.example")  # type: ignore[arg-type]


async def test_oversized_metadata_is_not_read(ta: AsyncToolAuth, issuer: Issuer) -> None:
    """Metadata is a few kilobytes; more than 1 MiB is refused unread."""
    issuer.publish(issuer.good(padding="x" * (1024 * 1024 + 1)))
    await refused(ta, issuer, "larger than 1048576 bytes")
