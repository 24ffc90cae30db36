"""toolauth._callbacks: where the connect flow may send the user afterwards."""

import pytest

from toolauth import ValidationError
from toolauth._callbacks import check_callback_url, with_query

BASE = "https://connect.example"
ORIGINS = ("https://app.example", "http://intranet.example:8080", "https://[2001:db8::1]:8443")


def check(url: object, *, allowed: tuple[str, ...] = ORIGINS, base_url: str = BASE) -> str:
    return check_callback_url(url, allowed_origins=allowed, base_url=base_url)  # type: ignore[arg-type]


def refused(url: object, **kwargs: object) -> ValidationError:
    with pytest.raises(ValidationError) as info:
        check(url, **kwargs)  # type: ignore[arg-type]
    assert info.value.field == "callback_url"
    return info.value


# Allowed -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "https://app.example/done",
        "https://app.example/done?x=1#section",
        "https://APP.Example/done",  # hosts compare case-insensitively
        "HTTPS://app.example/",
        "https://app.example:443/done",  # the default port is the same origin
        "http://intranet.example:8080/cb",
        "https://[2001:db8::1]:8443/cb",
        "https://[2001:DB8::1]:8443/cb",
        "https://connect.example/after",  # the connect app's own origin
    ],
)
def test_listed_and_own_origins_are_allowed(url):
    assert check(url) == url  # returned unchanged


def test_an_allowed_origin_may_be_given_with_a_path_or_default_port():
    assert check("https://app.example/x", allowed=("https://app.example:443/some/path/",))
    assert check("http://h.example/x", allowed=("http://h.example:80",))


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:3000/done",
        "http://LOCALHOST/done",
        "https://localhost/done",
        "http://127.0.0.1:5173/cb",
        "http://127.8.9.10/cb",  # all of 127.0.0.0/8 is loopback
        "http://[::1]:3000/cb",
    ],
)
def test_loopback_is_allowed_on_any_port_without_listing(url):
    assert check(url, allowed=()) == url


# Refused -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://evil.example/done", "https://evil.example"),
        ("http://app.example/done", "http://app.example"),  # other scheme
        ("https://app.example:444/done", "https://app.example:444"),  # other port
        ("https://app.example.evil.example/", "https://app.example.evil.example"),
        ("https://evil.example/https://app.example", "https://evil.example"),
        ("http://intranet.example/cb", "http://intranet.example"),  # listed with :8080 only
        ("https://[2001:db8::2]:8443/cb", "https://[2001:db8::2]:8443"),
        ("http://localhost.evil.example/", "http://localhost.evil.example"),
        ("http://127.0.0.1.evil.example/", "http://127.0.0.1.evil.example"),
        ("http://[::2]/", "http://[::2]"),
    ],
)
def test_other_origins_are_refused_with_the_origin_named(url, origin):
    error = refused(url)
    assert str(error).startswith(f"callback_url origin {origin} is not allowed.")
    assert "TOOLAUTH_ALLOWED_CALLBACK_ORIGINS" in str(error)


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "ftp://app.example/file",
        "file:///etc/passwd",
        "//app.example/done",  # scheme-relative
        "/relative/path",
        "app.example/done",
        "https://",
        "https:///path-only",
        "",
    ],
)
def test_non_http_or_not_absolute_urls_are_refused(url):
    error = refused(url)
    assert str(error) == "callback_url must be an absolute http(s) URL without credentials."


@pytest.mark.parametrize(
    "url",
    [
        "https://user@app.example/done",
        "https://user:pw@app.example/done",
        "http://user:pw@localhost:3000/done",
        "https://app.example@evil.example/",
    ],
)
def test_urls_with_credentials_are_refused(url):
    refused(url)


def test_a_password_with_an_empty_user_is_refused():
    refused("http://:pw@localhost:3000/done")


@pytest.mark.parametrize(
    "url", [None, 42, b"https://app.example/", "https://app.example/" + "a" * 2000]
)
def test_non_strings_and_overlong_urls_are_refused(url):
    assert str(refused(url)) == "callback_url must be an absolute http(s) URL."


@pytest.mark.parametrize(
    "url",
    ["https://app.example:99999/done", "https://app.example:abc/", "http://[::1/x", "http://[zz]/"],
)
def test_a_bad_port_is_a_validation_error(url):
    refused(url)


# with_query --------------------------------------------------------------------------------
def test_with_query_adds_params():
    assert with_query("https://app.example/done", {"status": "success", "id": "ca_1"}) == (
        "https://app.example/done?status=success&id=ca_1"
    )


def test_with_query_keeps_the_existing_query_first():
    assert with_query("https://app.example/done?tab=apps&x=", {"status": "failed"}) == (
        "https://app.example/done?tab=apps&x=&status=failed"
    )


def test_with_query_keeps_the_fragment_after_the_query():
    assert with_query("https://app.example/done?a=1#top", {"b": "2"}) == (
        "https://app.example/done?a=1&b=2#top"
    )


def test_with_query_encodes_values():
    assert with_query("http://localhost/cb", {"error": "access denied & more", "e": "é"}) == (
        "http://localhost/cb?error=access+denied+%26+more&e=%C3%A9"
    )


def test_with_query_without_params_leaves_the_url_alone():
    assert with_query("https://app.example/done?a=1", {}) == "https://app.example/done?a=1"
    assert with_query("https://app.example/done", {}) == "https://app.example/done"
