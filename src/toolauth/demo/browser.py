"""A scripted browser that plays the user's part of a connect link against the demo provider.

It follows redirects, keeps cookies and submits the same forms a person would: the provider's
sign-in and consent pages for OAuth links, the connect app's form for API-key links. Examples,
notebooks and tests use it when nobody is at the keyboard (``--auto``).

```python
result = complete_oauth(req.redirect_url)                     # alice / wonderland, Allow
result = submit_key_form(req.redirect_url, {"api_key": key})
thread = complete_in_background(req.redirect_url)              # while this thread waits
```

Where the connect app checks who the browser is (``asgi_app(verify_user=...)``, as the demo
chat does), pass the app's session cookies: ``complete_oauth(url, cookies=signed_in)``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

from .._http import tls_context

__all__ = [
    "BrowserError",
    "Landing",
    "complete_in_background",
    "complete_oauth",
    "submit_key_form",
]


class BrowserError(RuntimeError):
    """A page did not look like the step the scripted user expected."""


@dataclass
class _Form:
    action: str | None = None
    fields: dict[str, str] = field(default_factory=dict)


class _FormParser(HTMLParser):
    """The first ``<form>``: its action and its hidden inputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.form: _Form | None = None
        self._done = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._done:
            return
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and self.form is None:
            self.form = _Form(action=values.get("action") or None)
        elif tag == "input" and self.form is not None and values.get("type") == "hidden":
            self.form.fields[values.get("name", "")] = values.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.form is not None:
            self._done = True


def _form_of(landing: Landing, what: str) -> _Form:
    parser = _FormParser()
    parser.feed(landing.text)
    if parser.form is None:
        raise BrowserError(
            f"expected {what} at {landing.url} (HTTP {landing.status_code}), found no form"
        )
    return parser.form


@dataclass
class Landing:
    """Where the scripted user ended up: the last page and its URL."""

    url: str
    status_code: int
    text: str

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.url).query).items()}


class _Browser:
    def __init__(self, timeout: float, cookies: Mapping[str, str] | None = None) -> None:
        self.http = httpx.Client(
            follow_redirects=True, timeout=timeout, cookies=dict(cookies or {}),
            verify=tls_context(),  # the process's one TLS context (making one is not cheap)
        )  # fmt: skip

    def close(self) -> None:
        self.http.close()

    @staticmethod
    def _landing(response: httpx.Response) -> Landing:
        return Landing(str(response.url), response.status_code, response.text)

    def get(self, url: str) -> Landing:
        return self._landing(self.http.get(url))

    def submit(self, page: Landing, form: _Form, values: dict[str, str]) -> Landing:
        target = urljoin(page.url, form.action) if form.action else page.url
        return self._landing(self.http.post(target, data={**form.fields, **values}))


def complete_oauth(
    link_url: str,
    *,
    username: str = "alice",
    password: str = "wonderland",  # noqa: S107 - the demo provider's published demo password
    decision: str = "allow",
    timeout: float = 10.0,
    cookies: Mapping[str, str] | None = None,
) -> Landing:
    """Open an OAuth connect link, sign in on the demo provider and answer its consent page.
    ``cookies`` are the browser's cookies before it opens the link (the app's sign-in).

    Returns the page the flow ends on (the app's callback or the connect app's message).
    """
    browser = _Browser(timeout, cookies)
    try:
        page = browser.get(link_url)
        if "/oauth/authorize" not in page.url:
            raise BrowserError(
                f"the link did not lead to a sign-in page (HTTP {page.status_code} at {page.url})"
            )
        page = browser.submit(
            page, _form_of(page, "the sign-in form"), {"username": username, "password": password}
        )
        if 'name="decision"' not in page.text:
            raise BrowserError(f"signing in as {username!r} failed on the demo provider")
        return browser.submit(page, _form_of(page, "the consent form"), {"decision": decision})
    finally:
        browser.close()


def submit_key_form(
    link_url: str,
    values: dict[str, str],
    *,
    timeout: float = 10.0,
    cookies: Mapping[str, str] | None = None,
) -> Landing:
    """Open a key link (API key, token, username and password) and submit its form."""
    browser = _Browser(timeout, cookies)
    try:
        page = browser.get(link_url)
        return browser.submit(page, _form_of(page, "the connect form"), values)
    finally:
        browser.close()


class BackgroundUser(threading.Thread):
    """``complete_oauth`` in a daemon thread; ``result`` or ``error`` once it has run."""

    def __init__(self, link_url: str, delay: float, **options: Any) -> None:
        super().__init__(name="toolauth-scripted-user", daemon=True)
        self.link_url = link_url
        self.delay = delay
        self.options = options
        self.result: Landing | None = None
        self.error: BaseException | None = None
        self._cancelled = threading.Event()

    def cancel(self) -> None:
        """Do nothing after all, if the delay has not passed yet."""
        self._cancelled.set()

    def run(self) -> None:
        if self._cancelled.wait(self.delay):
            return
        try:
            self.result = complete_oauth(self.link_url, **self.options)
        except BaseException as exc:  # reported through .error
            self.error = exc


def complete_in_background(link_url: str, *, delay: float = 0.5, **options: Any) -> BackgroundUser:
    """Play the user in a background thread after ``delay`` seconds (while the caller waits)."""
    user = BackgroundUser(link_url, delay, **options)
    user.start()
    return user
