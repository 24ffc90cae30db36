"""toolauth: let an LLM agent act on a user's apps, with that user's permission.

```python
from toolauth import AsyncToolAuth

async with AsyncToolAuth() as ta:
    config = await ta.auth_configs.create("github")
```
"""

from __future__ import annotations

from . import webhooks
from .__version__ import __version__
from ._client import AsyncToolAuth
from ._crypto import Keyring, generate_key
from ._exceptions import (
    AccountChoiceError,
    CatalogError,
    ClientClosedError,
    ConfigurationError,
    ConfirmationError,
    ConflictError,
    ConnectionFailedError,
    ConnectionRequiredError,
    ConnectionTimeoutError,
    DecryptionError,
    MigrationError,
    NotFoundError,
    OAuthError,
    ScopeRequiredError,
    StoreError,
    TokenRefreshError,
    ToolApiError,
    ToolAuthError,
    ValidationError,
    WebhookVerificationError,
)
from ._models import (
    AccountIdentity,
    AuthConfig,
    AuthConfigType,
    AuthScheme,
    ConnectedAccount,
    ConnectionStatus,
)
from ._settings import Settings
from ._sync import ToolAuth
from .catalog import ToolkitDefinition
from .events import Actor, AuditEntry, Event, EventType, WebhookEndpoint
from .resources.connection_requests import ConnectionRequest
from .resources.events import EventStream
from .resources.keeper import Keeper, KeeperRound
from .resources.sessions import ResumeMode, Session, ToolkitConnection

ConnectionFailed = ConnectionFailedError  # the name users of hosted platforms know

__all__ = [
    "AccountChoiceError",
    "AccountIdentity",
    "Actor",
    "AsyncToolAuth",
    "AuditEntry",
    "AuthConfig",
    "AuthConfigType",
    "AuthScheme",
    "CatalogError",
    "ClientClosedError",
    "ConfigurationError",
    "ConfirmationError",
    "ConflictError",
    "ConnectedAccount",
    "ConnectionFailed",
    "ConnectionFailedError",
    "ConnectionRequest",
    "ConnectionRequiredError",
    "ConnectionStatus",
    "ConnectionTimeoutError",
    "DecryptionError",
    "Event",
    "EventStream",
    "EventType",
    "Keeper",
    "KeeperRound",
    "Keyring",
    "MigrationError",
    "NotFoundError",
    "OAuthError",
    "ResumeMode",
    "ScopeRequiredError",
    "Session",
    "Settings",
    "StoreError",
    "TokenRefreshError",
    "ToolApiError",
    "ToolAuth",
    "ToolAuthError",
    "ToolkitConnection",
    "ToolkitDefinition",
    "ValidationError",
    "WebhookEndpoint",
    "WebhookVerificationError",
    "__version__",
    "generate_key",
    "webhooks",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("toolauth."):
        _obj.__module__ = "toolauth"
del _name, _obj
