"""The demo provider's side of client ID metadata documents: fetch and check the document a
URL-shaped ``client_id`` names (draft-ietf-oauth-client-id-metadata-document, as MCP
authorization 2025-11-25 asks of authorization servers).

https://datatracker.ietf.org/doc/draft-ietf-oauth-client-id-metadata-document/

The demo is offline, so it fetches from loopback only (a real server fetches public https URLs
and refuses private addresses, the draft's security considerations). The body is capped and
the fetch bounded in time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import urlsplit

import anyio
import httpx

from .._callbacks import is_loopback_host

__all__ = ["ClientDocument", "ClientDocumentError", "fetch_client_document", "is_document_url"]

MAX_BYTES = 5 * 1024  # the size limit the draft suggests
_SHARED_SECRET_METHODS = frozenset(
    {"client_secret_basic", "client_secret_post", "client_secret_jwt"}
)


class ClientDocumentError(Exception):
    """Why a client ID metadata document cannot be used (the text names what is wrong)."""


@dataclass(frozen=True)
class ClientDocument:
    client_id: str
    client_name: str | None
    redirect_uris: list[str]


def is_document_url(client_id: str | None) -> bool:
    """Whether ``client_id`` has the shape of a client ID metadata document URL."""
    return client_id is not None and client_id.startswith(("https://", "http://"))


def check_url(url: str) -> None:
    """The draft's "Client Identifier" rules for the ``client_id`` URL, and the demo's
    loopback-only fetch."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading it checks it
    except ValueError:
        raise ClientDocumentError("the client_id is not a valid URL") from None
    host = parts.hostname or ""
    if not is_loopback_host(host):
        raise ClientDocumentError("this demo provider fetches client documents from loopback only")
    if parts.scheme not in ("https", "http"):
        raise ClientDocumentError("the client_id URL must use https (http on loopback)")
    if parts.path in ("", "/") or parts.fragment or parts.username or parts.password:
        raise ClientDocumentError("the client_id URL needs a path, and no fragment or user")
    if any(segment in (".", "..") for segment in parts.path.split("/")):
        raise ClientDocumentError("the client_id URL must not hold dot segments")


async def fetch_client_document(url: str, *, timeout: float) -> ClientDocument:
    """The document at ``url``, checked: a JSON object whose ``client_id`` is ``url`` (simple
    string comparison), with ``redirect_uris``, and a public client (no shared secret)."""
    check_url(url)
    body = bytearray()
    try:
        with anyio.fail_after(timeout):
            async with (
                httpx.AsyncClient(follow_redirects=False, trust_env=False) as http,
                http.stream("GET", url, headers={"Accept": "application/json"}) as answer,
            ):
                if answer.status_code != 200:
                    raise ClientDocumentError(f"the document URL answered {answer.status_code}")
                async for chunk in answer.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_BYTES:
                        raise ClientDocumentError(f"the document is larger than {MAX_BYTES} bytes")
    except TimeoutError:
        raise ClientDocumentError(f"the document URL did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise ClientDocumentError(
            f"the document cannot be fetched ({type(exc).__name__})"
        ) from None
    try:
        document = json.loads(bytes(body))
    except (ValueError, UnicodeDecodeError):
        raise ClientDocumentError("the document is not JSON") from None
    if not isinstance(document, dict):
        raise ClientDocumentError("the document is not a JSON object")
    if document.get("client_id") != url:
        raise ClientDocumentError("the document's client_id is not the URL it was fetched from")
    uris = document.get("redirect_uris")
    if not isinstance(uris, list) or not uris or not all(isinstance(u, str) for u in uris):
        raise ClientDocumentError("the document's redirect_uris must be a non-empty list")
    method = document.get("token_endpoint_auth_method", "client_secret_basic")
    if method in _SHARED_SECRET_METHODS or "client_secret" in document:
        raise ClientDocumentError("a client ID metadata document must not use a shared secret")
    if method != "none":
        raise ClientDocumentError(f"this demo provider does not support {method!r} clients")
    name = document.get("client_name")
    return ClientDocument(url, name if isinstance(name, str) else None, list(uris))
