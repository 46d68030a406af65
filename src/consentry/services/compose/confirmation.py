"""Confirmation tokens and messages for confirmed (double) opt-in.

A token names the pending request it confirms (tenant, contact, topic, channel, the blind index
of the address, and the id of the ``requested`` ledger event) and when it was issued, sealed with
AES-256-GCM under a key of its own (derived for this purpose only, so an unsubscribe token can
never be replayed as a confirmation or the other way round). Nothing is stored: a token is single
use because confirming moves the consent out of ``pending``, after which the token confirms
nothing, and a new request (a new event id) makes older tokens useless.

Errors::

    ConsentryError
    └── InvalidInput
        └── InvalidToken   TOKEN_INVALID   forged, truncated, garbled or expired
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from consentry.domain.model import Channel
from consentry.services.compose.tokens import InvalidToken, SealedCodec

CONFIRMATION_PURPOSE = "confirmation token v1"
DEFAULT_CONFIRMATION_LIFETIME = timedelta(days=7)
_FORMAT = 1
# version, tenant, contact, topic, channel, point key, requested event, issued at (Unix seconds).
_PAYLOAD = struct.Struct(">B16s16s16sB16s16sQ")
_AAD = b"consentry confirmation token"
_CHANNEL_CODES = {Channel.EMAIL: 1, Channel.SMS: 2, Channel.WHATSAPP: 3}
_CHANNELS = {code: channel for channel, code in _CHANNEL_CODES.items()}
NOT_VALID = "the link is not valid or has expired"


@dataclass(frozen=True, slots=True)
class ConfirmationClaims:
    tenant_id: uuid.UUID
    contact_id: uuid.UUID
    topic_id: uuid.UUID
    channel: Channel
    point_key: bytes
    request_event_id: uuid.UUID  # the ``requested`` event this token confirms
    issued_at: datetime  # aware; whole seconds


class ConfirmationTokens:
    """Mints and reads confirmation tokens under one key; they expire after ``lifetime``."""

    def __init__(self, key: bytes, *, lifetime: timedelta = DEFAULT_CONFIRMATION_LIFETIME) -> None:
        if len(key) != 32:
            raise ValueError("a confirmation token key is 32 bytes")
        if lifetime <= timedelta(0):
            raise ValueError("a confirmation token lifetime is positive")
        self._codec = SealedCodec(key, _AAD, _PAYLOAD.size, NOT_VALID)
        self.lifetime = lifetime

    def mint(self, claims: ConfirmationClaims) -> str:
        if claims.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        payload = _PAYLOAD.pack(
            _FORMAT,
            claims.tenant_id.bytes,
            claims.contact_id.bytes,
            claims.topic_id.bytes,
            _CHANNEL_CODES[claims.channel],
            claims.point_key,
            claims.request_event_id.bytes,
            int(claims.issued_at.timestamp()),
        )
        return self._codec.seal(payload)

    def read(self, token: str, now: datetime) -> ConfirmationClaims:
        """The claims of a token this key minted; InvalidToken if not, or if it has expired."""
        payload = self._codec.open(token)
        version, tenant, contact, topic, channel, point_key, event, issued = _PAYLOAD.unpack(
            payload
        )
        if version != _FORMAT or channel not in _CHANNELS:
            raise InvalidToken(NOT_VALID)
        issued_at = datetime.fromtimestamp(issued, UTC)
        if now - issued_at > self.lifetime:
            raise InvalidToken(NOT_VALID)
        return ConfirmationClaims(
            tenant_id=uuid.UUID(bytes=tenant),
            contact_id=uuid.UUID(bytes=contact),
            topic_id=uuid.UUID(bytes=topic),
            channel=_CHANNELS[channel],
            point_key=point_key,
            request_event_id=uuid.UUID(bytes=event),
            issued_at=issued_at,
        )


def sms_confirmation_text(brand: str, program: str, frequency: str, help_contact: str) -> str:
    """The double opt-in request (CTIA Messaging Principles: brand, program, frequency, rates,
    how to stop and get help)."""
    help_line = f"Reply HELP for help{f' ({help_contact})' if help_contact else ''}"
    return (
        f"{brand}: reply YES to receive {program} texts. {frequency} "
        f"Msg&data rates may apply. {help_line}, STOP to cancel."
    )


def sms_disclosures(brand: str, program: str, frequency: str) -> str:
    """The same disclosures, for the first message after confirmation."""
    return (
        f"{brand} {program}: {frequency} Msg&data rates may apply. "
        "Reply HELP for help, STOP to cancel."
    )
