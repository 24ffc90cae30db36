"""Forward-only, numbered SQL migrations shipped in ``migrations/<dialect>/NNNN_name.sql``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

from .._exceptions import MigrationError

__all__ = ["Migration", "load_migrations", "pending_migrations"]

_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _split(sql: str) -> tuple[str, ...]:
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    return tuple(s.strip() for s in "\n".join(lines).split(";") if s.strip())


def load_migrations(dialect: str) -> list[Migration]:
    """The migrations for ``dialect`` in version order; versions must run 1, 2, 3, ..."""
    folder = resources.files(__package__).joinpath("migrations").joinpath(dialect)
    found = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if match:
            sql = entry.read_text(encoding="utf-8")
            found.append(Migration(int(match[1]), match[2], _split(sql)))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{dialect} migrations are not numbered 1..N: {found}")
    return found


def pending_migrations(migrations: list[Migration], current: int, where: str) -> list[Migration]:
    """The migrations after schema version ``current``; a database newer than this code is
    refused (``where`` names it in the error)."""
    if current > len(migrations):
        raise MigrationError(
            f"The database {where} has schema version {current}, newer than this toolauth "
            f"knows ({len(migrations)}). Upgrade toolauth."
        )
    return migrations[current:]
