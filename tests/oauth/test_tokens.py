"""toolauth.oauth.tokens: token responses parsed without I/O, and client authentication."""

import base64
import json
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote_plus

import pytest
from pydantic import SecretStr

from toolauth import OAuthError
from toolauth.oauth.tokens import TokenSet, client_auth, parse_token_response

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
NOW = datetime(2024, 1, 1, tzinfo=timezone.utc)


def parse_json(body: dict[str, object], *, status: int = 200, **kwargs: str) -> TokenSet:
    return parse_token_response(status, JSON, json.dumps(body), **kwargs)


def oauth_error(status: int, content_type: str, text: str, **kwargs: str) -> OAuthError:
    with pytest.raises(OAuthError) as info:
        parse_token_response(status, content_type, text, **kwargs)
    return info.value


# Successful responses (RFC 6749 §5.1) -------------------------------------------------------
def test_a_full_json_response_becomes_a_token_set():
    tokens = parse_json({
        "access_token": "AT-1", "token_type": "Bearer", "refresh_token": "RT-1",
        "id_token": "ID-1", "expires_in": 3600, "scope": "read write", "user_id": "u-7",
    })  # fmt: skip
    assert tokens.access_token.get_secret_value() == "AT-1"
    assert tokens.refresh_token is not None and tokens.refresh_token.get_secret_value() == "RT-1"
    assert tokens.id_token is not None and tokens.id_token.get_secret_value() == "ID-1"
    assert tokens.token_type == "Bearer"
    assert tokens.expires_in == 3600.0
    assert tokens.scope == ("read", "write")
    assert tokens.public == {"user_id": "u-7"}
    assert tokens.private is None


def test_a_minimal_response_has_defaults():
    tokens = parse_json({"access_token": "AT"})
    assert tokens == TokenSet(access_token=SecretStr("AT"))
    assert (tokens.token_type, tokens.refresh_token, tokens.id_token) == ("Bearer", None, None)
    assert (tokens.expires_in, tokens.scope, tokens.public, tokens.private) == (
        None, None, {}, None,
    )  # fmt: skip


def test_a_form_encoded_response_is_read_like_json():
    """GitHub answers application/x-www-form-urlencoded unless asked for JSON."""
    text = "access_token=gho_AT&scope=repo%2Cgist&token_type=bearer&refresh_token=ghr_RT&expires_in=28800"
    tokens = parse_token_response(200, FORM, text)
    assert tokens.access_token.get_secret_value() == "gho_AT"
    assert tokens.refresh_token is not None and tokens.refresh_token.get_secret_value() == "ghr_RT"
    assert tokens.token_type == "Bearer"  # normalised from "bearer"
    assert tokens.scope == ("repo", "gist")  # GitHub separates scopes with commas
    assert tokens.expires_in == 28800.0


def test_a_json_body_is_recognised_without_a_json_content_type():
    tokens = parse_token_response(200, "text/plain", '  {"access_token": "AT"}')
    assert tokens.access_token.get_secret_value() == "AT"


def test_a_json_content_type_with_parameters_is_json():
    tokens = parse_token_response(200, "application/json; charset=utf-8", '{"access_token": "AT"}')
    assert tokens.access_token.get_secret_value() == "AT"


def test_other_token_types_keep_their_spelling():
    assert parse_json({"access_token": "AT", "token_type": "BEARER"}).token_type == "Bearer"
    assert parse_json({"access_token": "AT", "token_type": "DPoP"}).token_type == "DPoP"
    assert parse_json({"access_token": "AT", "token_type": ""}).token_type == "Bearer"


def test_empty_refresh_and_id_tokens_are_absent():
    tokens = parse_json({"access_token": "AT", "refresh_token": "", "id_token": None})
    assert tokens.refresh_token is None
    assert tokens.id_token is None
    tokens = parse_json({"access_token": "AT", "refresh_token": 42})
    assert tokens.refresh_token is None


def test_fields_that_look_secret_never_reach_public():
    tokens = parse_json({
        "access_token": "AT", "refresh_token": "RT", "id_token": "ID",
        "bot_token": "xoxb-1", "client_secret": "CS", "refresh_token_expires_in": 100,
        "token_type": "Bearer", "expires_in": 1, "scope": "a",
        "team": {"id": "T1"}, "user_id": "u",
    })  # fmt: skip
    assert tokens.public == {"team_id": "T1", "user_id": "u"}
    assert tokens.private is not None
    assert json.loads(tokens.private.get_secret_value()) == {
        "bot_token": "xoxb-1", "client_secret": "CS", "refresh_token_expires_in": 100,
    }  # fmt: skip


