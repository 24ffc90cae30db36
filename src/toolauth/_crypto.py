"""Encryption at rest: AES-256-GCM with a key id beside every ciphertext, so keys can rotate.

No I/O here. A ``Keyring`` holds one or more 256-bit keys: the first encrypts, all decrypt.
A key's id is derived from the key (8 bytes of a SHA-256), so it needs no configuration and a
wrong key is recognised by its id before any decryption is tried. Every ciphertext is bound to
its row by associated data (for example ``b"connected_accounts:ca_..."``), so a ciphertext copied
into another row does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ._exceptions import ConfigurationError, DecryptionError

__all__ = ["Keyring", "generate_key"]

_NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit random nonces


def generate_key() -> str:
    """A new random 256-bit key, URL-safe base64 (what ``toolauth keys generate`` prints)."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _decode_key(text: str, position: int) -> bytes:
    raw = text.strip()
    try:
        key = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise ConfigurationError(
            f"Encryption key #{position} is not a URL-safe base64 encoding of 32 bytes. "
            "Generate one with `toolauth keys generate`."
        )
    return key


def _key_id(key: bytes) -> str:
    return hashlib.sha256(b"toolauth-key-id:" + key).hexdigest()[:16]


class Keyring:
    """Keys for AES-256-GCM. The first key encrypts; every key decrypts.

    ```python
    ring = Keyring.from_text("k1,k2")  # the TOOLAUTH_ENCRYPTION_KEY format
    kid, blob = ring.encrypt(b"secret", aad=b"row-id")
    ring.decrypt(kid, blob, aad=b"row-id")
    ```
    """

    def __init__(self, keys: Iterable[bytes]) -> None:
        self._keys: dict[str, AESGCM] = {}
        for key in keys:
            if len(key) != 32:
                raise ConfigurationError("An encryption key must be 32 bytes (AES-256).")
            self._keys.setdefault(_key_id(key), AESGCM(key))
        if not self._keys:
            raise ConfigurationError(
                "No encryption key. Set TOOLAUTH_ENCRYPTION_KEY (generate one with "
                "`toolauth keys generate`)."
            )
        self.primary_id: str = next(iter(self._keys))

    @classmethod
    def from_text(cls, text: str) -> Keyring:
        """Keys from a comma- or newline-separated list of URL-safe base64 keys."""
        parts = [p for p in text.replace("\n", ",").split(",") if p.strip()]
        return cls(_decode_key(p, i) for i, p in enumerate(parts, start=1))

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """Encrypt under the primary key; returns ``(key_id, nonce || ciphertext || tag)``."""
        nonce = os.urandom(_NONCE_BYTES)
        return self.primary_id, nonce + self._keys[self.primary_id].encrypt(nonce, plaintext, aad)

    def decrypt(self, key_id: str, blob: bytes, *, aad: bytes, what: str | None = None) -> bytes:
        """Decrypt a blob written by :meth:`encrypt`; a clear ``DecryptionError`` otherwise,
        naming ``what`` (the row, for example ``connected account ca_...``) or else ``aad``."""
        aead = self._keys.get(key_id)
        if aead is None:
            raise DecryptionError(
                f"This secret was encrypted with key id {key_id}, which is not configured. "
                "Add the key that wrote it to TOOLAUTH_ENCRYPTION_KEY (after the current one), "
                "then run `toolauth keys rotate`."
            )
        try:
            return aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], aad)
        except InvalidTag:
            if what is None:
                raise DecryptionError(
                    f"A secret stored for {aad.decode(errors='replace')} failed its integrity "
                    "check: the row was altered or copied from another row. Reconnect the "
                    "account."
                ) from None
            raise DecryptionError(
                f"The secrets of {what} failed their integrity check: the row was altered in "
                "the database without the key (a column bound to them, such as its user, "
                "toolkit, auth config or URL variables, was changed, or the ciphertext was "
                "copied from another row). Nothing was sent with them. Restore the row from a "
                "backup, or delete it and connect again."
            ) from None

    def __repr__(self) -> str:
        return f"Keyring(ids={list(self._keys)!r})"
