"""The one implementation of the ``Store`` over SQL, shared by every backend.

Each method is written once here, over the statements of :mod:`toolauth.store.queries` and a
small interface each backend implements (as encode/databases does): a connection that runs
statements (:class:`Connection`), a write transaction that announces what it changed
(:meth:`SQLStore._transaction`), one-off reads (:meth:`SQLStore._select`) and the migration
transaction (:meth:`SQLStore._migration`).
"""

from __future__ import annotations

import abc
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any, ClassVar, Protocol

from .._crypto import Keyring
from .._exceptions import ConflictError, DecryptionError, MigrationError, NotFoundError
from .._models import AuthConfig, ConnectedAccount, ConnectionLink, LinkStatus, utcnow
from ..events import account_event, config_event
from .base import AccountFilter, Store, ToolkitRow
from .changes import ANY, TOOLKITS, ChangeHub
from .lifecycle import LifecycleStore, PendingEvent, write_events
from .migrations import load_migrations, pending_migrations
from .queries import Queries, Statement
from .rows import (
    AAD_VERSION,
    KINDS,
    AnyModel,
    Model,
    decode_plain,
    decode_row,
    encode_row,
    row_key,
)

__all__ = ["NO_VALUES", "Clash", "Connection", "SQLStore", "ScriptError", "Tx"]

log = logging.getLogger("toolauth.store")

NO_VALUES: Mapping[str, Any] = {}


def _as_it_was(keyring: Keyring, cls: type[Model], row: Mapping[str, Any]) -> Model:
    """A row read to tell which event a change is: decrypted when it can be; a row whose
    secrets no longer decrypt (tampered, an unknown key) is still deleted or overwritten, so
    it is read without them."""
    try:
        return decode_row(keyring, cls, row)
    except DecryptionError:
        return decode_plain(cls, row)


