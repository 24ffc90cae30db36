"""The connect app's pages: Jinja2 templates with autoescaping, one stylesheet, no scripts,
nothing from a CDN."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import cache
from importlib import resources

import jinja2

from .._models import utcnow
from .steps import KeyForm, Page

__all__ = ["STYLESHEET", "expires_in", "render_form", "render_page"]

STYLESHEET = (
    resources.files(__package__).joinpath("templates").joinpath("toolauth.css").read_text("utf-8")
)


@cache
def _env() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("toolauth.connect", "templates"),
        autoescape=True,  # every value is escaped, whatever the template
        undefined=jinja2.StrictUndefined,
    )


def _plural(count: int, unit: str) -> str:
    return f"in {count} {unit}" if count == 1 else f"in {count} {unit}s"


def expires_in(expires_at: str | datetime, now: datetime | None = None) -> str:
    """How long until ``expires_at``, in words: "in 9 minutes", "in 1 minute", "in less than a
    minute", "in 2 hours". Rounded down, so the page never promises more time than is left."""
    when = datetime.fromisoformat(expires_at) if isinstance(expires_at, str) else expires_at
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    seconds = (when - (now or utcnow())).total_seconds()
    if seconds <= 0:
        return "now"
    minutes = int(seconds // 60)
    if minutes < 1:
        return "in less than a minute"
    if minutes < 60:
        return _plural(minutes, "minute")
    hours = minutes // 60
    if hours < 48:
        return _plural(hours, "hour")
    return _plural(hours // 24, "day")


def render_page(page: Page) -> str:
    return _env().get_template("message.html").render(page=page)


def render_form(form: KeyForm) -> str:
    return (
        _env().get_template("form.html").render(form=form, expires_in=expires_in(form.expires_at))
    )
