"""The connect app's pages: Jinja2 templates with autoescaping, one stylesheet, no scripts,
nothing from a CDN."""

from __future__ import annotations

from functools import cache
from importlib import resources

import jinja2

from .steps import KeyForm, Page

__all__ = ["STYLESHEET", "render_form", "render_page"]

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


def render_page(page: Page) -> str:
    return _env().get_template("message.html").render(page=page)


def render_form(form: KeyForm) -> str:
    return _env().get_template("form.html").render(form=form)
