import pytest

from toolauth import ConfigurationError, DecryptionError, Keyring, generate_key


def test_round_trip_and_key_id():
    ring = Keyring.from_text(generate_key())
    kid, blob = ring.encrypt(b"hello", aad=b"row:1")
    assert kid == ring.primary_id
    assert b"hello" not in blob
    assert ring.decrypt(kid, blob, aad=b"row:1") == b"hello"


def test_nonces_differ():
    ring = Keyring.from_text(generate_key())
    assert ring.encrypt(b"x", aad=b"a")[1] != ring.encrypt(b"x", aad=b"a")[1]


def test_associated_data_binds_the_row():
    ring = Keyring.from_text(generate_key())
    kid, blob = ring.encrypt(b"secret", aad=b"connected_accounts:ca_1")
    with pytest.raises(DecryptionError, match="integrity check"):
        ring.decrypt(kid, blob, aad=b"connected_accounts:ca_2")


def test_tampering_is_detected():
    ring = Keyring.from_text(generate_key())
    kid, blob = ring.encrypt(b"secret", aad=b"a")
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(DecryptionError):
        ring.decrypt(kid, tampered, aad=b"a")


def test_first_key_encrypts_all_decrypt():
    old, new = generate_key(), generate_key()
    old_ring = Keyring.from_text(old)
    kid, blob = old_ring.encrypt(b"data", aad=b"a")
    both = Keyring.from_text(f"{new},{old}")
    assert both.primary_id != kid
    assert both.decrypt(kid, blob, aad=b"a") == b"data"
    assert both.encrypt(b"x", aad=b"a")[0] == both.primary_id


def test_unknown_key_id_names_the_fix():
    ring = Keyring.from_text(generate_key())
    with pytest.raises(DecryptionError, match="TOOLAUTH_ENCRYPTION_KEY"):
        ring.decrypt("0000000000000000", b"\0" * 40, aad=b"a")


@pytest.mark.parametrize("bad", ["", "not-base64!!", "c2hvcnQ="])
def test_bad_key_text_is_a_clear_error(bad):
    with pytest.raises(ConfigurationError, match="toolauth keys generate|No encryption key"):
        Keyring.from_text(bad)


def test_repr_shows_ids_only():
    key = generate_key()
    ring = Keyring.from_text(key)
    assert key not in repr(ring)
    assert ring.primary_id in repr(ring)
