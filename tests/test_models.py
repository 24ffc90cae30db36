import re

import pytest
from pydantic import SecretStr

from toolauth import AuthConfigType, AuthScheme, ConnectedAccount, ConnectionStatus, ValidationError
from toolauth._ids import new_id
from toolauth._models import utcnow


def test_ids_have_prefix_and_at_least_128_random_bits():
    ids = {new_id("ca") for _ in range(1000)}
    assert len(ids) == 1000
    for id_ in ids:
        assert re.fullmatch(r"ca_[A-Za-z0-9_-]{27}", id_)  # 27 base64 chars = 160 bits


def test_unknown_prefix_refused():
    with pytest.raises(ValueError, match="prefix"):
        new_id("xx")


def _account() -> ConnectedAccount:
    now = utcnow()
    return ConnectedAccount(
        id="ca_1", user_id="u", toolkit="github", auth_config_id="ac_1",
        status=ConnectionStatus.ACTIVE, created_at=now, updated_at=now,
        credentials={"access_token": SecretStr("TOKEN-SENTINEL")},
    )  # fmt: skip


def test_secrets_never_in_repr_or_json():
    account = _account()
    for text in (repr(account), str(account), account.model_dump_json(), str(account.model_dump())):
        assert "TOKEN-SENTINEL" not in text
    assert account.credentials["access_token"].get_secret_value() == "TOKEN-SENTINEL"


def test_enum_parse_is_forgiving_about_case_and_names_allowed_values():
    assert ConnectionStatus.parse("active", field="status") is ConnectionStatus.ACTIVE
    assert AuthConfigType.parse("custom", field="type") is AuthConfigType.CUSTOM
    assert AuthConfigType.parse("use_managed_auth", field="type") is AuthConfigType.MANAGED
    with pytest.raises(ValidationError) as info:
        AuthScheme.parse("OAUTH1", field="auth_scheme")
    assert info.value.field == "auth_scheme"
    assert "'OAUTH2'" in str(info.value) and "'API_KEY'" in str(info.value)


def test_enums_print_as_values():
    assert str(ConnectionStatus.ACTIVE) == "ACTIVE"
    assert ConnectionStatus.ACTIVE == "ACTIVE"
