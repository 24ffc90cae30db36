"""toolauth.catalog.templates: ``{placeholder}`` templates in catalog URLs and placements."""

import pytest

from toolauth import ConfigurationError
from toolauth.catalog.templates import render, template_names


@pytest.mark.parametrize(
    ("template", "names"),
    [
        ("https://api.example/v1", set()),
        ("{base_url}/demo", {"base_url"}),
        ("https://{site}.atlassian.net/{site}/{path}", {"site", "path"}),
        ("Bearer {access_token}", {"access_token"}),
        ("{{literal}} {real}", {"real"}),
        ("{value:>8}", {"value"}),
        ("", set()),
    ],
)
def test_template_names(template, names):
    assert template_names(template) == names


def test_render_fills_every_placeholder():
    values = {"site": "acme", "base_url": "http://127.0.0.1:8765", "unused": "x"}
    assert render("https://{site}.example/{site}", values, what="url") == (
        "https://acme.example/acme"
    )
    assert render("{base_url}/demo", values, what="url") == "http://127.0.0.1:8765/demo"


def test_render_without_placeholders_returns_the_template():
    assert render("https://api.example/{{x}}", {}, what="url") == "https://api.example/{x}"


def test_values_are_inserted_literally_not_re_parsed():
    assert render("Bearer {t}", {"t": "{other} }{"}, what="header") == "Bearer {other} }{"


def test_missing_values_are_named_sorted_without_any_values():
    with pytest.raises(ConfigurationError) as info:
        render(
            "{zone}/{api_key}/{site}/{access_token}",
            {"api_key": "SECRET-KEY", "site": "acme"},
            what="header Authorization",
        )
    assert str(info.value) == (
        "header Authorization needs ['access_token', 'zone'], which this account lacks."
    )
    assert "SECRET-KEY" not in str(info.value) and "acme" not in str(info.value)


@pytest.mark.parametrize("template", ["{token.__class__}", "{token[0]}", "{0}"])
def test_attribute_index_and_positional_fields_are_refused(template):
    """Only plain names are filled: ``{x.attr}`` or ``{x[0]}`` could read beyond the value."""
    with pytest.raises(ConfigurationError) as info:
        render(template, {"token": "T", "0": "zero"}, what="url")
    assert str(info.value) == "url is not a valid template: use {name} placeholders only."


@pytest.mark.parametrize("template", ["Bearer {}", "Bearer {access_token", "x } y"])
def test_a_malformed_template_is_a_configuration_error(template):
    with pytest.raises(ConfigurationError, match="header Authorization"):
        render(template, {"access_token": "T"}, what="header Authorization")
