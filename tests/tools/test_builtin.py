"""Every built-in tool is fit for a model: a name, a prompt-like description, and arguments
whose JSON Schema describes each parameter."""

from __future__ import annotations

import json
import re

import pytest

from toolauth.catalog import Catalog
from toolauth.tools import builtin_tools

TOOLS = builtin_tools()
CATALOG = Catalog()

EXPECTED = {
    "github": {
        "GITHUB_GET_THE_AUTHENTICATED_USER",
        "GITHUB_LIST_REPOSITORIES",
        "GITHUB_LIST_ISSUES",
        "GITHUB_CREATE_AN_ISSUE",
    },
    "gmail": {"GMAIL_LIST_MESSAGES", "GMAIL_GET_MESSAGE", "GMAIL_SEND_EMAIL"},
    "slack": {"SLACK_LIST_CHANNELS", "SLACK_SEND_MESSAGE"},
    "notion": {"NOTION_SEARCH", "NOTION_CREATE_PAGE"},
    "linear": {"LINEAR_LIST_ISSUES", "LINEAR_CREATE_ISSUE"},
}


@pytest.mark.parametrize("toolkit", sorted(EXPECTED))
def test_each_toolkit_ships_its_tools(toolkit):
    assert {s.name for s in builtin_tools([toolkit])} == EXPECTED[toolkit]


@pytest.mark.parametrize("spec", TOOLS, ids=lambda s: s.name)
def test_tool_is_described_for_a_model(spec):
    assert re.fullmatch(r"^[A-Z]+(_[A-Z0-9]+)+$", spec.name)
    assert spec.name.startswith(spec.toolkit.upper() + "_")
    assert CATALOG.get(spec.toolkit).slug == spec.toolkit
    assert spec.description.strip() == spec.description
    assert 20 <= len(spec.description) <= 400
    assert 1 <= spec.description.count(". ") + 1 <= 4  # a short prompt, a few sentences

    schema = spec.args_schema.model_json_schema()
    json.dumps(schema)
    assert schema["type"] == "object"
    assert schema.get("additionalProperties") is False
    for name, prop in schema.get("properties", {}).items():
        assert prop.get("description"), f"{spec.name}.{name} has no description"