# scope -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("read write", ("read", "write")),
        ("  read   write  ", ("read", "write")),
        ("read,write", ("read", "write")),
        ("read, write", ("read", "write")),
        ("", ()),
        (["read", "write"], ("read", "write")),
        ([], ()),
        (["a", 1], ("a", "1")),
        (7, None),
        (None, None),
    ],
)
def test_scope_as_string_or_list(scope, expected):
    assert parse_json({"access_token": "AT", "scope": scope}).scope == expected


def test_absent_scope_is_none_so_the_requested_scopes_apply():
    assert parse_json({"access_token": "AT"}).scope is None


# expires_in --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [
        (3600, 3600.0),
        ("3600", 3600.0),
        (3599.5, 3599.5),
        ("1.5", 1.5),
        (0, 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ([3600], None),
        ({"seconds": 1}, None),
    ],
)
def test_expires_in_as_int_str_float_or_junk(expires_in, expected):
    assert parse_json({"access_token": "AT", "expires_in": expires_in}).expires_in == expected


def test_absent_expires_in_means_no_expiry():
    tokens = parse_json({"access_token": "AT"})
    assert tokens.expires_in is None
    assert tokens.expires_at(NOW) is None


def test_expires_at_is_now_plus_expires_in():
    assert parse_json({"access_token": "AT", "expires_in": 3600}).expires_at(NOW) == datetime(
        2024, 1, 1, 1, tzinfo=timezone.utc
    )
    assert parse_json({"access_token": "AT", "expires_in": "0.25"}).expires_at(NOW) == (
        NOW + timedelta(milliseconds=250)
    )


def test_a_negative_expires_in_is_ignored_with_a_warning(caplog):
    tokens = parse_json({"access_token": "AT", "expires_in": -5})
    assert tokens.expires_in is None and tokens.expires_at(NOW) is None
    assert "ignoring an expires_in" in caplog.text


@pytest.mark.parametrize("text", ['{"access_token": "AT", "expires_in": 1e400}',
                                  '{"access_token": "AT", "expires_in": "nan"}',
                                  '{"access_token": "AT", "expires_in": "-inf"}'])  # fmt: skip
def test_a_non_finite_expires_in_means_no_expiry(text):
    tokens = parse_token_response(200, JSON, text)
    assert tokens.expires_in is None
    assert tokens.expires_at(NOW) is None


def test_a_huge_expires_in_does_not_crash_expires_at():
    tokens = parse_json({"access_token": "AT", "expires_in": 10**12})
    expires_at = tokens.expires_at(NOW)
    assert expires_at is None or expires_at > NOW + timedelta(days=365 * 100)


# token_path: tokens nested in the response -------------------------------------------------
SLACK = {
    "ok": True,
    "app_id": "A0",
    "access_token": "xoxb-BOT",
    "token_type": "bot",
    "scope": "chat:write",
    "team": {"id": "T1", "name": "Team"},
    "authed_user": {
        "id": "U1",
        "scope": "search:read,users:read",
        "access_token": "xoxp-USER",
        "token_type": "user",
        "refresh_token": "xoxe-RT",
        "expires_in": 43200,
    },
}


def test_token_path_reads_the_nested_user_token():
    tokens = parse_json(SLACK, token_path="authed_user")
    assert tokens.access_token.get_secret_value() == "xoxp-USER"
    assert tokens.refresh_token is not None and tokens.refresh_token.get_secret_value() == "xoxe-RT"
    assert tokens.token_type == "user"
    assert tokens.expires_in == 43200.0
    assert tokens.scope == ("search:read", "users:read")  # the nested scope wins
    assert tokens.public == {
        "app_id": "A0", "team_id": "T1", "team_name": "Team", "authed_user_id": "U1",
    }  # fmt: skip
    assert tokens.private is not None  # the bot's token and its details, encrypted
    assert json.loads(tokens.private.get_secret_value()) == {
        "ok": True, "access_token": "xoxb-BOT", "token_type": "bot",
    }  # fmt: skip


