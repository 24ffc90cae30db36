"""``ta.toolkits``: the catalog, toolkits stored for every process, and discovery.

Definitions registered, discovered or added at run time are stored (validated JSON, a version,
a source tag) in the ``toolkits`` table of the store, next to the auth configs. Every process
loads them when its store opens and keeps them current from the store's change feed
(:data:`toolauth.store.changes.TOOLKITS`: SQLite's ``data_version`` watcher, PostgreSQL's
LISTEN), so a toolkit registered once is usable from every process of the deployment. A
process asked for a slug it has not seen yet reads the store before answering "unknown".
A process follows the feed once it holds a stored definition (at open, or since it stored or
looked one up): a deployment that stores none pays for no watcher.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .._exceptions import CatalogError, ConfigurationError, StoreError, ValidationError
from .._http import HttpPool
from .._loop import HomeLoop, cancel_and_wait, on_home_loop
from .._models import AuthScheme
from .._validation import check_hosts, check_scopes
from ..catalog import (
    Catalog,
    McpServerSpec,
    OAuth2SchemeSpec,
    ToolkitDefinition,
    ToolkitSource,
    load_definition,
)
from ..catalog.schema import TOOLKIT_SOURCES
from ..oauth.discovery import fetch_metadata
from ..oauth.protected_resource import discover_protected_resource
from ..store import Store, ToolkitRow
from ..store.changes import TOOLKITS

__all__ = ["Toolkits"]

log = logging.getLogger("toolauth.toolkits")

_RETRY_MAX = 5.0  # seconds: the longest pause before the watcher tries the store again


class Toolkits:
    """The toolkits this client knows: ``list``, ``get``, ``register``, ``discover``,
    ``add_mcp``, ``remove``, and ``save`` (the one way a definition is stored)."""

    def __init__(
        self,
        *,
        store: Callable[[], Awaitable[Store]],
        catalog: Catalog,
        http: HttpPool,
        home: HomeLoop,
        deadline: float | None = None,
    ) -> None:
        self._store = store
        self._catalog = catalog
        self._http = http
        self._home = home
        self._deadline = deadline  # the settings' call_deadline: discovery is a provider call
        self._watch: asyncio.Task[None] | None = None
        self._stopped = False  # stop() was called: no follower starts until start()
        self._reported: set[tuple[str, int]] = set()  # bad rows already logged
        catalog.attach(self._load_one)

    # reading -----------------------------------------------------------------------------
    def list(self, *, category: str | None = None) -> list[ToolkitDefinition]:
        """Every toolkit this process knows (shipped, folder, stored), sorted by slug."""
        return self._catalog.list(category=category)

    def get(self, slug: str) -> ToolkitDefinition:
        return self._catalog.get(slug)

    def source(self, slug: str) -> str:
        """Where ``slug``'s definition in use comes from: ``builtin``, ``folder`` or the
        stored definition's source (``registered``, ``discovered``, ``file``, ``mcp``)."""
        stored = self._catalog.stored_version(slug)
        if stored is not None:
            return stored[0]
        fixed = self._catalog.fixed_source(self._catalog.get(slug).slug)
        if fixed is None:
            return "local"  # Catalog.register: this catalog object only
        return "builtin" if fixed.startswith("toolauth/catalog/") else "folder"

    # storing -----------------------------------------------------------------------------
    @on_home_loop
    async def save(
        self,
        definition: ToolkitDefinition | Mapping[str, Any],
        *,
        source: ToolkitSource,
        replace: bool = False,
        override: bool = False,
    ) -> ToolkitDefinition:
        """Store a validated definition for every process of the deployment and return it.

        ``source`` tags where it came from (``registered``, ``discovered``, ``file``,
        ``mcp``). Storing the same definition again changes nothing; a different one for a
        stored slug needs ``replace=True`` and becomes the next version. A slug that is built
        in (or in ``TOOLAUTH_TOOLKITS_DIR``) needs ``override=True``, logged as a WARNING.

        Raises:
            CatalogError: the definition does not validate (the message names the field).
            ConflictError: the slug is stored with another definition and ``replace`` is off.
            ConfigurationError: the slug is built in and ``override`` is off.
        """
        if source not in TOOLKIT_SOURCES:
            raise ValidationError(
                f"source={source!r} is not a toolkit source; use one of {TOOLKIT_SOURCES}.",
                field="source",
            )
        if not isinstance(definition, ToolkitDefinition):
            definition = load_definition(definition, source=f"{source} toolkit")
        slug = definition.slug
        fixed = self._catalog.fixed_source(slug)
        if fixed is not None and not override:
            raise ConfigurationError(
                f"Toolkit {slug!r} is already defined by {fixed}. To replace that definition "
                "for every process of this deployment, pass override=True (or pick another slug)."
            )
        store = await self._store()
        text = definition.model_dump_json(by_alias=True)
        row, changed = await store.put_toolkit(
            slug, source=source, definition=text, replace=replace
        )
        if fixed is not None and changed:
            log.warning(
                "toolkit %s: the definition from %s is overridden by a stored one (%s, version %d)",
                slug, fixed, source, row.version,
            )  # fmt: skip
        elif changed:
            log.info("toolkit %s stored (%s, version %d)", slug, source, row.version)
        self._catalog.set_stored(slug, definition, source=row.source, version=row.version)
        self._follow_changes(store)
        return definition

    @on_home_loop
    async def register(
        self,
        definition: ToolkitDefinition | Mapping[str, Any],
        *,
        replace: bool = False,
        override: bool = False,
    ) -> ToolkitDefinition:
        """Add a toolkit (a definition or a mapping in the data-file schema) for every process
        of the deployment: ``save(definition, source="registered")``."""
        return await self.save(definition, source="registered", replace=replace, override=override)

    @on_home_loop
    async def remove(self, slug: str, *, force: bool = False) -> builtins.list[str]:
        """Remove a stored toolkit from every process; returns the ids of auth configs that
        used it (with ``force``; without it, such configs make this a ``ConflictError`` that
        names them). A shipped slug overridden in the store goes back to its shipped
        definition; shipped and folder definitions themselves cannot be removed."""
        key = slug.strip().lower() if isinstance(slug, str) else ""
        store = await self._store()
        if await store.get_toolkit(key) is None:
            fixed = self._catalog.fixed_source(key)
            if fixed is not None:
                raise ConfigurationError(
                    f"Toolkit {key!r} is not stored: it comes from {fixed}, which only a new "
                    "toolauth release or a change to TOOLAUTH_TOOLKITS_DIR can remove."
                )
            stored = ", ".join(sorted(r.slug for r in await store.list_toolkits())) or "none"
            raise ConfigurationError(f"No stored toolkit {slug!r} (stored toolkits: {stored}).")
        config_ids = await store.delete_toolkit(key, force=force)
        self._catalog.set_stored(key, None)
        if config_ids:
            log.warning(
                "toolkit %s removed while auth config(s) %s use it", key, ", ".join(config_ids)
            )
        else:
            log.info("toolkit %s removed", key)
        return config_ids

    # discovery ---------------------------------------------------------------------------
    @on_home_loop
    async def discover(
        self,
        slug: str,
        *,
        issuer: str,
        name: str | None = None,
        api_base_url: str | None = None,
        scopes: Sequence[str] | None = None,
        replace: bool = False,
        override: bool = False,
        allowed_hosts: Sequence[str] | None = None,
    ) -> ToolkitDefinition:
        """Build and store an OAUTH2 toolkit from ``issuer``'s published metadata.

        The metadata is checked before anything is stored (RFC 8414 §3.3, RFC 9700 §4.4):
        the issuer and every endpoint must be https URLs (http only on a loopback address),
        the metadata must name ``issuer`` itself, and endpoints must be on the issuer's host
        unless their hosts are in ``allowed_hosts`` (e.g. ``["login.example.com"]`` when
        ``https://example.com`` has its token endpoint there). Malformed metadata (not JSON,
        not an object, endpoints that are not absolute URLs, lists that are not lists) is a
        ``ValidationError``; an issuer that cannot be reached is a ``ConfigurationError``.
        Discovering again with new endpoints needs ``replace=True`` (the next version).
        """
        hosts = check_hosts(allowed_hosts)
        wanted = check_scopes(scopes) if scopes is not None else None
        metadata = await fetch_metadata(
            self._http.client, issuer, allowed_hosts=hosts, deadline=self._deadline
        )
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if wanted is None:  # the issuer's scopes, which must then be valid scope-tokens
            wanted = check_scopes(metadata.get("scopes_supported"), field="scopes_supported")
        try:
            spec = self._spec(metadata, methods, wanted)
        except ValueError as exc:  # pydantic's: a value the catalog schema refuses
            raise ValidationError(
                f"The metadata of {issuer!r} does not make a valid toolkit: "
                f"{str(exc).splitlines()[0][:300]}",
                field="issuer",
            ) from None
        definition = ToolkitDefinition(
            slug=slug,
            name=name or slug.title(),
            description=f"Discovered from {issuer}.",
            api_base_url=api_base_url or issuer,
            auth_schemes={AuthScheme.OAUTH2: spec},
        )
        return await self.save(definition, source="discovered", replace=replace, override=override)

    @on_home_loop
    async def add_mcp(
        self,
        slug: str,
        *,
        url: str,
        name: str | None = None,
        description: str | None = None,
        scopes: Sequence[str] | None = None,
        replace: bool = False,
        allowed_hosts: Sequence[str] | None = None,
    ) -> ToolkitDefinition:
        """Register the remote MCP server at ``url`` (streamable HTTP) as toolkit ``slug``.

        Discovery follows MCP authorization: the server's 401 names its protected resource
        metadata (RFC 9728; else the well-known URLs), which must name ``url`` as its
        resource and an authorization server, whose metadata (RFC 8414 / OIDC, checked as in
        :meth:`discover`) must offer PKCE S256. The result is an ``OAUTH2`` toolkit whose
        authorization and token requests carry ``resource`` (RFC 8707). A managed auth config
        gets its client without manual steps: the URL of a client ID metadata document the
        connect app serves when the authorization server supports them, else a client
        registered on first use (RFC 7591) when it offers that; otherwise create a custom auth
        config with your client (a custom config's client always wins). A server that asks
        for no token becomes a ``NO_AUTH`` toolkit. The tools are the server's own (listed
        when a user connects).

        Raises:
            ValidationError: metadata that names another resource or issuer, http endpoints
                off loopback, no S256 support.
            ConfigurationError: the server or its authorization server cannot be reached.
        """
        hosts = check_hosts(allowed_hosts)
        wanted = check_scopes(scopes) if scopes is not None else None
        found = await discover_protected_resource(self._http.client, url, deadline=self._deadline)
        shown = name or slug.title()
        text = description or f"Tools of the MCP server {shown}."
        if found is None:
            definition = ToolkitDefinition(
                slug=slug, name=shown, description=text, api_base_url=url,
                auth_schemes={AuthScheme.NO_AUTH: {}},  # type: ignore[dict-item]
                mcp=McpServerSpec(url=url),
            )  # fmt: skip
            return await self.save(definition, source="mcp", replace=replace)
        issuer = found.authorization_servers[0]
        metadata = await fetch_metadata(
            self._http.client, issuer, allowed_hosts=hosts, deadline=self._deadline
        )
        # MCP authorization: a client MUST refuse an authorization server that does not
        # advertise S256 (RFC 7636 §4.2; RFC 9700 §2.1.1).
        if "S256" not in (metadata.get("code_challenge_methods_supported") or []):
            raise ValidationError(
                f"The authorization server {issuer!r} of {url} does not advertise PKCE S256 "
                "(code_challenge_methods_supported); MCP clients must refuse it.",
                field="url",
            )
        methods = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        if wanted is None:
            wanted = check_scopes(list(found.scopes_supported), field="scopes_supported")
        try:
            spec = self._spec(metadata, methods, wanted).model_copy(
                update={"resource": found.resource, "pkce": True}
            )
        except ValueError as exc:
            raise ValidationError(
                f"The metadata of {issuer!r} does not make a valid toolkit: "
                f"{str(exc).splitlines()[0][:300]}",
                field="url",
            ) from None
        registration = metadata.get("registration_endpoint")
        documents = metadata.get("client_id_metadata_document_supported") is True
        # MCP authorization, client registration: client ID metadata documents first, then
        # dynamic registration (RFC 7591), then a client the operator brings.
        server = McpServerSpec(
            url=url, resource=found.resource, resource_metadata_url=found.metadata_url,
            issuer=metadata["issuer"], registration_endpoint=registration,
            client_registration="metadata_document" if documents
            else "dynamic" if registration else "manual",
            client_id_metadata_document_supported=documents,
        )  # fmt: skip
        definition = ToolkitDefinition(
            slug=slug, name=shown, description=text, api_base_url=url,
            auth_schemes={AuthScheme.OAUTH2: spec}, mcp=server,
        )  # fmt: skip
        return await self.save(definition, source="mcp", replace=replace)

    @staticmethod
    def _spec(
        metadata: Mapping[str, Any], methods: Sequence[str], scopes: Sequence[str]
    ) -> OAuth2SchemeSpec:
        return OAuth2SchemeSpec(
            authorization_url=metadata["authorization_endpoint"],
            issuer=metadata["issuer"],
            token_url=metadata["token_endpoint"],
            revocation_url=metadata.get("revocation_endpoint"),
            userinfo_url=metadata.get("userinfo_endpoint"),
            default_scopes=tuple(scopes),
            token_endpoint_auth_method="client_secret_basic"
            if "client_secret_basic" in methods
            else "client_secret_post",
            pkce="S256" in (metadata.get("code_challenge_methods_supported") or ["S256"]),
            issues_refresh_tokens="refresh_token"
            in (metadata.get("grant_types_supported") or ["refresh_token"]),
        )

    # keeping the catalog in step with the store -----------------------------------------
    async def start(self, store: Store) -> None:
        """Load every stored definition, and follow changes from then on if there are any
        (called by the client when its store opens; :meth:`stop` when it closes)."""
        self._stopped = False
        await self._load_all(store)
        if self._catalog.stored_slugs():
            self._follow_changes(store)

    def _follow_changes(self, store: Store) -> None:
        if self._stopped:  # the client is closing: no new follower of a closing store
            return
        if self._watch is None or self._watch.done():
            self._watch = asyncio.create_task(self._follow(store), name="toolauth-toolkits")

    async def stop(self) -> None:
        self._stopped = True
        task, self._watch = self._watch, None
        # the follower ends on the cancellation, or at its next turn if the store turned the
        # cancellation into a StoreError (a query cut short): see `_follow`
        await cancel_and_wait(task)

    async def _follow(self, store: Store) -> None:
        """Reload the stored definitions whenever the change feed says they may have changed
        (another process's commit, or a reconnect after which changes may have gone unheard)."""
        delay = 0.1
        while True:
            try:
                with store.changes.subscribe(TOOLKITS) as bell:
                    async with store.watching():
                        await self._load_all(store)  # what changed before we listened
                        delay = 0.1
                        while True:
                            await bell.wait()
                            await self._load_all(store)
            except StoreError as exc:
                if self._watch is not asyncio.current_task():
                    return  # stopped (or replaced) meanwhile: the error is the cut-short query
                log.warning("cannot follow toolkit changes (retrying in %.1f s): %s", delay, exc)
                await asyncio.sleep(delay)  # a backoff between tries, not a synchronisation
                delay = min(2 * delay, _RETRY_MAX)

    async def _load_all(self, store: Store) -> None:
        rows = await store.list_toolkits()
        for row in rows:
            self._apply(row.slug, row)
        for slug in self._catalog.stored_slugs() - {row.slug for row in rows}:
            self._apply(slug, None)

    async def _load_one(self, slug: str) -> None:
        """The catalog's loader: read ``slug`` from the store (an unknown slug, a fresh look)."""
        store = await self._store()
        self._apply(slug, await store.get_toolkit(slug))
        if slug in self._catalog.stored_slugs():
            self._follow_changes(store)  # stored elsewhere: from now on, hear of its changes

    def _apply(self, slug: str, row: ToolkitRow | None) -> None:
        catalog = self._catalog
        held = catalog.stored_version(slug)
        if row is None:
            if slug in catalog.stored_slugs():
                catalog.set_stored(slug, None)
            return
        if held is not None and held[1] == row.version:
            return  # already the newest
        try:
            if row.altered:
                raise CatalogError(
                    f"stored toolkit {slug!r} was changed in the database without the "
                    "encryption key (its MAC does not verify), so it is not used"
                )
            definition = load_definition(row.definition, source=f"stored toolkit {slug!r}")
            if definition.slug != slug:
                raise CatalogError(
                    f"stored toolkit {slug!r}: its definition says slug {definition.slug!r}"
                )
        except CatalogError as exc:
            message = (
                f"The stored definition of toolkit {slug!r} (version {row.version}, "
                f"{row.source}) is not valid: {exc.message}. Store a valid one with "
                f"`toolauth toolkits add FILE.json --replace`, or remove it with "
                f"`toolauth toolkits remove {slug} --force`."
            )
            if (slug, row.version) not in self._reported:
                self._reported.add((slug, row.version))
                log.error("%s", message)
            catalog.set_broken(slug, message)
            return
        catalog.set_stored(slug, definition, source=row.source, version=row.version)
