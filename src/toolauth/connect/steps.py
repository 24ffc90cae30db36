"""The steps a connect link answers with, as data: a redirect, a key form or a message page.

The connect app (:mod:`toolauth.connect.app`) renders each one; nothing here does HTTP.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from typing import Literal

from ..oauth.authorize import hash_state

__all__ = [
    "CSRF_COOKIE",
    "STATE_COOKIE",
    "Cookie",
    "FormField",
    "KeyForm",
    "Page",
    "Redirect",
    "Step",
    "Visitor",
    "same_text",
    "split_state",
    "state_cookie_name",
    "wrong_user_page",
]

STATE_COOKIE = "toolauth_state"
CSRF_COOKIE = "toolauth_csrf"


def split_state(state: str) -> tuple[str, str]:
    """A ``state`` is ``<link part>.<opening part>``: the link part finds the link (its hash is
    the link's ``state_hash``), the opening part is fresh on every opening of the link."""
    link_part, _, opening = state.partition(".")
    return link_part, opening


def state_cookie_name(state: str) -> str:
    """The cookie that binds a link's openings to the browser that made them: one per link,
    so links opened side by side in one browser (two toolkits at once) do not evict each
    other, while a browser's latest opening of one link replaces its earlier ones."""
    return f"{STATE_COOKIE}_{hash_state(split_state(state)[0])[:16]}"


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    path: str
    max_age: int
    samesite: Literal["lax", "strict"] = "lax"


@dataclass(frozen=True)
class Redirect:
    url: str
    cookies: tuple[Cookie, ...] = ()


@dataclass(frozen=True)
class Page:
    """A message page: ``tone`` picks the look; ``retry_url`` adds a "try again" button."""

    status_code: int
    title: str
    message: str
    tone: Literal["success", "error", "info"] = "error"
    toolkit: str | None = None
    retry_url: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    help: str | None
    secret: bool
    required: bool
    placeholder: str | None
    value: str = ""  # refilled for non-secret fields only


@dataclass(frozen=True)
class KeyForm:
    status_code: int
    link_id: str
    toolkit: str
    toolkit_description: str
    scheme: str
    fields: tuple[FormField, ...]
    csrf_token: str
    expires_at: str
    error: str | None = None
    callback_url: str | None = None
    cookies: tuple[Cookie, ...] = field(default=())


Step = Redirect | Page | KeyForm


def same_text(given: str, expected: str) -> bool:
    """Constant-time equality of two strings of any text: ``hmac.compare_digest`` raises on
    ``str`` with non-ASCII characters, which a hostile cookie or form field may carry."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


@dataclass(frozen=True)
class Visitor:
    """Who the host app says the browser is (``verify_user``): a user id, or ``None`` when
    nobody is signed in. Without ``verify_user`` there is no visitor to check."""

    user_id: str | None


def wrong_user_page(visitor: Visitor) -> Page:
    """What a browser sees on a link made for someone else (or before signing in)."""
    if visitor.user_id is None:
        return Page(
            401, "Sign in first",
            "This connect link is for a signed-in user. Sign in to the app that sent it, then "
            "open the link again.", error="not_signed_in",
        )  # fmt: skip
    return Page(
        403, "This link is for someone else",
        "This connect link was made for another user of the app, so it cannot connect your "
        "account. Nothing was changed. Ask the app for a link of your own.",
        error="wrong_user",
    )  # fmt: skip