def test_token_path_falls_back_to_the_top_level_scope():
    body = {"authed_user": {"access_token": "xoxp-USER"}, "scope": "a b"}
    assert parse_json(body, token_path="authed_user").scope == ("a", "b")


def test_a_dotted_token_path_walks_several_levels():
    body = {"data": {"oauth": {"access_token": "deep", "expires_in": "60"}}}
    tokens = parse_json(body, token_path="data.oauth")
    assert tokens.access_token.get_secret_value() == "deep"
    assert tokens.expires_in == 60.0


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"access_token": "top"}, "authed_user"),
        ({"authed_user": "xoxp-USER"}, "authed_user"),
        ({"authed_user": None}, "authed_user"),
        ({"data": {"oauth": ["x"]}}, "data.oauth"),
        ({"data": {}}, "data.oauth"),
    ],
)
def test_a_missing_token_path_is_an_invalid_response(body, path):
    error = oauth_error(200, JSON, json.dumps(body), token_path=path)
    assert error.error == "invalid_response"
    assert error.description == f"The token response has no {path!r}."


# Invalid responses -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "body",
    [
        {},
        {"access_token": ""},
        {"access_token": None},
        {"access_token": 12345},
        {"access_token": ["AT"]},
        {"token_type": "Bearer", "refresh_token": "RT"},
    ],
)
def test_no_usable_access_token_is_an_invalid_response(body):
    error = oauth_error(200, JSON, json.dumps(body))
    assert (error.error, error.description) == (
        "invalid_response",
        "The token response has no access_token.",
    )


def test_an_empty_form_body_is_an_invalid_response():
    error = oauth_error(200, FORM, "")
    assert error.error == "invalid_response"


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ('{"access_token": "AT-LEAK"', "The token endpoint answered with malformed JSON."),
        ('["AT-LEAK"]', "The token endpoint answered with a non-object."),
        ('"AT-LEAK"', "The token endpoint answered with a non-object."),
    ],
)
def test_malformed_json_is_an_invalid_response_that_does_not_echo_the_body(text, description):
    error = oauth_error(200, JSON, text)
    assert (error.error, error.description) == ("invalid_response", description)
    assert "AT-LEAK" not in str(error)


# Error responses (RFC 6749 §5.2) -----------------------------------------------------------
def test_an_error_response_carries_its_code_and_description():
    """RFC 6749 §5.2: the error response's ``error`` code and ``error_description`` reach the
    caller as the OAuthError's ``error`` and ``description``."""
    body = {"error": "invalid_grant", "error_description": "The code was already used."}
    error = oauth_error(400, JSON, json.dumps(body))
    assert error.error == "invalid_grant"
    assert error.description == '"The code was already used."'  # quoted: the provider's words
    assert str(error) == 'OAuth error invalid_grant: "The code was already used."'


def test_an_error_without_description():
    error = oauth_error(401, JSON, '{"error": "invalid_client"}')
    assert (error.error, error.description) == ("invalid_client", None)
    assert str(error) == "OAuth error invalid_client"


def test_a_form_encoded_error_response():
    text = "error=bad_verification_code&error_description=The+code+is+wrong.&error_uri=x"
    error = oauth_error(200, FORM, text)
    assert (error.error, error.description) == ("bad_verification_code", '"The code is wrong."')


def test_an_error_wins_over_a_200_status_and_an_access_token():
    """Slack answers HTTP 200 with ``{"ok": false, "error": ...}``."""
    error = oauth_error(200, JSON, '{"ok": false, "error": "invalid_code", "access_token": "x"}')
    assert error.error == "invalid_code"


def test_error_code_and_description_are_truncated():
    """A code longer than any RFC 6749 §5.2 code is no code; a description is cut to 200."""
    body = {"error": "e" * 500, "error_description": "d" * 1000}
    error = oauth_error(400, JSON, json.dumps(body))
    assert error.error == "invalid_response"
    assert error.description == '"' + "d" * 197 + '…"'
    assert len(error.description) == 200


def test_an_http_error_status_without_an_error_field_is_a_server_error():
    error = oauth_error(403, JSON, '{"access_token": "AT-LEAK", "message": "nope"}')
    assert (error.error, error.description) == (
        "server_error",
        "The token endpoint answered HTTP 403.",
    )
    assert "AT-LEAK" not in str(error)


def test_an_html_error_page_is_a_server_error():
    error = oauth_error(404, "text/html", "<html>Not found</html>")
    assert error.error == "server_error"


