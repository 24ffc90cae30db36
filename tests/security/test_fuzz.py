"""Property tests and fuzzing with Hypothesis.

- Every route of the connect app, with random ids, query strings (unicode, huge values,
  repeated keys), forms, cookies and methods: never a 500, every HTML page carries the
  security headers, every redirect goes to the provider or the link's own callback, and no
  secret of a link appears in any answer.
- The store's row codec and a real SQLite store round-trip any credentials; any change to a
  ciphertext byte is a ``DecryptionError``.
- ``auth_configs.create`` and ``connected_accounts.create`` with random input either return a
  model or raise a ``ValidationError`` / ``ConfigurationError`` — and then store nothing.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import closing
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import anyio
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import SecretStr

from tests.conftest import Connect
from tests.flows.support import APP_CALLBACK, basic_toolkit, bearer_toolkit, query_of
from tests.helpers import hidden_fields
from toolauth import (
    AsyncToolAuth,
    ConfigurationError,
    DecryptionError,
    NotFoundError,
    ValidationError,
)
from toolauth._crypto import Keyring, generate_key
from toolauth._ids import new_id
from toolauth._models import ConnectedAccount, ConnectionStatus, utcnow
from toolauth.catalog import Catalog
from toolauth.connect.steps import CSRF_COOKIE, state_cookie_name
from toolauth.store.base import decode_row, encode_row
from toolauth.store.sqlite import SQLiteStore, sqlite_path


def fast(examples: int) -> settings:
    """Sized to stay fast; no example database on disk; fixtures are per test, on purpose."""
    return settings(
        max_examples=examples, deadline=None, database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )  # fmt: skip


SECURITY_HEADERS = {
    "content-security-policy": "frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}

text = st.text(max_size=40)
huge = st.integers(min_value=1_000, max_value=8_000).map(lambda n: "é" * (n // 2) + "x" * n)
value = st.one_of(text, huge, st.sampled_from(["", " ", "\x00", "%00", "../../etc", "<script>"]))


# -- the connect app ------------------------------------------------------------------------------


class Fixture:
    """Real links in every state, and what a browser that opened them holds."""

    def __init__(self, connect: Connect) -> None:
        self.connect = connect
        self.ids: list[str] = []
        self.states: list[str] = []
        self.cookies: list[tuple[str, str]] = []
        self.secrets: list[str] = []
        self.app = connect.ta.asgi_app()

    async def build(self) -> None:
        ta, provider = self.connect.ta, self.connect.provider
        await ta.toolkits.register(bearer_toolkit())
        await ta.toolkits.register(basic_toolkit())
        oauth = await ta.auth_configs.create("demo")
        configs = [oauth, await ta.auth_configs.create("demo", auth_scheme="API_KEY"),
                   await ta.auth_configs.create("demo_bearer"),
                   await ta.auth_configs.create("demo_basic")]  # fmt: skip
        async with httpx.AsyncClient() as http:
            for n, config in enumerate(configs * 2):
                req = await ta.connected_accounts.link(
                    f"fuzz-{n}", config.id, callback_url=APP_CALLBACK if n % 2 else None
                )
                self.ids.append(req.link_id)
                opened = await http.get(req.redirect_url)
                for name, cookie in opened.cookies.items():
                    self.cookies.append((name, cookie))
                if opened.status_code == 303:
                    self.states.append(query_of(opened.headers["location"])["state"])
        # one completed, one failed, one expired
        done = await ta.connected_accounts.link("fuzz-done", configs[1].id)
        key = provider.issue_api_key("alice")
        async with httpx.AsyncClient() as http:
            form = await http.get(done.redirect_url)
            await http.post(done.redirect_url, data={**hidden_fields(form.text), "api_key": key})
        failed = await ta.connected_accounts.link("fuzz-failed", oauth.id)
        provider.config.deny_all_consent = True
        async with httpx.AsyncClient(follow_redirects=True) as http:
            await http.get(failed.redirect_url)
        provider.config.deny_all_consent = False
        expired = await ta.connected_accounts.link("fuzz-expired", oauth.id, ttl=0.05)
        await anyio.sleep(0.06)
        self.ids += [done.link_id, failed.link_id, expired.link_id]
        store = await ta.store()
        for link_id in self.ids:
            link = await store.get_link(link_id)
            self.secrets += [
                v.get_secret_value() for k, v in link.secrets.items() if k == "code_verifier"
            ]
        self.secrets += [key, self.connect.ta.settings.environ["TOOLAUTH_DEMO_CLIENT_SECRET"]]
        assert len(self.states) >= 2 and len(self.cookies) >= 6


@pytest.fixture
async def fuzz(connect: Connect) -> Fixture:
    built = Fixture(connect)
    await built.build()
    return built


def requests(f: Fixture) -> st.SearchStrategy[dict[str, Any]]:
    ids = st.one_of(
        st.sampled_from(f.ids), text, st.builds(lambda s: "ln_" + s, text), huge,
        st.sampled_from(["ln_", "ca_x", "ln_%2F..", "ln_\x00", "ln_" + "A" * 27]),
    )  # fmt: skip
    path = st.one_of(
        ids.map(lambda i: "/link/" + i),
        st.just("/oauth/callback"),
        ids.map(lambda i: "/api/links/" + i),
        st.sampled_from(["/healthz", "/static/toolauth.css", "/", "/link", "/link/", "/oauth",
                         "/api/links/", "/static/../app.py", "//evil.example/x"]),
        text.map(lambda t: "/" + t),
    )  # fmt: skip
    keys = st.one_of(
        st.sampled_from(["code", "state", "iss", "error", "error_description", "scope",
                         "csrf_token", "api_key", "token", "username", "password"]),
        text,
    )  # fmt: skip
    values = st.one_of(value, st.sampled_from(f.states))
    pairs = st.lists(st.tuples(keys, values), max_size=8)
    cookie_names = st.sampled_from(
        [CSRF_COOKIE, *(state_cookie_name(s) for s in f.states), *(n for n, _ in f.cookies)]
    )
    cookies = st.lists(
        st.one_of(st.sampled_from(f.cookies), st.tuples(cookie_names, st.one_of(text, huge))),
        max_size=4,
    )
    return st.fixed_dictionaries({
        "method": st.one_of(
            st.sampled_from(["GET", "POST", "GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                             "HEAD"]),
            st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ", min_size=1, max_size=10),
        ),
        "path": path, "query": pairs, "form": pairs, "cookies": cookies,
        "content_length": st.one_of(
            st.none(), st.sampled_from(["abc", "-1", "99999999999999999999", "1e3", " 12 ", ""])
        ),
    })  # fmt: skip


async def send(http: httpx.AsyncClient, r: dict[str, Any]) -> httpx.Response:
    headers: dict[str, bytes] = {}
    if r["cookies"]:
        # raw bytes: a hostile client sends whatever it likes, non-ASCII included
        cookie = "; ".join(f"{n}={v}" for n, v in r["cookies"]).encode("utf-8")
        headers["cookie"] = cookie
    body = None
    if r["method"] not in ("GET", "HEAD") and r["form"]:
        body = "&".join(f"{quote(k)}={quote(v)}" for k, v in r["form"]).encode()
        headers["content-type"] = b"application/x-www-form-urlencoded"
        if r["content_length"] is not None:  # a lying or malformed length
            headers["content-length"] = r["content_length"].encode()
    query = list(r["query"])
    while len(str(httpx.QueryParams(query))) > 60_000:  # httpx refuses longer URL parts
        query.pop()
    request = http.build_request(
        r["method"], quote(r["path"], safe="/%"), params=query, content=body, headers=headers
    )
    return await http.send(request)


def check(response: httpx.Response, f: Fixture) -> None:
    assert response.status_code != 500, (response.request.method, response.request.url,
                                         response.text[:500])  # fmt: skip
    assert response.status_code < 600
    if response.headers.get("content-type", "").startswith("text/html"):
        for name, expected in SECURITY_HEADERS.items():
            assert expected in response.headers.get(name, ""), (name, response.headers)
    if response.is_redirect:
        location = response.headers["location"]
        assert location.startswith((f.connect.provider_url + "/oauth/authorize?",
                                    APP_CALLBACK + "?")), location  # fmt: skip
        for name in SECURITY_HEADERS:
            assert name in response.headers, name
    for secret in f.secrets:
        assert secret not in response.text
        assert secret not in str(response.headers)


@pytest.mark.slow
@fast(400)
@given(data=st.data())
async def test_fuzzing_every_route_of_the_connect_app(fuzz: Fixture, data: st.DataObject) -> None:
    request = data.draw(requests(fuzz), label="request")
    transport = httpx.ASGITransport(app=fuzz.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url=fuzz.connect.base_url) as http:
        check(await send(http, request), fuzz)


async def test_hostile_bytes_in_cookies_and_form_tokens_are_refused_not_crashed(
    fuzz: Fixture, connect: Connect
) -> None:
    """Regression for what the fuzzer found: non-ASCII text compared in constant time
    (``hmac.compare_digest`` refuses non-ASCII ``str``), a malformed Content-Length, and a
    form with no Content-Length that never ends."""
    transport = httpx.ASGITransport(app=connect.ta.asgi_app(), raise_app_exceptions=False)
    ta = connect.ta
    config = await ta.auth_configs.create("demo", auth_scheme="API_KEY")
    req = await ta.connected_accounts.link("hostile", config.id)
    oauth = await ta.auth_configs.create("demo")
    oreq = await ta.connected_accounts.link("hostile", oauth.id)
    async with httpx.AsyncClient(transport=transport, base_url=connect.base_url) as http:
        form = await http.get(req.redirect_url)
        token = hidden_fields(form.text)["csrf_token"]
        opened = await http.get(oreq.redirect_url)
        state = query_of(opened.headers["location"])["state"]
        http.cookies.clear()
        cases = [
            ("POST", req.redirect_url, {"cookie": f"{CSRF_COOKIE}={token}".encode()},
             f"csrf_token=%C3%A9{token}&api_key=demo_xxxxxxxxxx".encode()),
            ("POST", req.redirect_url, {"cookie": f"{CSRF_COOKIE}=é{token}".encode()},
             f"csrf_token={token}&api_key=demo_xxxxxxxxxx".encode()),
            ("GET", f"/oauth/callback?code=x&state={state}",
             {"cookie": f"{state_cookie_name(state)}=é{state}".encode()}, None),
            ("POST", req.redirect_url, {"content-length": b"abc",
             "content-type": b"application/x-www-form-urlencoded"}, b"csrf_token=x"),
        ]  # fmt: skip
        for method, url, headers, body in cases:
            request = http.build_request(method, url, content=body, headers=headers)
            response = await http.send(request)
            assert response.status_code in (400, 403, 413), (
                url,
                response.status_code,
                response.text[:300],
            )

        async def endless() -> Any:
            for _ in range(200):
                yield b"a=" + b"x" * 1024 + b"&"

        streamed = await http.post(
            req.redirect_url, content=endless(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )  # fmt: skip
        assert streamed.status_code == 413
    assert not (await ta.connected_accounts.get(req.connected_account_id)).is_active
    assert (await (await ta.store()).get_link(oreq.link_id)).state_hash is not None  # not spent


# -- the store ------------------------------------------------------------------------------------

credential_dicts = st.dictionaries(
    st.text(min_size=1, max_size=30), st.text(max_size=300), max_size=6
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=40)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)  # fmt: skip


def make_account(
    credentials: dict[str, str], data: dict[str, Any], label: str | None
) -> ConnectedAccount:
    now = utcnow()
    return ConnectedAccount(
        id=new_id("ca"), user_id="prop-user", toolkit="openai", auth_config_id="ac_prop",
        status=ConnectionStatus.ACTIVE, data=data, label=label, created_at=now, updated_at=now,
        credentials={k: SecretStr(v) for k, v in credentials.items()},
    )  # fmt: skip


def revealed(account: ConnectedAccount) -> dict[str, str]:
    return {k: v.get_secret_value() for k, v in account.credentials.items()}


RING = Keyring.from_text(f"{generate_key()},{generate_key()}")


@fast(200)
@given(credentials=credential_dicts, data=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
       position=st.integers(min_value=0), mask=st.integers(min_value=1, max_value=255))  # fmt: skip
def test_the_row_codec_round_trips_and_detects_any_changed_byte(
    credentials: dict[str, str], data: dict[str, Any], position: int, mask: int
) -> None:
    account = make_account(credentials, data, None)
    row = encode_row(RING, account)
    back = decode_row(RING, ConnectedAccount, row)
    assert revealed(back) == credentials
    assert back.data == data
    for secret in credentials.values():
        if len(secret) >= 8:
            assert secret.encode() not in row["secret"]
    tampered = bytearray(row["secret"])
    tampered[position % len(tampered)] ^= mask
    with pytest.raises(DecryptionError):
        decode_row(RING, ConnectedAccount, {**row, "secret": bytes(tampered)})
    with pytest.raises(DecryptionError):  # moved to another row
        decode_row(RING, ConnectedAccount, {**row, "id": new_id("ca")})
    with pytest.raises(DecryptionError):  # an unknown key id
        decode_row(RING, ConnectedAccount, {**row, "key_id": "0" * 16})


@pytest.fixture
async def prop_store(tmp_path):
    store = SQLiteStore(f"sqlite:///{tmp_path / 'prop.db'}", RING)
    await store.open()
    async with store._write() as db:
        await db.execute(
            "INSERT INTO auth_configs (id, toolkit, name, type, auth_scheme, scopes, enabled,"
            " key_id, secret, version, created_at, updated_at) VALUES ('ac_prop', 'openai', 'n',"
            " 'use_managed_auth', 'API_KEY', '[]', 1, 'k', x'00', 1, '2020-01-01', '2020-01-01')"
        )
    yield store
    await store.close()


@fast(120)
@given(credentials=credential_dicts, data=st.dictionaries(st.text(max_size=10), json_values, max_size=4),
       label=st.none() | st.text(min_size=1, max_size=50), position=st.integers(min_value=0))  # fmt: skip
async def test_a_real_sqlite_store_round_trips_any_credentials(
    prop_store: SQLiteStore,
    credentials: dict[str, str],
    data: dict[str, Any],
    label: str | None,
    position: int,
) -> None:
    store = prop_store
    account = make_account(credentials, data, label)
    await store.create_account(account)
    back = await store.get_account(account.id)
    assert back is not None
    assert revealed(back) == credentials and back.data == data and back.label == label
    changed = credentials | {"rotated": "new-" + str(position)}
    saved = await store.save_account(back.model_copy(update={
        "credentials": {k: SecretStr(v) for k, v in changed.items()}}))  # fmt: skip
    assert revealed(await store.get_account(account.id)) == changed  # type: ignore[arg-type]
    assert saved.version == 2
    async with store._write() as db:  # flip one byte of the stored ciphertext
        async with db.execute(
            "SELECT secret FROM connected_accounts WHERE id = ?", (account.id,)
        ) as cursor:
            blob = bytearray((await cursor.fetchone())[0])
        blob[position % len(blob)] ^= 0x01
        await db.execute(
            "UPDATE connected_accounts SET secret = ? WHERE id = ?", (bytes(blob), account.id)
        )
    with pytest.raises(DecryptionError, match=account.id):
        await store.get_account(account.id)
    assert await store.delete_account(account.id)
    with closing(sqlite3.connect(store.path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


# -- validation of public input ------------------------------------------------------------------

anything = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), text, huge, st.binary(max_size=10),
    st.lists(text, max_size=3), st.dictionaries(text, text, max_size=3),
    st.datetimes(), st.datetimes(timezones=st.just(timezone.utc)), st.builds(SecretStr, text),
)  # fmt: skip


async def counts(ta: AsyncToolAuth) -> tuple[int, int]:
    path = sqlite_path(ta.settings.database_url)
    with closing(sqlite3.connect(path)) as db:
        configs = db.execute("SELECT COUNT(*) FROM auth_configs").fetchone()[0]
        accounts = db.execute("SELECT COUNT(*) FROM connected_accounts").fetchone()[0]
    return configs, accounts


ALLOWED = (ValidationError, ConfigurationError)


SLUGS = Catalog().slugs()


@fast(250)
@given(
        toolkit=st.one_of(st.sampled_from(SLUGS), text),
        kind=st.one_of(st.sampled_from(["managed", "custom", "use_custom_auth", "MANAGED"]), text),
        name=st.one_of(st.none(), text, huge),
        scheme=st.one_of(st.none(), st.sampled_from(["OAUTH2", "API_KEY", "BASIC", "bearer_token",
                                                     "NO_AUTH"]), text),
        credentials=st.one_of(st.none(), st.dictionaries(
            st.one_of(st.sampled_from(["client_id", "client_secret"]), text), anything, max_size=3)),
        scopes=st.one_of(st.none(), st.lists(st.one_of(text, st.sampled_from(["repo", "a b", "é"])),
                                             max_size=4)),
    )  # fmt: skip
async def test_auth_configs_create_validates_any_input(
    ta: AsyncToolAuth,
    toolkit: str,
    kind: str,
    name: Any,
    scheme: Any,
    credentials: Any,
    scopes: Any,
) -> None:
    before = await counts(ta)
    try:
        config = await ta.auth_configs.create(
            toolkit, type=kind, name=name, auth_scheme=scheme, credentials=credentials,
            scopes=scopes,
        )  # fmt: skip
    except ALLOWED as exc:
        message = exc.message
        assert message
        assert await counts(ta) == before
        return
    assert (await ta.auth_configs.get(config.id)) == config
    assert await counts(ta) == (before[0] + 1, before[1])


@pytest.fixture
async def account_configs(ta: AsyncToolAuth) -> list[Any]:
    await ta.toolkits.register(bearer_toolkit())
    await ta.toolkits.register(basic_toolkit())
    configs = [
        await ta.auth_configs.create("github", type="custom",
                                     credentials={"client_id": "c", "client_secret": "s"}),
        await ta.auth_configs.create("openai"), await ta.auth_configs.create("demo_bearer"),
        await ta.auth_configs.create("demo_basic"), await ta.auth_configs.create("twilio"),
    ]  # fmt: skip
    return configs


names = ["access_token", "refresh_token", "id_token", "token_type", "expires_in", "expires_at",
             "api_key", "token", "username", "password", "account_sid", "auth_token"]  # fmt: skip
numbers = st.one_of(
    st.integers(), st.floats(), st.sampled_from([math.inf, -math.inf, math.nan, 1e308, "60",
                                                 "soon", ""]),
)  # fmt: skip


@fast(300)
@given(
    user_id=st.one_of(text, huge, st.integers()),
    which=st.integers(min_value=0, max_value=4),
    credentials=st.dictionaries(st.one_of(st.sampled_from(names), text),
                                st.one_of(anything, numbers), max_size=5),
    label=st.one_of(st.none(), text, huge),
)  # fmt: skip
async def test_connected_accounts_create_validates_any_input(
    ta: AsyncToolAuth,
    account_configs: list[Any],
    user_id: Any,
    which: int,
    credentials: dict[str, Any],
    label: Any,
) -> None:
    config = account_configs[which]
    before = await counts(ta)
    try:
        account = await ta.connected_accounts.create(
            user_id, config.id, credentials=credentials, label=label
        )
    except ALLOWED as exc:
        message = exc.message
        assert message
        assert await counts(ta) == before
        return
    assert await counts(ta) == (before[0], before[1] + 1)
    stored = await ta.connected_accounts.get(account.id)
    assert revealed(stored) == revealed(account)
    if stored.expires_at is not None:  # usable later: an aware time, comparable with now
        assert stored.expires_at.tzinfo is not None
        ta.tokens.needs_refresh(stored)


@pytest.mark.parametrize(
    "expires",
    [{"expires_in": "soon"}, {"expires_in": math.nan}, {"expires_in": math.inf},
     {"expires_in": 1e300}, {"expires_in": [60]}, {"expires_at": datetime(2030, 1, 1)},
     {"expires_at": "2030-01-01"}],
    ids=["text", "nan", "inf", "huge", "list", "naive-datetime", "string-datetime"],
)  # fmt: skip
async def test_a_bad_expiry_on_import_is_a_validation_error(
    ta: AsyncToolAuth, expires: dict[str, Any]
) -> None:
    config = await ta.auth_configs.create(
        "github", type="custom", credentials={"client_id": "c", "client_secret": "s"}
    )
    before = await counts(ta)
    with pytest.raises(ValidationError) as info:
        await ta.connected_accounts.create(
            "u", config.id, credentials={"access_token": "t" * 20, **expires}
        )
    assert info.value.field in ("expires_in", "expires_at")
    assert await counts(ta) == before
    ok = await ta.connected_accounts.create(
        "u", config.id,
        credentials={"access_token": "t" * 20, "expires_at": utcnow() + timedelta(hours=1)},
    )  # fmt: skip
    assert ok.expires_at is not None


async def test_unknown_ids_are_not_found(ta: AsyncToolAuth) -> None:
    for attempt in (
        ta.connected_accounts.create("u", "ac_" + "x" * 27, credentials={}),
        ta.connected_accounts.get("ca_nope"), ta.auth_configs.get("ac_nope"),
    ):  # fmt: skip
        with pytest.raises(NotFoundError):
            await attempt
