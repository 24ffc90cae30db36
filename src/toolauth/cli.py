"""The ``toolauth`` command.

```
toolauth keys generate        print a new encryption key
toolauth keys rotate          re-encrypt every secret under the first key
toolauth migrate              apply pending database migrations
toolauth serve                run the connect app (--host, --port)
toolauth toolkits [list]      list the toolkits every process knows, and where each comes from
toolauth toolkits schema      print the JSON schema of a toolkit definition
toolauth toolkits add FILE.json [--replace] [--override]
                              store a definition for every process of the deployment
toolauth toolkits discover SLUG ISSUER [--scope S ...] [--api-base-url URL] [--replace]
                              store an OAuth toolkit from the issuer's RFC 8414 metadata
toolauth toolkits add-mcp SLUG --url URL [--name NAME] [--scope S ...] [--allowed-host H ...]
                              [--replace]
                              store a remote MCP server (streamable HTTP) as a toolkit, discovered
                              from its RFC 9728 metadata; prints its issuer, resource and how
                              managed configs get their OAuth client
toolauth toolkits show SLUG   print a toolkit's definition (JSON, MCP fields included)
toolauth toolkits remove SLUG [--force]
                              remove a stored toolkit (--force: even while auth configs use it)
toolauth demo                 run the offline chat demo (--port, --home, --no-browser)
toolauth keeper               refresh tokens, probe accounts, deliver webhooks until stopped
toolauth audit                print the audit log (--user, --since, --limit); prune --days N
toolauth webhooks             list endpoints; create URL [--events a,b]; delete ID
```
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from ._client import AsyncToolAuth
from ._crypto import generate_key
from ._exceptions import ConfigurationError, ToolAuthError
from ._keys import key_file_path, load_keyring, uses_key_file, write_key_file
from ._settings import Settings
from .catalog import ToolkitDefinition, load_definition
from .oauth.client_metadata import client_metadata_url, registration_mode

__all__ = ["main"]


async def _rotate(settings: Settings) -> str:
    if uses_key_file(settings):
        # Embedded default: put a new key first in the key file, re-encrypt, drop the old keys.
        # A crash in between leaves a file that still holds every key some row may use.
        path = key_file_path(settings)
        old = await load_keyring(settings)
        old_text = path.read_text(encoding="ascii").split()
        new_key = generate_key()
        write_key_file(path, [new_key, *old_text])
        async with AsyncToolAuth(settings=settings) as ta:
            rewritten = await (await ta.store()).rotate_keys()
        write_key_file(path, [new_key])
        return (
            f"Re-encrypted {rewritten} row(s) under a new key in {path}; "
            f"retired key id(s): {', '.join(old.ids)}."
        )
    async with AsyncToolAuth(settings=settings) as ta:
        store = await ta.store()
        rewritten = await store.rotate_keys()
        primary = store.keyring.primary_id
    return (
        f"Re-encrypted {rewritten} row(s) under key id {primary}. The other keys in "
        "TOOLAUTH_ENCRYPTION_KEY are no longer needed and can be removed."
    )


async def _migrate(settings: Settings) -> str:
    async with AsyncToolAuth(settings=settings) as ta:
        store = await ta.store()
        return f"{store.display_url} is at schema version {await store.schema_version()}."


async def _toolkits(settings: Settings, args: argparse.Namespace) -> str:
    async with AsyncToolAuth(settings=settings) as ta:
        command = args.toolkits_command or "list"
        if command == "add":
            path = Path(args.file)
            try:
                raw = await anyio.Path(path).read_bytes()
            except OSError as exc:
                raise ConfigurationError(f"Cannot read {path}: {exc.strerror}.") from None
            definition = await ta.toolkits.save(
                load_definition(raw, source=str(path)), source="file",
                replace=args.replace, override=args.override,
            )  # fmt: skip
            return _stored(ta, definition.slug)
        if command == "discover":
            definition = await ta.toolkits.discover(
                args.slug, issuer=args.issuer, scopes=args.scope or None,
                api_base_url=args.api_base_url, replace=args.replace, override=args.override,
            )  # fmt: skip
            return _stored(ta, definition.slug)
        if command == "add-mcp":
            definition = await ta.toolkits.add_mcp(
                args.slug, url=args.url, name=args.name, scopes=args.scope or None,
                allowed_hosts=args.allowed_host or None, replace=args.replace,
            )  # fmt: skip
            return "\n".join([_stored(ta, definition.slug), *_mcp_summary(ta, definition)])
        if command == "show":
            await ta.store()
            definition = await ta.catalog.resolve(args.slug)
            return definition.model_dump_json(by_alias=True, indent=2)
        if command == "remove":
            used_by = await ta.toolkits.remove(args.slug, force=args.force)
            note = f"; auth config(s) {', '.join(used_by)} still name it" if used_by else ""
            return f"Removed toolkit {args.slug} from every process{note}."
        await ta.store()  # the stored definitions, too
        return "\n".join(
            f"{d.slug:16} {d.name:20} {ta.toolkits.source(d.slug):10} "
            f"{', '.join(s.value for s in d.auth_schemes)}"
            for d in ta.toolkits.list()
        )


def _mcp_summary(ta: AsyncToolAuth, definition: ToolkitDefinition) -> list[str]:
    """What discovery found, and how a managed config gets its client here (no secret: the
    definition holds none, and a registered client exists only after the first link)."""
    mcp = definition.mcp
    assert mcp is not None
    mode = registration_mode(definition, ta.urls.base_url)
    how = {
        "metadata_document": "CIMD (client ID metadata document: client_id "
        f"{client_metadata_url(ta.urls.base_url, definition.slug)}, served by the connect app)",
        "dynamic": "dynamic (RFC 7591: registered once per issuer on the first connect link)",
        "manual": "manual (create a custom auth config with your OAuth client, or set "
        f"TOOLAUTH_{definition.slug.upper()}_CLIENT_ID and _CLIENT_SECRET)",
        "none": "none (the server asks for no token)",
    }[mode]
    return [
        f"MCP server: {mcp.url}",
        f"issuer: {mcp.issuer or '-'}",
        f"resource: {mcp.resource or '-'}",
        f"client registration: {how}",
    ]


def _stored(ta: AsyncToolAuth, slug: str) -> str:
    held = ta.catalog.stored_version(slug)
    version = f" version {held[1]}" if held is not None else ""
    return f"Stored toolkit {slug}{version}; every process of the deployment uses it now."


async def _serve(settings: Settings, host: str, port: int) -> str:
    """Serve the connect app until the first Ctrl+C (or SIGTERM), then close everything."""
    from .connect.logs import install_access_log_filter

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    install_access_log_filter()
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with (
            AsyncToolAuth(settings=settings) as ta,
            ta.serve(host=host, port=port, access_log=True) as url,
        ):
            print(
                f"toolauth connect app on {url}; links point at {ta.urls.base_url}. "
                "Ctrl+C stops it.",
                flush=True,
            )
            async for _ in signals:
                break
    return "toolauth serve: stopped."


async def _keeper(settings: Settings) -> str:
    """Run the keeper until the first Ctrl+C (or SIGTERM)."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with AsyncToolAuth(settings=settings) as ta, anyio.create_task_group() as group:
            keeper = ta.keeper()
            group.start_soon(keeper.run)
            print(f"toolauth keeper {keeper.owner} running. Ctrl+C stops it.", flush=True)
            async for _ in signals:
                break
            group.cancel_scope.cancel()
    return "toolauth keeper: stopped."


