"""Where the encryption keys come from: ``TOOLAUTH_ENCRYPTION_KEY``, or — for the embedded SQLite
default only — a key file in ``TOOLAUTH_HOME`` made on first use with mode 0600."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import anyio

from ._crypto import Keyring, generate_key
from ._exceptions import ConfigurationError
from ._files import private_folder
from ._settings import Settings

__all__ = ["KEY_FILE_NAME", "key_file_path", "load_keyring", "write_key_file"]

KEY_FILE_NAME = "encryption.key"


def key_file_path(settings: Settings) -> Path:
    return settings.home / KEY_FILE_NAME


def write_key_file(path: Path, keys: list[str]) -> None:
    """Replace the key file atomically (write a 0600 temp file, then rename over it)."""
    private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read_or_create(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="ascii")
    private_folder(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(generate_key() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(tmp, path)  # atomic, and fails if another process made the file first
    except FileExistsError:
        pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path.read_text(encoding="ascii")


def uses_key_file(settings: Settings) -> bool:
    return settings.encryption_key is None and settings.database_url.startswith("sqlite")


async def load_keyring(settings: Settings) -> Keyring:
    """The keyring for ``settings``; a clear ``ConfigurationError`` when there is none."""
    if settings.encryption_key is not None:
        return Keyring.from_text(settings.encryption_key.get_secret_value())
    if not uses_key_file(settings):
        raise ConfigurationError(
            "A shared database needs TOOLAUTH_ENCRYPTION_KEY (every instance must use the same "
            "keys). Generate one with `toolauth keys generate`."
        )
    path = key_file_path(settings)
    try:
        text = await anyio.to_thread.run_sync(_read_or_create, path)
    except OSError as exc:
        raise ConfigurationError(
            f"Cannot read or create the key file {path}: {exc.strerror}. Set TOOLAUTH_HOME to a "
            "writable folder, or set TOOLAUTH_ENCRYPTION_KEY."
        ) from None
    try:
        return Keyring.from_text(text)
    except ConfigurationError as exc:
        raise ConfigurationError(f"The key file {path} is damaged: {exc.message}") from None
