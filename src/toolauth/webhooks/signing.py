"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec
https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).

Each delivery carries ``webhook-id`` (the same for every retry of one message),
``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,<base64 HMAC-SHA256>`` over
``"{id}.{timestamp}.{body}"``, space-separated when several secrets sign). Secrets are
``whsec_`` + base64 of 24 random bytes. No I/O here.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections.abc import Mapping

from .._exceptions import ValidationError, WebhookVerificationError

__all__ = ["SECRET_PREFIX", "TOLERANCE", "headers", "new_secret", "sign", "verify"]

SECRET_PREFIX = "whsec_"
TOLERANCE = 300  # seconds a timestamp may be off (the spec's replay window)


def new_secret() -> str:
    """A new signing secret: ``whsec_`` and 24 random bytes in base64 (192 bits)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _key(secret: str) -> bytes:
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        raise ValidationError(
            "The webhook secret is not a Standard Webhooks secret (whsec_ and base64); copy it "
            "exactly as it was shown when the endpoint was created.",
            field="secret",
        ) from None
    if not key:
        raise ValidationError("The webhook secret is empty.", field="secret")
    return key


def sign(msg_id: str, timestamp: int, body: bytes | str, secret: str) -> str:
    """The ``webhook-signature`` value for one message: ``v1,<base64 HMAC-SHA256>``."""
    payload = body.encode() if isinstance(body, str) else body
    content = f"{msg_id}.{timestamp}.".encode() + payload
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def headers(msg_id: str, body: bytes, secret: str, *, now: float | None = None) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    timestamp = int(time.time() if now is None else now)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(msg_id, timestamp, body, secret),
    }


def verify(
    payload: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = TOLERANCE,
    now: float | None = None,
) -> bytes:
    """Check a delivery as a receiver: returns the payload bytes when one ``v1`` signature
    matches and the timestamp is within ``tolerance`` seconds of now; otherwise raises
    :class:`~toolauth.WebhookVerificationError` (act on nothing then).

    ```python
    from toolauth import webhooks
    body = webhooks.verify(request_body, request.headers, "whsec_...")
    ```
    """
    lower = {k.lower(): v for k, v in headers.items()}
    msg_id = lower.get("webhook-id")
    stamp = lower.get("webhook-timestamp")
    signatures = lower.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        raise WebhookVerificationError(
            "The request lacks a webhook-id, webhook-timestamp or webhook-signature header."
        )
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError("webhook-timestamp is not a Unix time.") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            "webhook-timestamp is too far from now (a replay, or a clock off by more than "
            f"{tolerance:g} s)."
        )
    body = payload.encode() if isinstance(payload, str) else bytes(payload)
    expected = sign(msg_id, timestamp, body, secret).partition(",")[2]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return body
    raise WebhookVerificationError("No webhook-signature matches the payload and secret.")