async def _audit(settings: Settings, args: Any) -> str:
    async with AsyncToolAuth(settings=settings) as ta:
        if args.audit_command == "prune":
            events, entries = await ta.audit.prune(older_than_days=args.days)
            return (
                f"Pruned {entries} audit entr(ies) and {events} event(s) older than "
                f"{args.days:g} days."
            )
        since = datetime.fromisoformat(args.since) if args.since else None
        found = await ta.audit.list(user_id=args.user, since=since, limit=args.limit)
    return (
        "\n".join(
            f"{e.created_at.isoformat()} {e.actor}{f'({e.actor_id})' if e.actor_id else ''} "
            f"{e.action} {e.outcome} user={e.user_id or '-'} "
            f"account={e.connected_account_id or '-'}"
            f"{f' {e.detail}' if e.detail else ''}"
            for e in found
        )
        or "No audit entries."
    )


async def _webhooks(settings: Settings, args: Any) -> str:
    async with AsyncToolAuth(settings=settings) as ta:
        if args.webhooks_command == "create":
            events = [e for e in (args.events or "").split(",") if e] or None
            made = await ta.webhooks.create(args.url, events=events)
            assert made.secret is not None
            return (
                f"Created {made.id} for {made.url}.\nSigning secret (shown once, keep it for "
                f"webhooks.verify): {made.secret.get_secret_value()}"
            )
        if args.webhooks_command == "delete":
            await ta.webhooks.delete(args.id)
            return f"Deleted {args.id}."
        found = await ta.webhooks.list()
    return (
        "\n".join(
            f"{w.id} {'enabled' if w.enabled else 'DISABLED'} {w.url} "
            f"{','.join(w.events) or 'all events'}"
            f"{f' ({w.disabled_reason})' if w.disabled_reason else ''}"
            for w in found
        )
        or "No webhook endpoints."
    )


