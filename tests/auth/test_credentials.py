"""toolauth.auth.credentials (placements on a request) and toolauth.auth.fields (split_fields)."""

import base64
import logging

import httpx
import pytest
from pydantic import SecretStr

from toolauth import ConfigurationError, ValidationError
from toolauth.auth.credentials import apply_placements, credential_values
from toolauth.auth.fields import split_fields
from toolauth.catalog import ApiKeySchemeSpec, CredentialPlacement


def placement(**data: str) -> CredentialPlacement:
    return CredentialPlacement.model_validate(data)


def applied(*placements: CredentialPlacement, url: str = "https://api.example/v1/items?page=2",
            **values: str) -> httpx.Request:  # fmt: skip
    request = httpx.Request("GET", url)
    apply_placements(request, placements, values)
    return request


# credential_values -------------------------------------------------------------------------
def test_credential_values_merge_plain_data_and_secrets():
    values = credential_values(
        {"api_key": SecretStr("K-1"), "site": SecretStr("secret-site")},
        {"site": "plain-site", "port": 8080, "region": "eu", "nested": {"a": 1}, "none": None},
    )
    # secrets win over plain data of the same name; only str and int data is usable
    assert values == {"api_key": "K-1", "site": "secret-site", "port": "8080", "region": "eu"}


# header ------------------------------------------------------------------------------------
def test_bearer_header():
    auth = placement(**{"in": "header", "name": "Authorization", "format": "Bearer {access_token}"})
    request = applied(auth, access_token="AT-1")
    assert request.headers["Authorization"] == "Bearer AT-1"
    assert str(request.url) == "https://api.example/v1/items?page=2"


def test_a_custom_header_with_several_values():
    auth = placement(**{"in": "header", "name": "X-Api-Key", "format": "{user}/{api_key}"})
    request = applied(auth, user="ann", api_key="K-2", unused="x")
    assert request.headers["X-Api-Key"] == "ann/K-2"
    assert "Authorization" not in request.headers


def test_a_header_replaces_one_already_set():
    request = httpx.Request("GET", "https://api.example/", headers={"Authorization": "old"})
    auth = placement(**{"in": "header", "name": "Authorization", "format": "Token {t}"})
    apply_placements(request, [auth], {"t": "new"})
    assert request.headers.get_list("Authorization") == ["Token new"]


# query -------------------------------------------------------------------------------------
def test_query_parameter_is_merged_into_the_existing_query():
    auth = placement(**{"in": "query", "name": "key", "format": "{api_key}"})
    request = applied(auth, api_key="K 3&x")
    assert request.url.params["key"] == "K 3&x"
    assert request.url.params["page"] == "2"
    assert request.url.path == "/v1/items"
    assert "Authorization" not in request.headers


def test_a_query_parameter_replaces_one_of_the_same_name():
    auth = placement(**{"in": "query", "name": "key", "format": "{api_key}"})
    request = applied(auth, url="https://api.example/?key=attacker", api_key="mine")
    assert request.url.params.get_list("key") == ["mine"]


def test_query_credentials_are_redacted_in_httpx_logs():
    """RFC 6750 §5.3: URLs end up in logs, so a credential in the query is masked there."""
    auth = placement(**{"in": "query", "name": "api_token_q", "format": "{api_key}"})
    request = applied(auth, api_key="QUERY-SECRET")
    record = logging.LogRecord(
        "httpx", logging.INFO, __file__, 1, 'HTTP Request: %s %s "%s"',
        ("GET", request.url, "HTTP/1.1 200 OK"), None,
    )  # fmt: skip
    assert logging.getLogger("httpx").filter(record)
    message = record.getMessage()
    assert "QUERY-SECRET" not in message
    assert "api_token_q=REDACTED" in message and "page=2" in message
    assert request.url.params["api_token_q"] == "QUERY-SECRET"  # the request itself is intact


# basic -------------------------------------------------------------------------------------
def test_basic_auth_from_username_and_password_templates():
    auth = placement(**{"in": "basic", "username": "{email}", "password": "{api_token}"})
    request = applied(auth, email="ann@example.com", api_token="T:1")
    expected = base64.b64encode(b"ann@example.com:T:1").decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_basic_auth_with_a_fixed_username_and_utf8():
    auth = placement(**{"in": "basic", "username": "{api_key}", "password": "x-é"})
    request = applied(auth, api_key="K")
    expected = base64.b64encode("K:x-é".encode()).decode("ascii")
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_several_placements_all_apply():
    request = applied(
        placement(**{"in": "header", "name": "X-Org", "format": "{org}"}),
        placement(**{"in": "query", "name": "sig", "format": "{api_key}"}),
        placement(**{"in": "basic", "username": "{org}", "password": "{api_key}"}),
        org="o1", api_key="k1",
    )  # fmt: skip
    assert request.headers["X-Org"] == "o1"
    assert request.url.params["sig"] == "k1"
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"o1:k1").decode()


