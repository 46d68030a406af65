"""Reconfirmation tokens: round trip, age limit, and no other key or kind of token accepted."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain.model import Channel
from consentry.domain.passes import MAX_PASS_DURATION
from consentry.services.compose.confirmation import ConfirmationClaims, ConfirmationTokens
from consentry.services.compose.reconfirmation import (
    _AAD,
    _PAYLOAD,
    ReconfirmationClaims,
    ReconfirmationTokens,
)
from consentry.services.compose.tokens import InvalidToken, SealedCodec

KEY = b"\x05" * 32
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CLAIMS = ReconfirmationClaims(
    tenant_id=uuid.uuid4(),
    pass_id=uuid.uuid4(),
    contact_id=uuid.uuid4(),
    topic_id=uuid.uuid4(),
    channel=Channel.SMS,
    point_key=bytes(range(16)),
    issued_at=NOW,
)


def test_a_token_reads_back_its_claims_until_the_longest_pass_is_over() -> None:
    tokens = ReconfirmationTokens(KEY)
    token = tokens.mint(CLAIMS)
    assert tokens.read(token, NOW) == CLAIMS
    assert tokens.read(token, NOW + MAX_PASS_DURATION) == CLAIMS
    with pytest.raises(InvalidToken):
        tokens.read(token, NOW + MAX_PASS_DURATION + timedelta(seconds=1))


def test_another_key_or_another_kind_of_token_is_refused() -> None:
    token = ReconfirmationTokens(KEY).mint(CLAIMS)
    with pytest.raises(InvalidToken):
        ReconfirmationTokens(b"\x06" * 32).read(token, NOW)
    # The same key and size sealed as another kind (associated data) is not a reconfirmation.
    other = SealedCodec(KEY, b"consentry confirmation token", _PAYLOAD.size, "x")
    with pytest.raises(InvalidToken):
        ReconfirmationTokens(KEY).read(other.seal(b"\x01" * _PAYLOAD.size), NOW)
    assert _AAD != b"consentry confirmation token"
    confirmation = ConfirmationTokens(KEY).mint(
        ConfirmationClaims(
            CLAIMS.tenant_id, CLAIMS.contact_id, CLAIMS.topic_id, Channel.EMAIL,
            CLAIMS.point_key, uuid.uuid4(), NOW,
        )
    )  # fmt: skip
    with pytest.raises(InvalidToken):
        ReconfirmationTokens(KEY).read(confirmation, NOW)


def test_every_altered_character_is_refused() -> None:
    tokens = ReconfirmationTokens(KEY)
    token = tokens.mint(CLAIMS)
    for i in range(len(token)):
        changed = token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
        with pytest.raises(InvalidToken):
            tokens.read(changed, NOW)
