"""Unsubscribe tokens: opaque, unforgeable, and readable only by consentry.

A token names who opts out of what (tenant, contact, topic, channel and the blind index of the
address it was sent to) and when it was issued. The claims are packed into 74 bytes and sealed
with AES-256-GCM under a key derived from the platform's index key, so a token reveals no id,
cannot be altered or made up, and carries its own expiry. Links must keep working long after
the message was sent (CAN-SPAM requires 30 days; people unsubscribe from old mail), hence a
lifetime of at least 60 days and 400 by default.

Errors::

    ConsentryError
    └── InvalidInput
        └── InvalidToken   TOKEN_INVALID   forged, truncated, garbled or expired
"""

from __future__ import annotations

import base64
import os
import re
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from consentry.domain.errors import InvalidInput
from consentry.domain.model import Channel

DEFAULT_LIFETIME = timedelta(days=400)
MIN_LIFETIME = timedelta(days=60)
POINT_KEY_BYTES = 16
_FORMAT = 1
# version, tenant, contact, topic, channel, point key, issued at (Unix seconds).
_PAYLOAD = struct.Struct(">B16s16s16sB16sQ")
_NONCE_BYTES = 12
_AAD = b"consentry unsubscribe token"
_ALPHABET = re.compile(r"[A-Za-z0-9_-]+")
# Stable wire codes: never renumber, only add.
_CHANNEL_CODES = {
    Channel.EMAIL: 1,
    Channel.SMS: 2,
    Channel.WHATSAPP: 3,
    Channel.VOICE: 4,
    Channel.POST: 5,
}
_CHANNELS = {code: channel for channel, code in _CHANNEL_CODES.items()}


class InvalidToken(InvalidInput):
    code = "TOKEN_INVALID"


@dataclass(frozen=True, slots=True)
class TokenClaims:
    tenant_id: uuid.UUID
    contact_id: uuid.UUID
    topic_id: uuid.UUID
    channel: Channel
    point_key: bytes  # blind index of the address the message went to
    issued_at: datetime  # aware; tokens keep whole seconds


def derive_token_key(index_key: bytes) -> bytes:
    """The 32-byte token key, derived from the index key with HKDF-SHA256 so the two keys are
    independent and rotating the index key rotates tokens too."""
    hkdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"consentry unsubscribe token v1"
    )
    return hkdf.derive(index_key)


class SealedCodec:
    """AES-256-GCM sealing of a fixed-size payload into a URL-safe token (base64url, no
    padding), and its strict opening: one spelling per token, InvalidToken for anything else.
    The associated data names the token's kind, so one kind cannot pass for another."""

    def __init__(self, key: bytes, aad: bytes, payload_size: int, not_valid: str) -> None:
        if len(key) != 32:
            raise ValueError("a token key is 32 bytes")
        self._aead = AESGCM(key)
        self._aad = aad
        self._not_valid = not_valid
        token_bytes = _NONCE_BYTES + payload_size + 16  # nonce, ciphertext, GCM tag
        self._length = -(-token_bytes * 4 // 3)  # unpadded base64 length

    def seal(self, payload: bytes) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, payload, self._aad)
        return base64.urlsafe_b64encode(sealed).rstrip(b"=").decode("ascii")

    def open(self, token: str) -> bytes:
        # Strict: the standard decoder skips characters outside the alphabet, which would let
        # many spellings of one token through.
        if len(token) != self._length or not _ALPHABET.fullmatch(token):
            raise InvalidToken(self._not_valid)
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != token:
            raise InvalidToken(self._not_valid)  # non-canonical trailing bits
        try:
            return self._aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], self._aad)
        except InvalidTag:
            raise InvalidToken(self._not_valid) from None


class UnsubscribeTokens:
    """Mints and reads unsubscribe tokens under one key."""

    def __init__(self, key: bytes, *, lifetime: timedelta = DEFAULT_LIFETIME) -> None:
        if len(key) != 32:
            raise ValueError("an unsubscribe token key is 32 bytes")
        if lifetime < MIN_LIFETIME:
            raise ValueError(f"unsubscribe links must live at least {MIN_LIFETIME.days} days")
        self._codec = SealedCodec(key, _AAD, _PAYLOAD.size, "the link is not valid")
        self._lifetime = lifetime

    def mint(self, claims: TokenClaims) -> str:
        """A URL-safe token (base64url, no padding) sealing ``claims``."""
        if len(claims.point_key) != POINT_KEY_BYTES:
            raise ValueError(f"point_key is {POINT_KEY_BYTES} bytes")
        if claims.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        payload = _PAYLOAD.pack(
            _FORMAT,
            claims.tenant_id.bytes,
            claims.contact_id.bytes,
            claims.topic_id.bytes,
            _CHANNEL_CODES[claims.channel],
            claims.point_key,
            int(claims.issued_at.timestamp()),
        )
        return self._codec.seal(payload)

    def read(self, token: str, now: datetime) -> TokenClaims:
        """The claims of a token this key minted; InvalidToken if it is not one or has expired."""
        payload = self._codec.open(token)
        version, tenant, contact, topic, channel, point_key, issued = _PAYLOAD.unpack(payload)
        if version != _FORMAT or channel not in _CHANNELS:
            raise InvalidToken("the link is not valid")
        issued_at = datetime.fromtimestamp(issued, UTC)
        if now - issued_at > self._lifetime:
            raise InvalidToken("the link has expired")
        return TokenClaims(
            tenant_id=uuid.UUID(bytes=tenant),
            contact_id=uuid.UUID(bytes=contact),
            topic_id=uuid.UUID(bytes=topic),
            channel=_CHANNELS[channel],
            point_key=point_key,
            issued_at=issued_at,
        )
