"""``GET /clients/{slug}.json``: the client ID metadata document of an MCP toolkit.

An authorization server that supports client ID metadata documents (MCP authorization,
draft-ietf-oauth-client-id-metadata-document) fetches this URL when a connect link sends the
user to it with the URL as ``client_id``; the document is built by
``toolauth.oauth.client_metadata``. It holds no secret: a name and the redirect URI.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from .._exceptions import ToolAuthError
from .._settings import ConnectUrls
from ..catalog import Catalog
from ..oauth.client_metadata import client_metadata_document, client_metadata_url, registration_mode

__all__ = ["ClientMetadataEndpoint"]

_SLUG = re.compile(r"[a-z0-9_]{2,48}")
_MAX_AGE = 300  # the draft: authorization servers may cache the document as HTTP caching allows


class ClientMetadataEndpoint:
    """Serves the document of each MCP toolkit whose managed configs use one on this
    deployment; anything else is a 404."""

    def __init__(self, catalog: Catalog, urls: ConnectUrls) -> None:
        self._catalog = catalog
        self._urls = urls

    async def serve(self, request: Request) -> Response:
        slug = request.path_params["slug"]
        not_found = JSONResponse({"error": "not_found"}, status_code=404)
        if not _SLUG.fullmatch(slug):
            return not_found
        try:
            definition = await self._catalog.resolve(slug)
        except ToolAuthError:
            return not_found
        base_url = self._urls.base_url
        client_id = client_metadata_url(base_url, definition.slug)
        if client_id is None or registration_mode(definition, base_url) != "metadata_document":
            return not_found
        document = client_metadata_document(
            client_id, client_name=f"toolauth: {definition.name}",
            redirect_uri=self._urls.redirect_uri,
        )  # fmt: skip
        return JSONResponse(
            document,
            headers={
                "Cache-Control": f"public, max-age={_MAX_AGE}",
                "X-Content-Type-Options": "nosniff",
            },
        )
