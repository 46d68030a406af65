"""Policy-notice tokens: round trip, age limit, no other key or kind of token accepted; and the
notice messages themselves."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest

from consentry.domain.delivery import EmailMessage, SmsMessage
from consentry.domain.model import (
    BusinessProfile,
    Channel,
    PolicyDocument,
    PolicyKind,
    PolicyStatus,
    Tenant,
    TenantStatus,
)
from consentry.domain.notices import LINK_LIFETIME, NoticeStatus, PolicyNotice
from consentry.services.compose.notice import (
    _AAD,
    _PAYLOAD,
    NoticeClaims,
    NoticeContent,
    NoticeTokens,
    compose_notice,
    message_ref,
)
from consentry.services.compose.reconfirmation import _AAD as RECONFIRMATION_AAD
from consentry.services.compose.tokens import InvalidToken, SealedCodec

KEY = b"\x07" * 32
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CLAIMS = NoticeClaims(
    tenant_id=uuid.uuid4(),
    notice_id=uuid.uuid4(),
    contact_id=uuid.uuid4(),
    point_key=bytes(range(16)),
    issued_at=NOW,
)


def test_a_token_reads_back_its_claims_for_the_link_lifetime() -> None:
    tokens = NoticeTokens(KEY)
    token = tokens.mint(CLAIMS)
    assert tokens.read(token, NOW) == CLAIMS
    assert tokens.read(token, NOW + LINK_LIFETIME) == CLAIMS
    with pytest.raises(InvalidToken):
        tokens.read(token, NOW + LINK_LIFETIME + timedelta(seconds=1))


def test_no_other_key_kind_or_spelling_is_accepted() -> None:
    token = NoticeTokens(KEY).mint(CLAIMS)
    with pytest.raises(InvalidToken):
        NoticeTokens(b"\x08" * 32).read(token, NOW)
    # A payload of the same size sealed for another purpose (same key, other associated data).
    other = SealedCodec(KEY, RECONFIRMATION_AAD, _PAYLOAD.size, "x").seal(b"\x01" * _PAYLOAD.size)
    with pytest.raises(InvalidToken):
        NoticeTokens(KEY).read(other, NOW)
    unknown_format = SealedCodec(KEY, _AAD, _PAYLOAD.size, "x").seal(b"\x02" * _PAYLOAD.size)
    with pytest.raises(InvalidToken):
        NoticeTokens(KEY).read(unknown_format, NOW)
    for bad in (token[:-1], token + "A", token.replace(token[5], "-" if token[5] != "-" else "_")):
        with pytest.raises(InvalidToken):
            NoticeTokens(KEY).read(bad, NOW)


def test_claims_must_be_aware_and_name_a_blind_index() -> None:
    tokens = NoticeTokens(KEY)
    with pytest.raises(ValueError, match="timezone"):
        tokens.mint(NoticeClaims(CLAIMS.tenant_id, CLAIMS.notice_id, CLAIMS.contact_id,
                                 CLAIMS.point_key, datetime(2026, 6, 1)))  # fmt: skip
    with pytest.raises(ValueError, match="16 bytes"):
        tokens.mint(NoticeClaims(CLAIMS.tenant_id, CLAIMS.notice_id, CLAIMS.contact_id, b"x",
                                 NOW))  # fmt: skip


def _content(channel: Channel) -> NoticeContent:
    tenant = Tenant(
        id=uuid.uuid4(), slug="harbour", name="Harbour Auto", status=TenantStatus.ACTIVE,
        created_at=NOW, profile=BusinessProfile(
            legal_name="Harbour Auto LLC", country="US", postal_address="1 Dock St",
            contact_email="hello@harbour.example",
        ),
    )  # fmt: skip
    document = PolicyDocument(
        id=uuid.uuid4(), tenant_id=tenant.id, kind=PolicyKind.PRIVACY_POLICY, version=3,
        title="Privacy policy", body="We keep little.", locale="en", content_hash="sha256:x",
        status=PolicyStatus.PUBLISHED, created_at=NOW, published_at=NOW,
    )  # fmt: skip
    notice = PolicyNotice(
        id=uuid.uuid4(), tenant_id=tenant.id, document_id=document.id, channel=channel,
        ask_acceptance=True, status=NoticeStatus.SENDING, created_by="test", created_at=NOW,
    )  # fmt: skip
    return NoticeContent(tenant, document, notice, "https://c.example/d/harbour/x",
                         "harbour.example", "+15005550006")  # fmt: skip


def test_the_email_says_who_changed_what_where_to_read_it_and_how_to_accept() -> None:
    content = _content(Channel.EMAIL)
    contact = uuid.uuid4()
    message = compose_notice(content, contact, "ana@example.com", "https://c.example/n/t", NOW)
    assert isinstance(message, EmailMessage)
    mail = message_from_bytes(message.data, policy=default_policy)
    assert mail["Subject"] == "Harbour Auto LLC has changed its Privacy policy"
    assert mail["Reply-To"] == "hello@harbour.example"
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "The new version (version 3, published 2026-06-01) is here:" in text
    assert "https://c.example/d/harbour/x" in text
    assert "https://c.example/n/t" in text
    assert "1 Dock St" in text
    # The same Message-ID on every retry, naming no id in the clear.
    again = compose_notice(content, contact, "ana@example.com", None, NOW)
    assert isinstance(again, EmailMessage)
    expected = f"{message_ref(content.notice.id, contact)}@harbour.example"
    assert message.message_id == again.message_id == expected
    assert str(contact) not in message.message_id
    plain = message_from_bytes(again.data, policy=default_policy).get_body(("plain",))
    assert plain is not None
    assert "/n/" not in plain.get_content()


def test_the_sms_is_short_with_both_links_and_stop() -> None:
    message = compose_notice(_content(Channel.SMS), uuid.uuid4(), "+16175550100",
                             "https://c.example/n/t", NOW)  # fmt: skip
    assert isinstance(message, SmsMessage)
    assert message.body == (
        "Harbour Auto: our Privacy policy has changed. Read it: https://c.example/d/harbour/x "
        "Accept it: https://c.example/n/t Reply STOP to opt out."
    )
