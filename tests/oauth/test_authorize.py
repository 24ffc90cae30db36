"""toolauth.oauth.authorize: state, PKCE and the authorization URL (no I/O)."""

import base64
import hashlib
import re
from urllib.parse import parse_qsl, urlsplit

import pytest

from toolauth.oauth.authorize import authorization_url, hash_state, new_code_verifier, new_state

# RFC 7636 Appendix B: the 32 random octets, their base64url (the verifier) and its challenge.
APPENDIX_B_OCTETS = bytes([
    116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173,
    187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83,
    132, 141, 121,
])  # fmt: skip
APPENDIX_B_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
APPENDIX_B_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")  # RFC 7636 §4.1 / RFC 3986 §2.3


def build(**overrides: object) -> str:
    kwargs: dict[str, object] = {
        "client_id": "app-1",
        "redirect_uri": "https://connect.example/oauth/callback",
        "scopes": ["read", "write"],
        "scope_separator": " ",
        "state": "st-1",
        "code_verifier": None,
    }
    kwargs.update(overrides)
    endpoint = str(kwargs.pop("endpoint", "https://as.example/authorize"))
    return authorization_url(endpoint, **kwargs)


def query(url: str) -> list[tuple[str, str]]:
    return sorted(parse_qsl(urlsplit(url).query, keep_blank_values=True))


# state -------------------------------------------------------------------------------------
def test_state_is_256_random_bits_in_url_safe_text():
    """RFC 6749 §10.12: the state binds the callback to this browser, so it MUST be
    unguessable; 32 random octets give 43 base64url characters."""
    states = {new_state() for _ in range(200)}
    assert len(states) == 200
    for state in states:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", state)


def test_hash_state_is_the_sha256_hex_digest():
    assert hash_state("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert hash_state("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    state = new_state()
    assert hash_state(state) == hashlib.sha256(state.encode()).hexdigest() != state


# PKCE --------------------------------------------------------------------------------------
def test_code_verifier_length_and_charset():
    """RFC 7636 §4.1: the code verifier MUST be 43 to 128 characters from the unreserved set
    ``[A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~"``; 32 random octets are RECOMMENDED."""
    verifiers = {new_code_verifier() for _ in range(200)}
    assert len(verifiers) == 200
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128
        assert UNRESERVED.fullmatch(verifier)
        assert len(base64.urlsafe_b64decode(verifier + "=")) == 32


def test_appendix_b_verifier_is_the_base64url_of_its_octets():
    assert base64.urlsafe_b64encode(APPENDIX_B_OCTETS).rstrip(b"=").decode() == (
        APPENDIX_B_VERIFIER
    )


def test_s256_challenge_matches_rfc7636_appendix_b():
    """RFC 7636 §4.2: code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier))), checked
    against the RFC's Appendix B example; the method is S256 (RFC 7636 §4.3)."""
    params = dict(query(build(code_verifier=APPENDIX_B_VERIFIER)))
    assert params["code_challenge"] == APPENDIX_B_CHALLENGE
    assert params["code_challenge_method"] == "S256"


def test_the_verifier_never_travels_in_the_url():
    verifier = new_code_verifier()
    url = build(code_verifier=verifier)
    assert verifier not in url
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    assert dict(query(url))["code_challenge"] == challenge.rstrip(b"=").decode()


def test_without_a_verifier_there_is_no_challenge():
    params = dict(query(build(code_verifier=None)))
    assert "code_challenge" not in params and "code_challenge_method" not in params


# the authorization URL (RFC 6749 §4.1.1) ---------------------------------------------------
def test_the_authorization_request_parameters():
    """RFC 6749 §4.1.1: ``response_type=code``, ``client_id``, ``redirect_uri``, ``scope`` and
    ``state`` on the authorization endpoint."""
    url = build(client_id="my app", redirect_uri="https://connect.example/cb?x=1&y=2")
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path, parts.fragment) == (
        "https",
        "as.example",
        "/authorize",
        "",
    )
    assert query(url) == [
        ("client_id", "my app"),
        ("redirect_uri", "https://connect.example/cb?x=1&y=2"),
        ("response_type", "code"),
        ("scope", "read write"),
        ("state", "st-1"),
    ]


@pytest.mark.parametrize(
    ("scopes", "separator", "expected"),
    [
        (["read", "write"], " ", "read write"),
        (["repo", "gist"], ",", "repo,gist"),
        (("chat:write",), ",", "chat:write"),
        (["a", "b", "c"], "+", "a+b+c"),
    ],
)
def test_scopes_are_joined_with_the_toolkits_separator(scopes, separator, expected):
    assert dict(query(build(scopes=scopes, scope_separator=separator)))["scope"] == expected


def test_no_scopes_means_no_scope_parameter():
    assert "scope" not in dict(query(build(scopes=[])))


def test_extra_params_are_added():
    url = build(extra={"access_type": "offline", "prompt": "consent"}, code_verifier="v" * 43)
    params = dict(query(url))
    assert params["access_type"] == "offline"
    assert params["prompt"] == "consent"
    assert params["code_challenge_method"] == "S256"
    assert len(query(url)) == 9


def test_an_existing_query_in_the_endpoint_is_kept():
    url = build(endpoint="https://as.example/authorize?tenant=t1&audience=api")
    parts = urlsplit(url)
    assert parts.path == "/authorize"
    assert parse_qsl(parts.query)[:2] == [("tenant", "t1"), ("audience", "api")]
    assert query(url) == [
        ("audience", "api"),
        ("client_id", "app-1"),
        ("redirect_uri", "https://connect.example/oauth/callback"),
        ("response_type", "code"),
        ("scope", "read write"),
        ("state", "st-1"),
        ("tenant", "t1"),
    ]


@pytest.mark.parametrize(
    "key", ["state", "redirect_uri", "scope", "client_id", "response_type"]
)  # fmt: skip
def test_extra_params_cannot_override_the_core_ones(key):
    params = query(build(extra={key: "from-extra"}))
    expected = {
        "state": "st-1",
        "redirect_uri": "https://connect.example/oauth/callback",
        "scope": "read write",
        "client_id": "app-1",
        "response_type": "code",
    }
    assert [v for k, v in params if k == key] == [expected[key]]