class Clash(ConflictError):
    """A uniqueness or reference rule said no; ``reason`` is the database's word for it."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ScriptError(Exception):
    """A statement of a migration failed; ``reason`` is the database's word for it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Connection(Protocol):
    """One backend connection, as the shared methods use it. ``execute`` raises
    :class:`Clash` when a constraint refuses the write, and returns the rows it touched."""

    async def fetch(
        self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES
    ) -> list[dict[str, Any]]: ...

    async def execute(self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES) -> int: ...

    async def executemany(self, stmt: Statement, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def script(self, sql: str) -> None:
        """Run one statement of a migration file; :class:`ScriptError` if it fails."""


class Tx:
    """One write transaction: its connection, and the accounts whose change it announces
    (with the rows it wrote for them, when the waiters may use those instead of a read)."""

    __slots__ = ("changed", "configs_changed", "conn", "events")

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.changed: dict[str, list[AnyModel] | None] = {}
        self.configs_changed = False  # an auth config changed: what accounts use may have
        self.events: list[PendingEvent] = []  # written (with outbox and audit) before commit

    def note(
        self, old: AnyModel | None, new: AnyModel | None, *, link_completed: bool = False
    ) -> None:
        """A row of an account or an auth config went from ``old`` to ``new`` (``None``:
        absent): queue the event the mapping in :mod:`toolauth.events.types` says it is."""
        row = new if new is not None else old
        if isinstance(row, ConnectedAccount):
            kind = account_event(old, new, link_completed=link_completed)  # type: ignore[arg-type]
        elif isinstance(row, AuthConfig):
            kind = config_event(old, new)  # type: ignore[arg-type]
        else:
            return
        if kind is not None:
            self.events.append(PendingEvent.of(kind, row))

    def touch(self, models: Iterable[AnyModel]) -> None:
        for model in models:
            if isinstance(model, ConnectedAccount):
                account_id = model.id
            elif isinstance(model, ConnectionLink):
                account_id = model.connected_account_id
            else:
                self.configs_changed = True
                continue
            known = self.changed.setdefault(account_id, [])
            if known is not None:
                known.append(model)

    def touch_id(self, account_id: str) -> None:
        self.changed[account_id] = None  # changed in a way waiters must read back

    def touch_toolkits(self) -> None:
        self.changed[TOOLKITS] = None  # a stored toolkit definition changed

    def publish(self, hub: ChangeHub, *, with_rows: bool = True) -> None:
        """Ring the bells of the accounts touched (once the outcome is known); event
        subscribers hear every change (``ANY``)."""
        for account_id, models in self.changed.items():
            hub.publish(account_id, *((models or ()) if with_rows else ()))
        if self.configs_changed:  # readers that cache what a config gave them read again
            hub.publish_all()


class SQLStore(LifecycleStore, Store):
    """A ``Store`` over SQL: every method once, over the backend's connection."""

    queries: ClassVar[Queries]

    # what each backend implements -------------------------------------------------------
    @abc.abstractmethod
    async def _connect(self) -> bool:
        """Connect; ``False`` when already connected."""

    @abc.abstractmethod
    def _transaction(self) -> AbstractAsyncContextManager[Tx]:
        """One write transaction; on commit, the accounts it touched are published."""

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[Tx]:
        """A write transaction whose queued events (with their outbox rows and audit
        entries) are written at its end, before it commits: all of it, or none."""
        async with self._transaction() as tx:
            yield tx
            if tx.events:
                await write_events(self.queries.life, tx.conn, tx.events)
                tx.changed.setdefault(ANY, None)  # subscribers here and elsewhere read them

    @abc.abstractmethod
    def _migration(self) -> AbstractAsyncContextManager[Connection]:
        """The transaction migrations run in, one instance at a time."""

    @abc.abstractmethod
    async def _select(
        self, stmt: Statement, values: Mapping[str, Any] = NO_VALUES
    ) -> list[dict[str, Any]]:
        """One read, outside any write transaction."""

    @property
    def dialect(self) -> str:
        return self.queries.dialect.name

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display_url!r})"

    # lifecycle ---------------------------------------------------------------------------
    async def open(self) -> None:
        if not await self._connect():
            return
        try:
            await self.migrate()
            async with self._tx() as tx:
                now = utcnow()
                await tx.conn.execute(
                    self.queries.add_key, {"key_id": self.keyring.primary_id, "now": now}
                )
                await self._upgrade_rows(tx)
        except BaseException:
            await self.close()
            raise

    async def _upgrade_rows(self, tx: Tx) -> None:
        """Rewrite rows of an older associated-data version (written before toolauth bound
        their columns, or by an instance not yet upgraded) as the current version; a link
        moves to the key of its id. A row that does not decrypt is left as it is (it fails,
        naming itself, when it is used) and reported here by its key."""
        q = self.queries
        unreadable: list[str] = []
        for cls, stmt in q.old_aad.items():
            updates = []
            for row in await tx.conn.fetch(stmt, {"aad_version": AAD_VERSION}):
                try:
                    model = decode_row(self.keyring, cls, row)
                except DecryptionError:
                    unreadable.append(f"{KINDS[cls]} {row_key(cls, row['id'])}")
                    continue
                updates.append({**encode_row(self.keyring, model), "old_id": row["id"]})
            if updates:
                await tx.conn.executemany(q.rewrite[cls], updates)
        if unreadable:
            log.warning(
                "%d row(s) of %s could not be decrypted to be upgraded and were left as they "
                "are: %s", len(unreadable), self.display_url, ", ".join(unreadable),
            )  # fmt: skip

    async def migrate(self) -> list[int]:
        """Apply pending migrations in one transaction; returns the versions applied."""
        q = self.queries
        migrations = load_migrations(self.dialect)
        async with self._migration() as conn:
            await conn.execute(q.create_migrations)
            current = int((await conn.fetch(q.schema_version))[0]["v"])
            applied = []
            for migration in pending_migrations(migrations, current, self.display_url):
                try:
                    for statement in migration.statements:
                        await conn.script(statement)
                except ScriptError as exc:
                    raise MigrationError(
                        f"Migration {migration.version:04d}_{migration.name} failed on "
                        f"{self.display_url}: {exc.reason}. Nothing was changed."
                    ) from exc.__cause__
                record = {"version": migration.version, "name": migration.name, "now": utcnow()}
                await conn.execute(q.record_migration, record)
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        return int((await self._select(self.queries.schema_version))[0]["v"])

    # rows --------------------------------------------------------------------------------
    async def _get(self, cls: type[Model], id: str) -> Model | None:
        rows = await self._select(self.queries.get[cls], {"id": row_key(cls, id)})
        return decode_row(self.keyring, cls, rows[0]) if rows else None

    async def _insert(self, model: AnyModel) -> None:
        async with self._tx() as tx:
            try:
                await self._insert_in(tx, model)
            except Clash as exc:
                key = row_key(type(model), model.id)  # a link's id is a secret
                raise ConflictError(f"Cannot store {key}: {exc.reason}") from exc
            if isinstance(model, ConnectedAccount):
                tx.touch_id(model.id)
            tx.note(None, model)

    async def _insert_in(self, tx: Tx, model: AnyModel) -> None:
        await tx.conn.execute(self.queries.insert[type(model)], encode_row(self.keyring, model))

    async def _update_in(
        self, tx: Tx, model: Model, old: Model | None = None, *, link_completed: bool = False
    ) -> Model:
        """Write ``model`` over its row if the row still has ``model.version``; the change
        from ``old`` (read here when not given) queues its event."""
        cls = type(model)
        if old is None and cls is not ConnectionLink:
            rows = await tx.conn.fetch(self.queries.get_locked[cls], {"id": model.id})
            old = _as_it_was(self.keyring, cls, rows[0]) if rows else None
        new = model.model_copy(update={"version": model.version + 1, "updated_at": utcnow()})
        values = {**encode_row(self.keyring, new), "expected": model.version}
        if await tx.conn.execute(self.queries.update[cls], values) != 1:
            raise ConflictError(
                f"{values['id']} changed since it was read (or was deleted); read it again."
            )
        if old is not None:
            tx.note(old, new, link_completed=link_completed)
        return new

    async def save(self, *models: AnyModel) -> list[Any]:
        completed = {
            m.connected_account_id
            for m in models
            if isinstance(m, ConnectionLink) and m.status is LinkStatus.COMPLETED
        }
        async with self._tx() as tx:
            saved = [
                await self._update_in(tx, model, link_completed=model.id in completed)  # type: ignore[type-var]
                for model in models
            ]
            tx.touch(saved)
        return saved

    async def modify(self, cls: type[Model], id: str, change: Callable[[Model], Model]) -> Model:
        async with self._tx() as tx:
            key = row_key(cls, id)
            rows = await tx.conn.fetch(self.queries.get_locked[cls], {"id": key})
            if not rows:
                raise NotFoundError(KINDS[cls], key)
            current = decode_row(self.keyring, cls, rows[0])
            changed = change(current)
            if changed is current:  # nothing to change: no write, no new version
                return current
            new = await self._update_in(tx, changed, current)
            tx.touch([new])
        return new

    # auth configs ------------------------------------------------------------------------
    async def create_auth_config(self, config: AuthConfig) -> None:
        await self._insert(config)

    async def get_auth_config(self, id: str) -> AuthConfig | None:
        return await self._get(AuthConfig, id)

    async def list_auth_configs(
        self, *, toolkit: str | None = None, enabled: bool | None = None
    ) -> list[AuthConfig]:
        rows = await self._select(*self.queries.list_auth_configs(toolkit, enabled))
        return [decode_row(self.keyring, AuthConfig, row) for row in rows]

    async def delete_auth_config(self, id: str, *, with_accounts: bool) -> list[str]:
        q = self.queries
        key = {"id": id}
        async with self._tx() as tx:
            # Locking the config keeps new accounts for it out (their foreign key check waits
            # for this lock, then fails) until this transaction ends.
            found = await tx.conn.fetch(q.get_locked[AuthConfig], key)
            if not found:
                raise NotFoundError("auth config", id)
            accounts = [
                _as_it_was(self.keyring, ConnectedAccount, row)
                for row in await tx.conn.fetch(q.config_account_rows, key)
            ]
            account_ids = [account.id for account in accounts]
            if account_ids and not with_accounts:
                raise ConflictError(
                    f"Auth config {id} still has {len(account_ids)} connected account(s). "
                    "Delete them first, disable the config instead, or pass force=True to "
                    "delete the config with its accounts."
                )
            for stmt in (q.delete_config_links, q.delete_config_accounts, q.delete_config):
                await tx.conn.execute(stmt, key)
            for account in accounts:
                tx.touch_id(account.id)
                tx.note(account, None)
            tx.note(_as_it_was(self.keyring, AuthConfig, found[0]), None)
        return account_ids

    # connected accounts ------------------------------------------------------------------
    async def create_account(self, account: ConnectedAccount) -> None:
        await self._insert(account)

    async def get_account(self, id: str) -> ConnectedAccount | None:
        return await self._get(ConnectedAccount, id)

    async def list_accounts(self, where: AccountFilter) -> list[ConnectedAccount]:
        rows = await self._select(*self.queries.list_accounts(where))
        return [decode_row(self.keyring, ConnectedAccount, row) for row in rows]

    async def save_account(self, account: ConnectedAccount) -> ConnectedAccount:
        saved: ConnectedAccount = (await self.save(account))[0]
        return saved

    async def delete_account(self, id: str) -> bool:
        key = {"id": id}
        async with self._tx() as tx:
            found = await tx.conn.fetch(self.queries.get_locked[ConnectedAccount], key)
            await tx.conn.execute(self.queries.delete_account_links, key)
            deleted = await tx.conn.execute(self.queries.delete_account, key) == 1
            if deleted:
                tx.touch_id(id)
                tx.note(_as_it_was(self.keyring, ConnectedAccount, found[0]), None)
        return deleted

    async def try_refresh_lease(self, id: str, owner: str, seconds: float) -> bool:
        now = utcnow()
        values = {
            "id": id,
            "owner": owner,
            "now": now,
            "until": now + timedelta(seconds=seconds),
            "seconds": float(seconds),
        }
        async with self._tx() as tx:
            return await tx.conn.execute(self.queries.take_lease, values) == 1

    async def release_refresh_lease(self, id: str, owner: str) -> None:
        async with self._tx() as tx:
            await tx.conn.execute(self.queries.release_lease, {"id": id, "owner": owner})
            tx.touch_id(id)  # waiters for the lease look again

    # connect links -----------------------------------------------------------------------
    async def open_link(
        self, link: ConnectionLink, account: ConnectedAccount, *, new: bool, update: bool
    ) -> tuple[ConnectionLink, bool]:
        q = self.queries
        values = {
            "key": link.pending_key,
            "pending": str(LinkStatus.PENDING),
            "expired": str(LinkStatus.EXPIRED),
            "now": utcnow(),
            "lock": f"toolauth.link:{link.pending_key}",
        }
        async with self._tx() as tx:
            conn = tx.conn
            if q.lock_pending_key is not None:
                await conn.execute(q.lock_pending_key, values)
            for row in await conn.fetch(q.expiring_links, values):
                tx.touch_id(row["connected_account_id"])
            await conn.execute(q.expire_links, values)
            found = await conn.fetch(q.pending_link, values)
            if found:
                return decode_row(self.keyring, ConnectionLink, found[0]), False
            try:
                if new:
                    await self._insert_in(tx, account)
                    tx.note(None, account)
                elif update:
                    await self._update_in(tx, account)
                await self._insert_in(tx, link)
            except Clash as exc:
                raise ConflictError(
                    f"Another link was opened at the same time: {exc.reason}"
                ) from exc
            tx.touch_id(account.id)
        return link, True

    async def get_link(self, id: str) -> ConnectionLink | None:
        return await self._get(ConnectionLink, id)

    async def get_link_by_state(self, state_hash: str) -> ConnectionLink | None:
        return await self._first(self.queries.link_by_state, {"state_hash": state_hash})

    async def get_link_by_confirm(self, confirm_hash: str) -> ConnectionLink | None:
        return await self._first(self.queries.link_by_confirm, {"confirm_hash": confirm_hash})

    async def unconfirmed_links(self, now: datetime) -> list[ConnectionLink]:
        values = {"status": str(LinkStatus.PENDING_CONFIRMATION), "now": now}
        rows = await self._select(self.queries.unconfirmed_links, values)
        return [decode_row(self.keyring, ConnectionLink, row) for row in rows]

    async def latest_link(self, connected_account_id: str) -> ConnectionLink | None:
        return await self._first(self.queries.latest_link, {"id": connected_account_id})

    async def _first(self, stmt: Statement, values: Mapping[str, Any]) -> ConnectionLink | None:
        rows = await self._select(stmt, values)
        return decode_row(self.keyring, ConnectionLink, rows[0]) if rows else None

    # toolkit definitions -----------------------------------------------------------------
    # A definition holds no secret, but it says where secrets go (token_url, api_base_url):
    # each row carries a MAC under the encryption key (AES-GCM over no plaintext, the row's
    # values as associated data), so a row edited without the key is refused, not followed.
    @staticmethod
    def _toolkit_aad(slug: str, source: str, version: int, definition: str) -> bytes:
        return b"toolkits:" + json.dumps([slug, source, version, definition]).encode()

    def _sealed(self, row: ToolkitRow) -> ToolkitRow:
        aad = self._toolkit_aad(row.slug, row.source, row.version, row.definition)
        key_id, mac = self.keyring.encrypt(b"", aad=aad)
        return dataclasses.replace(row, key_id=key_id, mac=mac)

    def _checked(self, values: Mapping[str, Any]) -> ToolkitRow:
        row = ToolkitRow(**values)
        aad = self._toolkit_aad(row.slug, row.source, row.version, row.definition)
        try:
            self.keyring.decrypt(row.key_id, bytes(row.mac), aad=aad, what=f"toolkit {row.slug!r}")
        except DecryptionError:
            return dataclasses.replace(row, altered=True)
        return row

    def _toolkit_values(self, row: ToolkitRow) -> dict[str, Any]:
        values = dataclasses.asdict(row)
        del values["altered"]
        return values

    async def list_toolkits(self) -> list[ToolkitRow]:
        return [self._checked(row) for row in await self._select(self.queries.list_toolkits)]

    async def get_toolkit(self, slug: str) -> ToolkitRow | None:
        rows = await self._select(self.queries.get_toolkit, {"slug": slug})
        return self._checked(rows[0]) if rows else None

    async def put_toolkit(
        self, slug: str, *, source: str, definition: str, replace: bool
    ) -> tuple[ToolkitRow, bool]:
        q = self.queries
        async with self._transaction() as tx:
            rows = await tx.conn.fetch(q.get_toolkit_locked, {"slug": slug})
            now = utcnow()
            if not rows:
                row = self._sealed(ToolkitRow(slug, source, definition, 1, now, now))
                try:
                    await tx.conn.execute(q.insert_toolkit, self._toolkit_values(row))
                except Clash as exc:
                    raise ConflictError(
                        f"Toolkit {slug!r} was stored by another process at the same time; "
                        "read it again (ta.toolkits.get) and retry if it is not what you want."
                    ) from exc
            else:
                current = self._checked(rows[0])
                same = current.source == source and current.definition == definition
                if same and not current.altered:
                    return current, False
                if not replace and not current.altered:  # an altered row is repaired
                    raise ConflictError(
                        f"Toolkit {slug!r} is already stored (version {current.version}, "
                        f"{current.source}) with another definition; pass replace=True to "
                        "replace it."
                    )
                row = self._sealed(ToolkitRow(slug, source, definition, current.version + 1,
                                              current.created_at, now))  # fmt: skip
                values = {**self._toolkit_values(row), "expected": current.version}
                if await tx.conn.execute(q.update_toolkit, values) != 1:
                    raise ConflictError(f"Toolkit {slug!r} changed while it was stored; retry.")
            tx.touch_toolkits()
        return row, True

    async def delete_toolkit(self, slug: str, *, force: bool) -> list[str]:
        q = self.queries
        key = {"slug": slug}
        async with self._transaction() as tx:
            if not await tx.conn.fetch(q.get_toolkit_locked, key):
                raise NotFoundError("stored toolkit", slug)
            config_ids = [row["id"] for row in await tx.conn.fetch(q.toolkit_configs, key)]
            if config_ids and not force:
                raise ConflictError(
                    f"Toolkit {slug!r} is used by auth config(s) {', '.join(config_ids)}. "
                    "Delete those configs first (ta.auth_configs.delete), or pass force=True "
                    "to remove the definition anyway (the configs then stop working until "
                    "it is registered again)."
                )
            await tx.conn.execute(q.delete_toolkit, key)
            tx.touch_toolkits()
        return config_ids

    # keys --------------------------------------------------------------------------------
    async def key_ids(self) -> set[str]:
        return {row["key_id"] for row in await self._select(self.queries.key_ids)}

    async def rotate_keys(self) -> int:
        q = self.queries
        primary = {"primary": self.keyring.primary_id}
        rewritten = 0
        async with self._tx() as tx:
            for cls, stmt in q.other_keys.items():
                rows = await tx.conn.fetch(stmt, primary)
                updates = [
                    {
                        **encode_row(self.keyring, decode_row(self.keyring, cls, r)),
                        "old_id": r["id"],
                    }
                    for r in rows
                ]
                if updates:
                    await tx.conn.executemany(q.rewrite[cls], updates)
                rewritten += len(updates)
            rewritten += await self._reencrypt_webhooks(tx, primary)
            for values in await tx.conn.fetch(q.other_key_toolkits, primary):
                row = self._checked(values)
                if not row.altered:  # an altered row stays refused: never sealed again
                    await tx.conn.execute(q.remac_toolkit, self._toolkit_values(self._sealed(row)))
                    rewritten += 1
            now = utcnow()
            await tx.conn.execute(q.add_key, {"key_id": self.keyring.primary_id, "now": now})
            await tx.conn.execute(q.drop_other_keys, primary)
        return rewritten
