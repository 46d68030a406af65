"""Unsubscribe tokens: round trips, opacity, and refusal of anything not minted by the key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.model import Channel
from consentry.services.compose.tokens import (
    InvalidToken,
    TokenClaims,
    UnsubscribeTokens,
    derive_token_key,
)

KEY = bytes(range(32))
NOW = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
CLAIMS = TokenClaims(
    tenant_id=uuid.UUID("0193a1f2-0000-7000-8000-000000000001"),
    contact_id=uuid.UUID("0193a1f2-0000-7000-8000-000000000002"),
    topic_id=uuid.UUID("0193a1f2-0000-7000-8000-000000000003"),
    channel=Channel.EMAIL,
    point_key=bytes.fromhex("00112233445566778899aabbccddeeff"),
    issued_at=NOW,
)
tokens = UnsubscribeTokens(KEY)


def test_round_trip() -> None:
    token = tokens.mint(CLAIMS)

    assert tokens.read(token, NOW + timedelta(days=1)) == CLAIMS
    assert token.isascii()
    assert "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@given(
    st.uuids(),
    st.uuids(),
    st.uuids(),
    st.sampled_from(list(Channel)),
    st.binary(min_size=16, max_size=16),
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
)
def test_any_claims_round_trip_to_the_second(
    tenant: uuid.UUID,
    contact: uuid.UUID,
    topic: uuid.UUID,
    channel: Channel,
    point_key: bytes,
    issued_at: datetime,
) -> None:
    claims = TokenClaims(tenant, contact, topic, channel, point_key, issued_at)

    read = tokens.read(tokens.mint(claims), issued_at)

    assert read == replace(claims, issued_at=issued_at.replace(microsecond=0))


def test_tokens_reveal_no_id_and_never_repeat() -> None:
    first, second = tokens.mint(CLAIMS), tokens.mint(CLAIMS)
    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))

    assert first != second  # a fresh nonce each time
    for value in (CLAIMS.tenant_id.bytes, CLAIMS.contact_id.bytes, CLAIMS.topic_id.bytes,
                  CLAIMS.point_key):  # fmt: skip
        assert value not in raw
        assert value.hex() not in first


def test_expiry() -> None:
    token = tokens.mint(CLAIMS)

    assert tokens.read(token, NOW + timedelta(days=400)) == CLAIMS
    with pytest.raises(InvalidToken, match="expired") as caught:
        tokens.read(token, NOW + timedelta(days=400, seconds=1))
    assert caught.value.code == "TOKEN_INVALID"

    short = UnsubscribeTokens(KEY, lifetime=timedelta(days=60))
    with pytest.raises(InvalidToken):
        short.read(token, NOW + timedelta(days=61))


def test_lifetime_and_key_are_checked() -> None:
    with pytest.raises(ValueError, match="60 days"):
        UnsubscribeTokens(KEY, lifetime=timedelta(days=59))
    with pytest.raises(ValueError, match="32 bytes"):
        UnsubscribeTokens(KEY[:16])
    with pytest.raises(ValueError, match="point_key"):
        tokens.mint(replace(CLAIMS, point_key=b"short"))
    with pytest.raises(ValueError, match="aware"):
        tokens.mint(replace(CLAIMS, issued_at=datetime(2025, 1, 1)))


def test_another_key_cannot_read_or_forge() -> None:
    other = UnsubscribeTokens(bytes(32))

    with pytest.raises(InvalidToken):
        other.read(tokens.mint(CLAIMS), NOW)
    with pytest.raises(InvalidToken):
        tokens.read(other.mint(CLAIMS), NOW)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],
        lambda t: t[1:],
        lambda t: t + "A",
        lambda t: t[:40] + ("B" if t[40] != "B" else "C") + t[41:],
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
        lambda t: t[:50] + "+" + t[51:],
        lambda t: t[:50] + " " + t[51:],
        lambda t: t + "==",
        lambda t: "",
        lambda t: "é" * len(t),
    ],
)
def test_garbled_or_truncated_tokens_are_invalid(mangle: Callable[[str], str]) -> None:
    token = tokens.mint(CLAIMS)

    with pytest.raises(InvalidToken):
        tokens.read(mangle(token), NOW)


@given(st.text(max_size=200))
def test_arbitrary_strings_are_invalid_tokens(text: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.read(text, NOW)


def test_key_derivation_is_deterministic_and_separates_keys() -> None:
    key = derive_token_key(b"index-key-0123456789abcdef012345")

    assert len(key) == 32
    assert key == derive_token_key(b"index-key-0123456789abcdef012345")
    assert key != derive_token_key(b"index-key-0123456789abcdef012346")
    assert key != b"index-key-0123456789abcdef012345"


def test_key_derivation_is_hkdf_sha256_with_the_documented_info() -> None:
    # RFC 5869 by hand: tokens outlive releases, so the derivation must never drift.
    index_key = b"\x07" * 32
    prk = hmac.digest(b"\x00" * 32, index_key, hashlib.sha256)
    okm = hmac.digest(prk, b"consentry unsubscribe token v1\x01", hashlib.sha256)

    assert derive_token_key(index_key) == okm
