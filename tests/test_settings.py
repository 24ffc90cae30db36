"""toolauth._settings: Settings from the environment, overrides, ConnectUrls, display_url."""

from pathlib import Path

import pytest
from pydantic import SecretStr

from toolauth import ConfigurationError
from toolauth._settings import DEFAULT_BASE_URL, ConnectUrls, Settings, display_url

NUMBERS = {
    "TOOLAUTH_LINK_TTL": "link_ttl",
    "TOOLAUTH_REFRESH_MARGIN": "refresh_margin",
    "TOOLAUTH_HTTP_TIMEOUT": "http_timeout",
    "TOOLAUTH_API_TIMEOUT": "api_timeout",
    "TOOLAUTH_REFRESH_LEASE": "refresh_lease",
    "TOOLAUTH_WATCH_INTERVAL": "watch_interval",
    "TOOLAUTH_SQLITE_BUSY_TIMEOUT": "sqlite_busy_timeout",
    "TOOLAUTH_ACCOUNT_CACHE": "account_cache",
}


# from_env ----------------------------------------------------------------------------------
def test_defaults_from_an_empty_environment():
    s = Settings.from_env({})
    assert s.home == Path(".toolauth")
    assert s.database_url == f"sqlite:///{Path('.toolauth') / 'toolauth.db'}"
    assert s.encryption_key is None
    assert (s.base_url, s.base_url_explicit) == ("http://127.0.0.1:8765", False)
    assert s.demo_provider_url is None
    assert s.allowed_callback_origins == ()
    assert s.refresh_retry_delays == (0.2, 0.5, 1.0)
    assert {attr: getattr(s, attr) for attr in NUMBERS.values()} == {
        "link_ttl": 600.0,
        "refresh_margin": 60.0,
        "http_timeout": 10.0,
        "api_timeout": 30.0,
        "refresh_lease": 30.0,
        "watch_interval": 0.01,
        "sqlite_busy_timeout": 10.0,
        "account_cache": 1.0,
    }


def test_every_variable_is_read(tmp_path):
    env = {
        "TOOLAUTH_HOME": str(tmp_path),
        "TOOLAUTH_DATABASE_URL": "postgresql://u@db/toolauth",
        "TOOLAUTH_ENCRYPTION_KEY": "KEY-SENTINEL",
        "TOOLAUTH_BASE_URL": "https://connect.example/",
        "TOOLAUTH_DEMO_PROVIDER_URL": "http://demo.example",
        "TOOLAUTH_ALLOWED_CALLBACK_ORIGINS": " https://a.example , ,https://b.example:8443,",
        "TOOLAUTH_REFRESH_RETRY_DELAYS": "0, 1.5 ,,3",
        **{name: str(i + 1.5) for i, name in enumerate(NUMBERS)},
    }
    s = Settings.from_env(env)
    assert s.home == tmp_path
    assert s.database_url == "postgresql://u@db/toolauth"
    assert s.encryption_key == SecretStr("KEY-SENTINEL")
    assert (s.base_url, s.base_url_explicit) == ("https://connect.example", True)
    assert s.demo_provider_url == "http://demo.example"
    assert s.allowed_callback_origins == ("https://a.example", "https://b.example:8443")
    assert s.refresh_retry_delays == (0.0, 1.5, 3.0)
    assert [getattr(s, attr) for attr in NUMBERS.values()] == [i + 1.5 for i in range(len(NUMBERS))]
    assert s.environ == env


def test_the_database_defaults_to_a_file_in_home(tmp_path):
    s = Settings.from_env({"TOOLAUTH_HOME": str(tmp_path)})
    assert s.database_url == f"sqlite:///{tmp_path / 'toolauth.db'}"


def test_empty_variables_mean_the_default():
    env = {name: "" for name in NUMBERS} | {
        "TOOLAUTH_HOME": "",
        "TOOLAUTH_DATABASE_URL": "",
        "TOOLAUTH_ENCRYPTION_KEY": "",
        "TOOLAUTH_BASE_URL": "",
        "TOOLAUTH_DEMO_PROVIDER_URL": "",
        "TOOLAUTH_ALLOWED_CALLBACK_ORIGINS": "",
        "TOOLAUTH_REFRESH_RETRY_DELAYS": "  ",
    }
    assert Settings.from_env(env) == Settings.from_env({})


@pytest.mark.parametrize("name", [*NUMBERS, "TOOLAUTH_REFRESH_RETRY_DELAYS"])
@pytest.mark.parametrize("raw", ["ten", "-1", "inf", "nan", "1e999", "0x10"])
def test_an_invalid_number_names_the_variable(name, raw):
    with pytest.raises(ConfigurationError) as info:
        Settings.from_env({name: raw})
    assert str(info.value) == f"{name}={raw!r} is not a number of seconds."


def test_one_bad_retry_delay_is_enough_to_refuse_the_list():
    with pytest.raises(ConfigurationError, match=r"TOOLAUTH_REFRESH_RETRY_DELAYS='x'"):
        Settings.from_env({"TOOLAUTH_REFRESH_RETRY_DELAYS": "0.2,x,1"})


@pytest.mark.parametrize(
    ("raw", "value"), [("0", 0.0), (" 5 ", 5.0), ("1e3", 1000.0), ("2.5", 2.5)]
)
def test_numbers_are_floats(raw, value):
    assert Settings.from_env({"TOOLAUTH_LINK_TTL": raw}).link_ttl == value


def test_os_environ_is_the_default(monkeypatch):
    monkeypatch.setenv("TOOLAUTH_LINK_TTL", "42")
    assert Settings.from_env().link_ttl == 42.0


