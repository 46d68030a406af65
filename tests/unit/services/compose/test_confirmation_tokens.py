"""Confirmation tokens: round trips, expiry, and nothing accepted that this key did not mint."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.model import Channel
from consentry.services.compose.confirmation import (
    ConfirmationClaims,
    ConfirmationTokens,
    sms_confirmation_text,
    sms_disclosures,
)
from consentry.services.compose.tokens import InvalidToken, TokenClaims, UnsubscribeTokens

KEY = bytes(range(32))
NOW = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)
CLAIMS = ConfirmationClaims(
    tenant_id=uuid.UUID("0193a1f2-0000-7000-8000-000000000001"),
    contact_id=uuid.UUID("0193a1f2-0000-7000-8000-000000000002"),
    topic_id=uuid.UUID("0193a1f2-0000-7000-8000-000000000003"),
    channel=Channel.EMAIL,
    point_key=bytes.fromhex("00112233445566778899aabbccddeeff"),
    request_event_id=uuid.UUID("0193a1f2-0000-7000-8000-000000000004"),
    issued_at=NOW,
)
tokens = ConfirmationTokens(KEY)


def test_round_trip_and_opacity() -> None:
    token = tokens.mint(CLAIMS)
    assert tokens.read(token, NOW + timedelta(days=1)) == CLAIMS
    assert CLAIMS.tenant_id.hex not in token
    assert tokens.mint(CLAIMS) != token  # a fresh nonce every time


def test_it_expires_after_the_lifetime() -> None:
    token = tokens.mint(CLAIMS)
    assert tokens.read(token, NOW + timedelta(days=7)) == CLAIMS
    with pytest.raises(InvalidToken):
        tokens.read(token, NOW + timedelta(days=7, seconds=1))
    short = ConfirmationTokens(KEY, lifetime=timedelta(days=1))
    with pytest.raises(InvalidToken):
        short.read(short.mint(CLAIMS), NOW + timedelta(days=2))


def test_another_key_or_purpose_is_refused() -> None:
    token = tokens.mint(CLAIMS)
    with pytest.raises(InvalidToken):
        ConfirmationTokens(bytes(32)).read(token, NOW)
    # An unsubscribe token under the very same key is not a confirmation token.
    unsubscribe = UnsubscribeTokens(KEY).mint(
        TokenClaims(
            CLAIMS.tenant_id,
            CLAIMS.contact_id,
            CLAIMS.topic_id,
            CLAIMS.channel,
            CLAIMS.point_key,
            NOW,
        )
    )
    with pytest.raises(InvalidToken):
        tokens.read(unsubscribe, NOW)


@given(st.text(max_size=200))
def test_garbage_is_refused(value: str) -> None:
    with pytest.raises(InvalidToken):
        tokens.read(value, NOW)


def test_every_altered_character_is_refused() -> None:
    token = tokens.mint(CLAIMS)
    for i in range(len(token)):
        swapped = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(InvalidToken):
            tokens.read(swapped, NOW)


def test_the_sms_texts_carry_every_disclosure() -> None:
    request = sms_confirmation_text("Harbour Auto", "Offers", "Up to 4 msgs/mo.", "help@h.example")
    after = sms_disclosures("Harbour Auto", "Offers", "Up to 4 msgs/mo.")
    for text in (request, after):
        for part in ("Harbour Auto", "Offers", "Up to 4 msgs/mo.", "Msg&data rates may apply",
                     "HELP", "STOP"):  # fmt: skip
            assert part in text
    assert "reply YES" in request
    assert "help@h.example" in request
