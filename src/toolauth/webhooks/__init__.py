"""Webhooks for receivers and senders: Standard Webhooks signatures (:mod:`.signing`) and the
rules for endpoint URLs (:mod:`.urls`).

```python
from toolauth import webhooks
body = webhooks.verify(request_body, request.headers, secret)   # raises if it does not verify
```
"""

from __future__ import annotations

from .._exceptions import WebhookVerificationError
from .signing import headers, new_secret, sign, verify
from .urls import check_endpoint_url

__all__ = [
    "WebhookVerificationError",
    "check_endpoint_url",
    "headers",
    "new_secret",
    "sign",
    "verify",
]
