"""toolauth.oauth.client_app: the OAuth app of an auth config, managed or custom."""

import pytest
from pydantic import SecretStr

from toolauth import AuthConfig, AuthConfigType, AuthScheme, ConfigurationError, Settings
from toolauth._models import utcnow
from toolauth.oauth.client_app import OAuthApp, oauth_app


def config(kind: AuthConfigType, toolkit: str = "github", **credentials: str) -> AuthConfig:
    now = utcnow()
    return AuthConfig(
        id="ac_1", toolkit=toolkit, name="GitHub", type=kind, auth_scheme=AuthScheme.OAUTH2,
        created_at=now, updated_at=now,
        credentials={k: SecretStr(v) for k, v in credentials.items()},
    )  # fmt: skip


def settings(**env: str) -> Settings:
    return Settings.from_env({"TOOLAUTH_HOME": "/tmp/unused", **env})


def test_a_managed_config_takes_the_app_from_the_settings_environment():
    env = settings(
        TOOLAUTH_GITHUB_CLIENT_ID="managed-id", TOOLAUTH_GITHUB_CLIENT_SECRET="managed-secret"
    )
    app = oauth_app(config(AuthConfigType.MANAGED, client_id="ignored"), env)
    assert app == OAuthApp("managed-id", "managed-secret")


def test_the_toolkit_slug_is_upper_cased_in_the_variable_names():
    env = settings(TOOLAUTH_GOOGLE_MAIL_CLIENT_ID="g-id", TOOLAUTH_GOOGLE_MAIL_CLIENT_SECRET="g-s")
    assert oauth_app(config(AuthConfigType.MANAGED, "google_mail"), env) == OAuthApp("g-id", "g-s")


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"TOOLAUTH_GITHUB_CLIENT_ID": "managed-id"},
        {"TOOLAUTH_GITHUB_CLIENT_SECRET": "managed-secret"},
        {"TOOLAUTH_GITHUB_CLIENT_ID": "", "TOOLAUTH_GITHUB_CLIENT_SECRET": "managed-secret"},
    ],
)
def test_a_managed_config_without_an_app_names_the_variables(env):
    with pytest.raises(ConfigurationError) as info:
        oauth_app(config(AuthConfigType.MANAGED), settings(**env))
    message = str(info.value)
    assert "TOOLAUTH_GITHUB_CLIENT_ID" in message
    assert "TOOLAUTH_GITHUB_CLIENT_SECRET" in message
    assert "managed-secret" not in message


def test_a_custom_config_uses_its_own_credentials_not_the_settings():
    env = settings(TOOLAUTH_GITHUB_CLIENT_ID="managed-id", TOOLAUTH_GITHUB_CLIENT_SECRET="m-s")
    custom = config(AuthConfigType.CUSTOM, client_id="custom-id", client_secret="custom-secret")
    assert oauth_app(custom, env) == OAuthApp("custom-id", "custom-secret")


def test_a_custom_config_without_a_secret_is_a_public_client():
    assert oauth_app(config(AuthConfigType.CUSTOM, client_id="pub"), settings()) == OAuthApp(
        "pub", None
    )
    empty = config(AuthConfigType.CUSTOM, client_id="pub", client_secret="")
    assert oauth_app(empty, settings()).client_secret is None


def test_the_secret_is_not_in_the_repr():
    app = OAuthApp("the-id", "SECRET-SENTINEL")
    assert repr(app) == "OAuthApp(client_id='the-id')"
    assert "SECRET-SENTINEL" not in str(app)