# TokenSet.secrets() ------------------------------------------------------------------------
def test_secrets_hold_the_tokens_and_the_token_type():
    tokens = parse_json({
        "access_token": "AT", "refresh_token": "RT", "id_token": "ID", "token_type": "bearer",
        "expires_in": 60, "scope": "a", "user": "u",
    })  # fmt: skip
    secrets = tokens.secrets()
    assert set(secrets) == {
        "access_token", "refresh_token", "id_token", "token_type", "token_response",
    }  # fmt: skip
    assert all(isinstance(v, SecretStr) for v in secrets.values())
    assert {k: v.get_secret_value() for k, v in secrets.items()} == {
        "access_token": "AT",
        "refresh_token": "RT",
        "id_token": "ID",
        "token_type": "Bearer",
        "token_response": '{"user":"u"}',  # not known to be public: kept encrypted
    }


def test_secrets_leave_out_absent_tokens():
    secrets = parse_json({"access_token": "AT"}).secrets()
    assert {k: v.get_secret_value() for k, v in secrets.items()} == {
        "access_token": "AT",
        "token_type": "Bearer",
    }


def test_tokens_are_not_in_the_repr():
    tokens = parse_json({"access_token": "AT-SENTINEL", "refresh_token": "RT-SENTINEL"})
    text = repr(tokens) + str(tokens)
    assert "AT-SENTINEL" not in text and "RT-SENTINEL" not in text


# client_auth (RFC 6749 §2.3) ---------------------------------------------------------------
def _basic_pair(headers: dict[str, str]) -> tuple[str, str]:
    scheme, _, encoded = headers["Authorization"].partition(" ")
    assert scheme == "Basic"
    user, sep, password = base64.b64decode(encoded).decode("ascii").partition(":")
    assert sep == ":"
    return user, password


def test_client_secret_basic_matches_the_rfc_example():
    """RFC 6749 §2.3.1: the client id and secret go in HTTP Basic auth (the RFC's example:
    ``czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3``), and nothing goes in the body."""
    headers, body = client_auth("client_secret_basic", "s6BhdRkqt3", "7Fjfp0ZBr1KtDRbnfVdmIw")
    assert headers == {"Authorization": "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3"}
    assert body == {}


def test_client_secret_basic_form_urlencodes_id_and_secret_before_base64():
    """RFC 6749 §2.3.1 (and Appendix B): the client identifier and password MUST be encoded
    with application/x-www-form-urlencoded before they are used as the Basic user and
    password, so a ``:`` in the id cannot shift the split, and a form decoder gets both back."""
    headers, body = client_auth("client_secret_basic", "id:with+plus", "s3cr%t:&=/?é~")
    assert body == {}
    assert _basic_pair(headers) == ("id%3Awith%2Bplus", "s3cr%25t%3A%26%3D%2F%3F%C3%A9~")


def test_client_secret_basic_spaces_decode_back_with_a_form_decoder():
    """RFC 6749 §2.3.1: a space may be sent as ``+`` or ``%20`` (both decode to a space with
    application/x-www-form-urlencoded), but never raw."""
    client_id, secret = "my app", "two words"
    user, password = _basic_pair(client_auth("client_secret_basic", client_id, secret)[0])
    assert " " not in user + password
    assert (unquote_plus(user), unquote_plus(password)) == (client_id, secret)


def test_client_secret_basic_is_also_the_default_for_unknown_methods():
    headers, body = client_auth("something_else", "cid", "secret")
    assert _basic_pair(headers) == ("cid", "secret")
    assert body == {}


def test_client_secret_post_sends_both_in_the_body():
    """RFC 6749 §2.3.1: the alternative is ``client_id`` and ``client_secret`` in the request
    body, unencoded here (the form encoding of the whole body does it)."""
    headers, body = client_auth("client_secret_post", "id:1", "se cret")
    assert headers == {}
    assert body == {"client_id": "id:1", "client_secret": "se cret"}


@pytest.mark.parametrize("method", ["client_secret_basic", "client_secret_post"])
def test_a_public_client_sends_only_its_id(method):
    """RFC 6749 §3.2.1: a client that has no secret identifies itself with ``client_id`` in
    the token request body."""
    assert client_auth(method, "public-app", None) == ({}, {"client_id": "public-app"})
