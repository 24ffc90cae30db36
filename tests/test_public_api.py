"""The public surface is pinned: ``toolauth.__all__`` and the signature of every public method
of the objects users hold. A change here is a change of the public API: make it on purpose,
then regenerate the pin with ``python tests/test_public_api.py > tests/data/public_api.txt``."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import toolauth
from toolauth import AsyncToolAuth, ConnectionRequest, Session, ToolAuth
from toolauth.resources.auth_configs import AuthConfigs
from toolauth.resources.connected_accounts import ConnectedAccounts
from toolauth.resources.toolkits import Toolkits

PIN = Path(__file__).parent / "data" / "public_api.txt"
HELD = (
    AsyncToolAuth,
    ToolAuth,
    Session,
    ConnectionRequest,
    AuthConfigs,
    ConnectedAccounts,
    Toolkits,
)


def surface() -> list[str]:
    lines = [f"__all__ = {', '.join(toolauth.__all__)}"]
    for cls in HELD:
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") and name != "__init__":
                continue
            if inspect.isfunction(member):
                lines.append(f"{cls.__name__}.{name}{inspect.signature(member)}")
            elif isinstance(member, property):
                lines.append(f"{cls.__name__}.{name} (property)")
    return lines


def test_the_public_api_is_what_the_pin_says() -> None:
    pinned = PIN.read_text(encoding="utf-8").splitlines()
    now = surface()
    assert now == pinned, (
        "The public API changed. If that is intended, regenerate the pin: "
        "python tests/test_public_api.py > tests/data/public_api.txt\n"
        + "\n".join(f"- {line}" for line in sorted(set(pinned) - set(now)))
        + "\n"
        + "\n".join(f"+ {line}" for line in sorted(set(now) - set(pinned)))
    )


def test_every_exported_error_is_raised_somewhere() -> None:
    source = "\n".join(
        p.read_text(encoding="utf-8") for p in Path(toolauth.__file__).parent.rglob("*.py")
    )
    errors = [n for n in toolauth.__all__ if n.endswith("Error") and n != "ToolAuthError"]
    never = [
        n
        for n in errors
        if f"raise {n}(" not in source
        and not any(
            f"raise {sub.__name__}(" in source for sub in getattr(toolauth, n).__subclasses__()
        )
    ]
    assert never == []


if __name__ == "__main__":
    sys.stdout.write("\n".join(surface()) + "\n")