def test_no_placements_leave_the_request_alone():
    request = applied(api_key="k")
    assert str(request.url) == "https://api.example/v1/items?page=2"
    assert "Authorization" not in request.headers


# missing values ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("auth", "what"),
    [
        ({"in": "header", "name": "Authorization", "format": "Bearer {access_token}"},
         "header Authorization"),
        ({"in": "query", "name": "key", "format": "{access_token}"}, "query key"),
        ({"in": "basic", "username": "{user}", "password": "{access_token}"}, "Basic auth"),
    ],
)  # fmt: skip
def test_a_missing_value_is_a_configuration_error_naming_it_not_the_values(auth, what):
    request = httpx.Request("GET", "https://api.example/")
    with pytest.raises(ConfigurationError) as info:
        apply_placements(request, [placement(**auth)], {"user": "ann", "other": "SECRET-VALUE"})
    assert str(info.value) == f"{what} needs ['access_token'], which this account lacks."
    assert "SECRET-VALUE" not in str(info.value)
    assert "Authorization" not in request.headers
    assert "key" not in request.url.params


# split_fields ------------------------------------------------------------------------------
SPEC = ApiKeySchemeSpec.model_validate({
    "fields": [
        {"name": "api_key", "label": "API key", "pattern": r"sk_[a-z0-9]{4,}", "placeholder": "sk_…"},
        {"name": "site", "label": "Site", "secret": False},
        {"name": "note", "label": "Note", "secret": False, "required": False},
        {"name": "extra_secret", "label": "Extra", "required": False},
    ],
    "placements": [{"in": "header", "name": "X-Key", "format": "{api_key}"}],
})  # fmt: skip


def test_split_fields_separates_secrets_from_plain_values():
    secrets, plain = split_fields(SPEC, {"api_key": " sk_abcd1 ", "site": "acme\n", "note": "n"})
    assert {k: v.get_secret_value() for k, v in secrets.items()} == {"api_key": "sk_abcd1"}
    assert all(isinstance(v, SecretStr) for v in secrets.values())
    assert plain == {"site": "acme", "note": "n"}


def test_split_fields_accepts_secret_str_input_and_skips_empty_optionals():
    secrets, plain = split_fields(
        SPEC, {"api_key": SecretStr("sk_1234"), "site": "s", "note": "  ", "extra_secret": None}
    )
    assert {k: v.get_secret_value() for k, v in secrets.items()} == {"api_key": "sk_1234"}
    assert plain == {"site": "s"}


@pytest.mark.parametrize("missing", [{}, {"api_key": ""}, {"api_key": "   "}, {"api_key": None}])
def test_split_fields_requires_required_fields(missing):
    with pytest.raises(ValidationError) as info:
        split_fields(SPEC, {"site": "s", **missing})
    assert (str(info.value), info.value.field) == ("API key is required.", "api_key")


def test_split_fields_refuses_unknown_fields_naming_them():
    with pytest.raises(ValidationError) as info:
        split_fields(SPEC, {"api_key": "sk_1234", "site": "s", "zeta": "1", "password": "p"})
    assert info.value.field == "password"
    assert str(info.value) == (
        "Unknown field(s) ['password', 'zeta']; this scheme takes "
        "['api_key', 'extra_secret', 'note', 'site']."
    )


def test_split_fields_checks_the_pattern_without_echoing_the_value():
    with pytest.raises(ValidationError) as info:
        split_fields(SPEC, {"api_key": "pk_WRONG-VALUE", "site": "s"})
    assert info.value.field == "api_key"
    assert str(info.value) == (
        "API key does not have the expected format: it should look like sk_…, at least 7 "
        "characters (the value given has 14)."
    )
    assert "WRONG-VALUE" not in str(info.value)


def test_the_pattern_must_match_the_whole_value():
    with pytest.raises(ValidationError):
        split_fields(SPEC, {"api_key": "sk_abcd trailing", "site": "s"})


@pytest.mark.parametrize("value", [123, 0, ["sk_1234"], {"k": "v"}, True])
def test_split_fields_requires_text(value):
    with pytest.raises(ValidationError) as info:
        split_fields(SPEC, {"api_key": "sk_1234", "site": value})
    assert (str(info.value), info.value.field) == ("Site must be text.", "site")