def _demo(port: int, home: str | None, open_browser: bool) -> int:
    from .demo.run import run_demo

    try:
        return run_demo(port=port, home=home, open_browser=open_browser)
    except ToolAuthError as exc:
        print(f"toolauth: {exc.message}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toolauth", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    keys = commands.add_parser("keys", help="manage encryption keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("generate", help="print a new random key")
    key_commands.add_parser("rotate", help="re-encrypt every secret under the first key")
    commands.add_parser("migrate", help="apply pending database migrations")
    toolkits = commands.add_parser(
        "toolkits", help="list, add, add-mcp, discover, show or remove toolkits"
    )
    kits = toolkits.add_subparsers(dest="toolkits_command")
    kits.add_parser("list", help="the toolkits every process knows (the default)")
    kits.add_parser("schema", help="print a toolkit file's JSON schema")
    add = kits.add_parser("add", help="store a definition file for every process")
    add.add_argument("file", help="a toolkit definition (JSON, see `toolauth toolkits schema`)")
    discover = kits.add_parser("discover", help="store an OAuth toolkit from issuer metadata")
    discover.add_argument("slug")
    discover.add_argument("issuer", help="the authorization server's issuer URL")
    discover.add_argument("--scope", action="append", help="a scope to ask for (repeatable)")
    discover.add_argument("--api-base-url", default=None, help="default: the issuer")
    for command in (add, discover):
        command.add_argument(
            "--replace", action="store_true", help="replace a stored definition (next version)"
        )
        command.add_argument(
            "--override", action="store_true", help="replace a built-in or folder definition"
        )
    add_mcp = kits.add_parser("add-mcp", help="store a remote MCP server as a toolkit")
    add_mcp.add_argument("slug")
    add_mcp.add_argument("--url", required=True, help="the MCP endpoint (streamable HTTP)")
    add_mcp.add_argument("--name", default=None, help="the toolkit's name (default: the slug)")
    add_mcp.add_argument("--scope", action="append", help="a scope to ask for (repeatable)")
    add_mcp.add_argument(
        "--allowed-host", action="append",
        help="a host the authorization server's endpoints may be on besides the issuer's",
    )  # fmt: skip
    add_mcp.add_argument(
        "--replace", action="store_true", help="replace a stored definition (next version)"
    )
    show = kits.add_parser("show", help="print a toolkit's definition as JSON")
    show.add_argument("slug")
    remove = kits.add_parser("remove", help="remove a stored toolkit from every process")
    remove.add_argument("slug")
    remove.add_argument(
        "--force", action="store_true", help="even while auth configs use it (they stop working)"
    )
    serve = commands.add_parser("serve", help="run the connect app")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8765)
    demo = commands.add_parser(
        "demo", help="run the offline chat demo: agent, connect links, demo provider"
    )
    demo.add_argument("--port", type=int, default=8765, help="loopback port (0: any free one)")
    demo.add_argument("--home", default=None, help="keep the demo's data in this folder")
    demo.add_argument("--no-browser", action="store_true", help="do not open a browser")
    commands.add_parser("keeper", help="refresh tokens, probe accounts, deliver webhooks")
    audit = commands.add_parser("audit", help="print (or prune) the audit log")
    audit.add_argument("audit_command", nargs="?", choices=["list", "prune"], default="list")
    audit.add_argument("--user", default=None, help="only this user's entries")
    audit.add_argument("--since", default=None, help="from this ISO time on (with its zone)")
    audit.add_argument("--limit", type=int, default=1000)
    audit.add_argument("--days", type=float, default=90.0, help="prune: older than this")
    hooks = commands.add_parser("webhooks", help="manage webhook endpoints")
    hook_commands = hooks.add_subparsers(dest="webhooks_command")
    hook_commands.add_parser("list", help="list endpoints")
    create = hook_commands.add_parser("create", help="register an endpoint")
    create.add_argument("url")
    create.add_argument("--events", default=None, help="comma-separated event types (all)")
    delete = hook_commands.add_parser("delete", help="delete an endpoint")
    delete.add_argument("id")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "keys" and args.keys_command == "generate":
        print(generate_key())
        return 0
    if args.command == "demo":
        return _demo(args.port, args.home, not args.no_browser)
    if args.command == "toolkits" and args.toolkits_command == "schema":
        print(json.dumps(ToolkitDefinition.model_json_schema(by_alias=True), indent=2))
        return 0
    actions = {"migrate": _migrate}
    action = _rotate if args.command == "keys" else actions.get(args.command)
    try:
        if args.command == "serve":
            print(anyio.run(_serve, Settings.from_env(), args.host, args.port))
            return 0
        if args.command == "keeper":
            print(anyio.run(_keeper, Settings.from_env()))
            return 0
        if args.command == "toolkits":
            print(anyio.run(_toolkits, Settings.from_env(), args))
            return 0
        if args.command in ("audit", "webhooks"):
            run = _audit if args.command == "audit" else _webhooks
            print(anyio.run(run, Settings.from_env(), args))
            return 0
        assert action is not None
        print(anyio.run(action, Settings.from_env()))
    except ToolAuthError as exc:
        print(f"toolauth: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
