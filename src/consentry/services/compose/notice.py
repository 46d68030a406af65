"""Policy-change notices as messages, and the tokens of their acceptance links (``/n/{token}``).

A token names the notice and its recipient (tenant, notice, contact, the blind index of the
address the notice went to) and when it was issued, sealed with AES-256-GCM under a key derived
for this purpose only, with associated data of its own: an unsubscribe, confirmation or
reconfirmation token is never accepted here, nor the other way round. Nothing is stored: a token
accepts only while the recipient has not accepted yet (the recipient row records it) and for
``LINK_LIFETIME`` after it was issued.

Errors::

    ConsentryError
    └── InvalidInput
        └── InvalidToken   TOKEN_INVALID   forged, truncated, garbled, expired or spent
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from consentry.domain.delivery import EmailMessage, OutboundMessage, SmsMessage
from consentry.domain.model import Channel, PolicyDocument, Tenant
from consentry.domain.notices import LINK_LIFETIME, PolicyNotice, email_text, sms_text, subject
from consentry.services.compose.mime import plain_text_email
from consentry.services.compose.tokens import InvalidToken, SealedCodec

NOTICE_PURPOSE = "policy notice token v1"
NOT_A_DELIVERY = 0  # a notice belongs to no campaign or send
_FORMAT = 1
# version, tenant, notice, contact, point key, issued at (Unix seconds).
_PAYLOAD = struct.Struct(">B16s16s16s16sQ")
_AAD = b"consentry policy notice token"
NOT_VALID = "the link is not valid or has expired"


@dataclass(frozen=True, slots=True)
class NoticeClaims:
    tenant_id: uuid.UUID
    notice_id: uuid.UUID
    contact_id: uuid.UUID
    point_key: bytes  # the address the notice went to
    issued_at: datetime  # aware; whole seconds


class NoticeTokens:
    """Mints and reads acceptance tokens under one key; they expire after ``LINK_LIFETIME``."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise ValueError("a notice token key is 32 bytes")
        self._codec = SealedCodec(key, _AAD, _PAYLOAD.size, NOT_VALID)

    def mint(self, claims: NoticeClaims) -> str:
        if claims.issued_at.tzinfo is None:
            raise ValueError("issued_at must be timezone-aware")
        if len(claims.point_key) != 16:
            raise ValueError("point_key is 16 bytes")
        payload = _PAYLOAD.pack(
            _FORMAT,
            claims.tenant_id.bytes,
            claims.notice_id.bytes,
            claims.contact_id.bytes,
            claims.point_key,
            int(claims.issued_at.timestamp()),
        )
        return self._codec.seal(payload)

    def read(self, token: str, now: datetime) -> NoticeClaims:
        """The claims of a token this key minted; InvalidToken if not, or if it is too old."""
        payload = self._codec.open(token)
        version, tenant, notice, contact, point_key, issued = _PAYLOAD.unpack(payload)
        if version != _FORMAT:
            raise InvalidToken(NOT_VALID)
        issued_at = datetime.fromtimestamp(issued, UTC)
        if now - issued_at > LINK_LIFETIME or issued_at - now > LINK_LIFETIME:
            raise InvalidToken(NOT_VALID)
        return NoticeClaims(
            tenant_id=uuid.UUID(bytes=tenant),
            notice_id=uuid.UUID(bytes=notice),
            contact_id=uuid.UUID(bytes=contact),
            point_key=point_key,
            issued_at=issued_at,
        )


def message_ref(notice_id: uuid.UUID, contact_id: uuid.UUID) -> str:
    """The local part of the notice's Message-ID and the SMS idempotency key: the same on every
    retry, so a re-sent notice is recognised as the same message. Names no id in the clear."""
    digest = hashlib.sha256(notice_id.bytes + contact_id.bytes).hexdigest()[:32]
    return f"notice.{digest}"


@dataclass(frozen=True, slots=True)
class NoticeContent:
    """What one notice says and where its links point."""

    tenant: Tenant
    document: PolicyDocument
    notice: PolicyNotice
    document_url: str  # the new version's public page
    sender_domain: str
    sms_sender: str

    @property
    def business(self) -> str:
        return self.tenant.profile.legal_name or self.tenant.name


def compose_notice(
    content: NoticeContent,
    contact_id: uuid.UUID,
    address: str,
    accept_url: str | None,
    now: datetime,
) -> OutboundMessage:
    """The notice to one recipient, by the notice's channel."""
    ref = message_ref(content.notice.id, contact_id)
    tenant, document = content.tenant, content.document
    if content.notice.channel is Channel.SMS:
        text = sms_text(tenant.name, document, content.document_url, accept_url)
        return SmsMessage(NOT_A_DELIVERY, tenant.id, address, content.sms_sender, text, ref)
    domain = content.sender_domain
    message_id = f"{ref}@{domain}"
    body = email_text(content.business, document, content.document_url, accept_url)
    if tenant.profile.postal_address:
        body += f"\n{content.business}, {tenant.profile.postal_address}\n"
    data = plain_text_email(
        tenant.name,
        f"{tenant.slug}@{domain}",
        address,
        subject(content.business, document),
        body,
        now,
        message_id,
        reply_to=tenant.profile.contact_email or None,
    )
    return EmailMessage(
        delivery_id=NOT_A_DELIVERY,
        tenant_id=tenant.id,
        mail_from=f"bounces@{domain}",
        rcpt_to=address,
        data=data,
        message_id=message_id,
    )