# overrides ---------------------------------------------------------------------------------
def test_keyword_overrides_win_over_the_environment_and_none_is_ignored(tmp_path):
    env = {"TOOLAUTH_LINK_TTL": "100", "TOOLAUTH_HOME": "/from/env"}
    s = Settings.from_env(env, link_ttl=5, home=str(tmp_path), http_timeout=None)
    assert s.link_ttl == 5
    assert s.home == tmp_path
    assert s.database_url == f"sqlite:///{tmp_path / 'toolauth.db'}"  # built from the new home
    assert s.http_timeout == 10.0


def test_with_overrides_converts_types():
    s = Settings.from_env({}).with_overrides(
        home="/srv/ta", encryption_key="K", allowed_callback_origins=["https://a"],
        refresh_retry_delays=[1, 2],
    )  # fmt: skip
    assert s.home == Path("/srv/ta")
    assert s.encryption_key == SecretStr("K")
    assert s.allowed_callback_origins == ("https://a",)
    assert s.refresh_retry_delays == (1, 2)


def test_a_base_url_override_is_explicit_and_loses_its_trailing_slash():
    s = Settings.from_env({}).with_overrides(base_url="https://c.example//")
    assert (s.base_url, s.base_url_explicit) == ("https://c.example", True)
    implicit = Settings.from_env({}).with_overrides(base_url="http://x/", base_url_explicit=False)
    assert (implicit.base_url, implicit.base_url_explicit) == ("http://x", False)


def test_with_overrides_returns_a_copy():
    s = Settings.from_env({})
    assert s.with_overrides(link_ttl=1) is not s
    assert s.link_ttl == 600.0
    assert s.with_overrides() == s


def test_an_unknown_override_is_refused():
    with pytest.raises(TypeError):
        Settings.from_env({}).with_overrides(link_tll=5)


# managed OAuth apps ------------------------------------------------------------------------
def test_managed_oauth_app_reads_the_toolkit_variables():
    s = Settings.from_env({"TOOLAUTH_SLACK_CLIENT_ID": "id", "TOOLAUTH_SLACK_CLIENT_SECRET": "sec"})
    assert s.managed_oauth_app("slack") == ("id", SecretStr("sec"))
    with pytest.raises(ConfigurationError, match="TOOLAUTH_GITHUB_CLIENT_ID"):
        s.managed_oauth_app("github")


# repr and display_url ----------------------------------------------------------------------
def test_repr_holds_no_secrets():
    s = Settings.from_env({
        "TOOLAUTH_HOME": "/h", "TOOLAUTH_ENCRYPTION_KEY": "KEY-SENTINEL",
        "TOOLAUTH_DATABASE_URL": "postgresql://app:PW-SENTINEL@db:5432/ta",
        "TOOLAUTH_GITHUB_CLIENT_SECRET": "CS-SENTINEL",
    })  # fmt: skip
    assert repr(s) == (
        "Settings(home='/h', database_url='postgresql://app:***@db:5432/ta', "
        "base_url='http://127.0.0.1:8765', link_ttl=600.0, allowed_callback_origins=[])"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///a/b.db", "sqlite:///a/b.db"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u:pw@h:5432/db", "postgresql://u:***@h:5432/db"),
        ("postgresql://u:p@ss@h/db", "postgresql://u:***@h/db"),  # '@' inside the password
        ("postgresql://u:@h/db", "postgresql://u:***@h/db"),
        ("postgresql://:pw@h/db", "postgresql://:***@h/db"),
        ("postgresql://h/db?user=u&PassWord=pw&ssl", "postgresql://h/db?user=u&PassWord=***&ssl"),
        (
            "postgresql://u:a@h/db?password=b&x=1#frag",
            "postgresql://u:***@h/db?password=***&x=1#frag",
        ),
    ],
)
def test_display_url_masks_passwords(url, shown):
    assert display_url(url) == shown


# ConnectUrls -------------------------------------------------------------------------------
def test_connect_urls_use_the_served_url_when_base_url_is_not_explicit():
    urls = ConnectUrls(Settings.from_env({}))
    assert urls.base_url == DEFAULT_BASE_URL
    urls.serving_at("http://127.0.0.1:54321/")
    assert urls.base_url == "http://127.0.0.1:54321"
    assert urls.link("lk_1") == "http://127.0.0.1:54321/link/lk_1"
    assert urls.redirect_uri == "http://127.0.0.1:54321/oauth/callback"
    assert urls.variables == {
        "base_url": "http://127.0.0.1:54321",
        "demo_provider_url": "http://127.0.0.1:54321/demo",
    }
    urls.serving_at(None)
    assert urls.base_url == DEFAULT_BASE_URL


@pytest.mark.parametrize(
    "settings",
    [
        Settings.from_env({"TOOLAUTH_BASE_URL": "https://connect.example"}),
        Settings.from_env({}, base_url="https://connect.example/"),
    ],
)
def test_an_explicit_base_url_wins_over_the_served_url(settings):
    urls = ConnectUrls(settings)
    urls.serving_at("http://127.0.0.1:54321")
    assert urls.base_url == "https://connect.example"
    assert urls.redirect_uri == "https://connect.example/oauth/callback"
    assert urls.link("lk_2") == "https://connect.example/link/lk_2"


def test_an_explicit_demo_provider_url_is_used_without_its_trailing_slash():
    s = Settings.from_env({"TOOLAUTH_DEMO_PROVIDER_URL": "http://demo.example:9000/"})
    assert ConnectUrls(s).variables == {
        "base_url": DEFAULT_BASE_URL,
        "demo_provider_url": "http://demo.example:9000",
    }
    assert s.url_variables == ConnectUrls(s).variables
