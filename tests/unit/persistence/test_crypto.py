from __future__ import annotations

import base64
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.errors import AlreadyExists, InvalidInput, KeyUnavailable
from consentry.domain.model import PointKind
from consentry.persistence.crypto import (
    FileKeyRing,
    create_key_file,
    keyring_from_secrets,
    load_key_file,
    rotate_master_key,
)

TENANT = uuid.UUID("00000000-0000-4000-8000-000000000001")
OTHER_TENANT = uuid.UUID("00000000-0000-4000-8000-000000000002")


def make_ring(index_key: bytes = b"i" * 32) -> FileKeyRing:
    return FileKeyRing({1: b"m" * 32}, 1, index_key)


@pytest.fixture
def ring() -> FileKeyRing:
    return make_ring()


@pytest.fixture
def wrapped(ring: FileKeyRing) -> bytes:
    return ring.new_wrapped_data_key(TENANT)


def test_roundtrip(ring: FileKeyRing, wrapped: bytes) -> None:
    ciphertext = ring.encrypt(TENANT, wrapped, "contacts.email", "alice@example.com")
    assert b"alice" not in ciphertext
    assert ring.decrypt(TENANT, wrapped, "contacts.email", ciphertext) == "alice@example.com"


def test_roundtrip_with_a_fresh_ring_does_not_depend_on_the_cache(
    ring: FileKeyRing, wrapped: bytes
) -> None:
    ciphertext = ring.encrypt(TENANT, wrapped, "contacts.name", "Zoë")
    assert make_ring().decrypt(TENANT, wrapped, "contacts.name", ciphertext) == "Zoë"


def test_ciphertext_differs_each_time(ring: FileKeyRing, wrapped: bytes) -> None:
    first = ring.encrypt(TENANT, wrapped, "contacts.email", "same")
    second = ring.encrypt(TENANT, wrapped, "contacts.email", "same")
    assert first != second


def test_data_keys_are_distinct(ring: FileKeyRing) -> None:
    assert ring.new_wrapped_data_key(TENANT) != ring.new_wrapped_data_key(TENANT)


def test_wrong_purpose_fails(ring: FileKeyRing, wrapped: bytes) -> None:
    ciphertext = ring.encrypt(TENANT, wrapped, "contacts.email", "alice@example.com")
    with pytest.raises(KeyUnavailable):
        ring.decrypt(TENANT, wrapped, "contacts.phone", ciphertext)


def test_wrong_tenant_fails(ring: FileKeyRing, wrapped: bytes) -> None:
    ciphertext = ring.encrypt(TENANT, wrapped, "contacts.email", "alice@example.com")
    with pytest.raises(KeyUnavailable):
        ring.decrypt(OTHER_TENANT, wrapped, "contacts.email", ciphertext)


def test_wrapped_key_of_another_tenant_does_not_unwrap(ring: FileKeyRing, wrapped: bytes) -> None:
    with pytest.raises(KeyUnavailable):
        ring.encrypt(OTHER_TENANT, wrapped, "contacts.email", "x")


@pytest.mark.parametrize("position", [0, 1, 13, -1])
def test_tampered_ciphertext_fails(ring: FileKeyRing, wrapped: bytes, position: int) -> None:
    ciphertext = bytearray(ring.encrypt(TENANT, wrapped, "contacts.email", "alice@example.com"))
    ciphertext[position] ^= 0x01
    with pytest.raises(KeyUnavailable):
        ring.decrypt(TENANT, wrapped, "contacts.email", bytes(ciphertext))


@pytest.mark.parametrize("position", [0, 4, 10, -1])
def test_tampered_wrapped_key_fails(ring: FileKeyRing, wrapped: bytes, position: int) -> None:
    bad = bytearray(wrapped)
    bad[position] ^= 0x01
    with pytest.raises(KeyUnavailable):
        ring.encrypt(TENANT, bytes(bad), "contacts.email", "x")


