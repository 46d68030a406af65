"""Reconfirmation tokens: the links of a permission pass (``/r/{token}``).

A token names the pass, the member (tenant, contact, topic, channel, the blind index of the
address the message went to) and when it was issued, sealed with AES-256-GCM under a key derived
for this purpose only, with associated data of its own: an unsubscribe or confirmation token is
never accepted as a reconfirmation, nor the other way round. Nothing is stored: a token renews
only while its pass runs, before the deadline, and only once (the member records its renewal).

Errors::

    ConsentryError
    └── InvalidInput
        └── InvalidToken   TOKEN_INVALID   forged, truncated, garbled, expired or spent
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from consentry.domain.model import Channel
from consentry.domain.passes import MAX_PASS_DURATION
from consentry.services.compose.tokens import InvalidToken, SealedCodec

RECONFIRMATION_PURPOSE = "reconfirmation token v1"
_FORMAT = 1
# version, tenant, pass, contact, topic, channel, point key, issued at (Unix seconds).
_PAYLOAD = struct.Struct(">B16s16s16s16sB16sQ")
_AAD = b"consentry reconfirmation token"
_CHANNEL_CODES = {Channel.EMAIL: 1, Channel.SMS: 2, Channel.WHATSAPP: 3}
_CHANNELS = {code: channel for channel, code in _CHANNEL_CODES.items()}
NOT_VALID = "the link is not valid or has expired"


@dataclass(frozen=True, slots=True)
class ReconfirmationClaims:
    tenant_id: uuid.UUID
    pass_id: uuid.UUID
    contact_id: uuid.UUID
    topic_id: uuid.UUID
    channel: Channel
    point_key: bytes
    issued_at: datetime  # aware; whole seconds


class ReconfirmationTokens:
    """Mints and reads reconfirmation tokens under one key. A token never outlives the longest
    pass; the pass's own deadline is checked against the database when it is used."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a reconfirmation token key is 32 bytes")
        self._codec = SealedCodec(key, _AAD, _PAYLOAD.size, NOT_VALID)

    def mint(self, claims: ReconfirmationClaims) -> str:
        if claims.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        payload = _PAYLOAD.pack(
            _FORMAT,
            claims.tenant_id.bytes,
            claims.pass_id.bytes,
            claims.contact_id.bytes,
            claims.topic_id.bytes,
            _CHANNEL_CODES[claims.channel],
            claims.point_key,
            int(claims.issued_at.timestamp()),
        )
        return self._codec.seal(payload)

    def read(self, token: str, now: datetime) -> ReconfirmationClaims:
        """The claims of a token this key minted; InvalidToken if not, or if it is too old."""
        payload = self._codec.open(token)
        version, tenant, pass_id, contact, topic, channel, point_key, issued = _PAYLOAD.unpack(
            payload
        )
        if version != _FORMAT or channel not in _CHANNELS:
            raise InvalidToken(NOT_VALID)
        issued_at = datetime.fromtimestamp(issued, UTC)
        if now - issued_at > MAX_PASS_DURATION:
            raise InvalidToken(NOT_VALID)
        return ReconfirmationClaims(
            tenant_id=uuid.UUID(bytes=tenant),
            pass_id=uuid.UUID(bytes=pass_id),
            contact_id=uuid.UUID(bytes=contact),
            topic_id=uuid.UUID(bytes=topic),
            channel=_CHANNELS[channel],
            point_key=point_key,
            issued_at=issued_at,
        )
