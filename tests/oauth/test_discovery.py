"""toolauth.oauth.discovery.metadata_urls (an issuer with a path is in tests/test_toolkits.py)."""

from toolauth.oauth.discovery import metadata_urls


def test_an_issuer_without_a_path():
    """RFC 8414 §3.1 and OpenID Connect Discovery 1.0 §4, for an issuer that is just a host."""
    assert metadata_urls("https://id.example") == [
        "https://id.example/.well-known/oauth-authorization-server",
        "https://id.example/.well-known/openid-configuration",
    ]
    assert metadata_urls("https://id.example/") == metadata_urls("https://id.example")


def test_the_port_and_a_nested_path_are_kept():
    assert metadata_urls("https://id.example:8443/realms/acme/") == [
        "https://id.example:8443/.well-known/oauth-authorization-server/realms/acme",
        "https://id.example:8443/realms/acme/.well-known/openid-configuration",
    ]