@pytest.mark.parametrize("ciphertext", [b"", b"\x01", b"\x01" + b"\x00" * 20])
def test_malformed_ciphertext_fails(ring: FileKeyRing, wrapped: bytes, ciphertext: bytes) -> None:
    with pytest.raises(KeyUnavailable):
        ring.decrypt(TENANT, wrapped, "contacts.email", ciphertext)


def test_unknown_master_version_fails(wrapped: bytes) -> None:
    other = FileKeyRing({2: b"m" * 32}, 2, b"i" * 32)
    with pytest.raises(KeyUnavailable):
        other.encrypt(TENANT, wrapped, "contacts.email", "x")


def test_constructor_rejects_bad_keys() -> None:
    with pytest.raises(KeyUnavailable):
        FileKeyRing({1: b"short"}, 1, b"i" * 32)
    with pytest.raises(KeyUnavailable):
        FileKeyRing({1: b"m" * 32}, 2, b"i" * 32)
    with pytest.raises(KeyUnavailable):
        FileKeyRing({1: b"m" * 32}, 1, b"i" * 31)


def test_blind_index_is_deterministic_and_16_bytes(ring: FileKeyRing) -> None:
    first = ring.blind_index(PointKind.EMAIL, "alice@example.com")
    assert first == make_ring().blind_index(PointKind.EMAIL, "alice@example.com")
    assert len(first) == 16


def test_blind_index_differs_by_kind_value_and_key(ring: FileKeyRing) -> None:
    base = ring.blind_index(PointKind.PHONE, "+14155552671")
    assert base != ring.blind_index(PointKind.POSTAL, "+14155552671")
    assert base != ring.blind_index(PointKind.PHONE, "+14155552672")
    assert base != make_ring(index_key=b"j" * 32).blind_index(PointKind.PHONE, "+14155552671")


def test_digest(ring: FileKeyRing) -> None:
    assert ring.digest(None) is None
    value = ring.digest("203.0.113.7")
    assert value == make_ring().digest("203.0.113.7")
    assert value is not None
    assert len(value) == 64
    assert value != ring.digest("203.0.113.8")
    assert value != make_ring(index_key=b"j" * 32).digest("203.0.113.7")


def test_digest_key_is_not_the_blind_index_key(ring: FileKeyRing) -> None:
    # Even over the exact message the blind index authenticates, the two must not coincide.
    index = ring.blind_index(PointKind.EMAIL, "a@example.com")
    digest = ring.digest("email:a@example.com")
    assert digest is not None
    assert not digest.startswith(index.hex())


def test_file_roundtrip_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "keys.json"
    create_key_file(path)
    before = load_key_file(path)
    wrapped = before.new_wrapped_data_key(TENANT)
    ciphertext = before.encrypt(TENANT, wrapped, "contacts.email", "alice@example.com")

    assert rotate_master_key(path) == 2
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    after = load_key_file(path)
    assert after.active_version == 2
    # The old wrapped key still works after rotation ...
    assert after.decrypt(TENANT, wrapped, "contacts.email", ciphertext) == "alice@example.com"
    # ... and re-wrapped under version 2 it still opens the same data.
    rewrapped = after.rewrap(TENANT, wrapped)
    assert rewrapped != wrapped
    assert after.decrypt(TENANT, rewrapped, "contacts.email", ciphertext) == "alice@example.com"
    # The re-wrapped key needs the new master key: the old ring cannot open it.
    with pytest.raises(KeyUnavailable):
        before.decrypt(TENANT, rewrapped, "contacts.email", ciphertext)
    # The index key does not change, so blind indexes stay valid.
    assert after.blind_index(PointKind.EMAIL, "x") == before.blind_index(PointKind.EMAIL, "x")
    assert sorted(json.loads(path.read_text())["master_keys"]) == ["1", "2"]
    assert [p.name for p in path.parent.iterdir()] == ["keys.json"]


def test_key_file_is_private_and_well_formed(tmp_path: Path) -> None:
    path = tmp_path / "data" / "keys.json"
    create_key_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    document = json.loads(path.read_text())
    assert document["format"] == 1
    assert document["active"] == 1
    assert len(base64.b64decode(document["master_keys"]["1"])) == 32
    assert len(base64.b64decode(document["index_key"])) == 32


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key_file(path)
    original = path.read_bytes()
    with pytest.raises(AlreadyExists):
        create_key_file(path)
    assert path.read_bytes() == original


def test_fresh_key_files_have_fresh_keys(tmp_path: Path) -> None:
    create_key_file(tmp_path / "a.json")
    create_key_file(tmp_path / "b.json")
    a = load_key_file(tmp_path / "a.json")
    b = load_key_file(tmp_path / "b.json")
    assert a.blind_index(PointKind.EMAIL, "x") != b.blind_index(PointKind.EMAIL, "x")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_load_refuses_a_group_or_world_readable_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    create_key_file(path)
    path.chmod(0o644)
    with pytest.raises(KeyUnavailable, match="chmod 600"):
        load_key_file(path)
    with pytest.raises(KeyUnavailable):
        rotate_master_key(path)


def test_load_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyUnavailable, match="not found"):
        load_key_file(tmp_path / "absent.json")


@pytest.mark.parametrize(
    "content",
    [
        "not json",
        "[]",
        '{"format": 2, "active": 1, "master_keys": {}, "index_key": ""}',
        '{"format": 1, "active": 1, "master_keys": {"1": "!!!"}, "index_key": "AAAA"}',
        '{"format": 1, "active": 2, "master_keys": {"1": "%s"}, "index_key": "%s"}',
        '{"format": 1, "active": 1, "master_keys": {"1": "%s"}, "index_key": "AAAA"}',
    ],
)
def test_load_malformed_file(tmp_path: Path, content: str) -> None:
    key = base64.b64encode(b"k" * 32).decode()
    path = tmp_path / "keys.json"
    path.write_text(content.replace("%s", key))
    path.chmod(0o600)
    with pytest.raises(KeyUnavailable):
        load_key_file(path)


def test_keyring_from_secrets() -> None:
    master = base64.b64encode(b"m" * 32).decode()
    index = base64.b64encode(b"i" * 32).decode()
    from_settings = keyring_from_secrets(master, index)
    wrapped = from_settings.new_wrapped_data_key(TENANT)
    ciphertext = from_settings.encrypt(TENANT, wrapped, "p", "v")
    assert make_ring().decrypt(TENANT, wrapped, "p", ciphertext) == "v"


@pytest.mark.parametrize(
    ("master", "index"),
    [
        ("not base64!", base64.b64encode(b"i" * 32).decode()),
        (base64.b64encode(b"m" * 16).decode(), base64.b64encode(b"i" * 32).decode()),
        (base64.b64encode(b"m" * 32).decode(), ""),
    ],
)
def test_keyring_from_secrets_validates(master: str, index: str) -> None:
    with pytest.raises(KeyUnavailable):
        keyring_from_secrets(master, index)


@given(text=st.text(), purpose=st.text(min_size=1, max_size=40))
def test_roundtrip_any_text(text: str, purpose: str) -> None:
    ring = make_ring()
    wrapped = ring.new_wrapped_data_key(TENANT)
    assert (
        ring.decrypt(TENANT, wrapped, purpose, ring.encrypt(TENANT, wrapped, purpose, text)) == text
    )


def test_unencodable_text_is_invalid_input(ring: FileKeyRing, wrapped: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        ring.encrypt(TENANT, wrapped, "contacts.name", "bad \ud800 text")
    assert caught.value.field == "contacts.name"


def test_derived_keys_are_hkdf_of_the_index_key_per_purpose_and_kept() -> None:
    ring = make_ring(b"k" * 32)
    expected = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"consentry unsubscribe"
    ).derive(b"k" * 32)
    assert ring.derive("unsubscribe") == expected
    assert ring.derive("unsubscribe") == expected  # kept, and the same
    assert ring.derive("confirmation") != expected
    assert make_ring(b"j" * 32).derive("unsubscribe") != expected
