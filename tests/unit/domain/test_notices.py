"""Policy notices in the domain: who a new version concerns, the version a consent was given on,
why a notice may not go, and the report."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    Evidence,
)
from consentry.domain.gate import SuppressionFact
from consentry.domain.model import Channel, PolicyDocument, PolicyKind, PolicyStatus, TenantStatus
from consentry.domain.notices import (
    NoticeChannelInvalid,
    NoticeNotNeeded,
    RecipientStatus,
    check_notice,
    consent_channel,
    is_affected,
    notice_refusal,
    report_of,
    seen_document,
)
from consentry.domain.suppression import SuppressionReason, SuppressionScope

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TENANT = uuid.uuid4()


def doc(kind: PolicyKind = PolicyKind.CONSENT_DISCLOSURE, version: int = 2,
        locale: str = "en") -> PolicyDocument:  # fmt: skip
    return PolicyDocument(
        id=uuid.uuid4(), tenant_id=TENANT, kind=kind, version=version, title="T", body="B",
        locale=locale, content_hash="sha256:x", status=PolicyStatus.PUBLISHED, created_at=NOW,
        published_at=NOW,
    )  # fmt: skip


def event(seq: int, action: ConsentAction, document: uuid.UUID | None,
          point: bytes = b"a" * 16) -> ConsentEvent:  # fmt: skip
    return ConsentEvent(
        id=uuid.uuid4(), tenant_id=TENANT, contact_id=uuid.UUID(int=1), point_key=point,
        topic_id=uuid.UUID(int=2), channel=Channel.EMAIL, action=action,
        basis=ConsentBasis.EXPRESS,
        evidence=Evidence(method=ConsentMethod.WEB_FORM, policy_document_id=document),
        occurred_at=NOW, recorded_at=NOW, seq=seq,
    )  # fmt: skip


# --- who a new version concerns --------------------------------------------------------------


def test_a_disclosure_concerns_consents_given_on_older_words_of_its_kind_and_language() -> None:
    new = doc(version=3)
    assert is_affected(new, doc(version=1))
    assert is_affected(new, doc(version=2))
    assert not is_affected(new, doc(version=3))  # the same words
    assert not is_affected(new, doc(version=4))  # newer words already
    assert not is_affected(new, doc(PolicyKind.WHATSAPP_OPT_IN, version=1))
    assert not is_affected(new, doc(version=1, locale="fr"))
    assert not is_affected(new, None)  # no written words cited (paper, verbal)


@pytest.mark.parametrize("kind", [PolicyKind.PRIVACY_POLICY, PolicyKind.ANTI_SPAM_POLICY])
def test_a_privacy_or_anti_spam_policy_concerns_every_active_consent(kind: PolicyKind) -> None:
    assert is_affected(doc(kind), None)
    assert is_affected(doc(kind), doc(version=9))


def test_a_whatsapp_opt_in_is_about_whatsapp_consent_whatever_the_notice_goes_by() -> None:
    assert consent_channel(PolicyKind.WHATSAPP_OPT_IN, Channel.SMS) is Channel.WHATSAPP
    assert consent_channel(PolicyKind.CONSENT_DISCLOSURE, Channel.SMS) is Channel.SMS
    assert consent_channel(PolicyKind.PRIVACY_POLICY, Channel.EMAIL) is Channel.EMAIL


# --- the version a consent was given on ------------------------------------------------------


def test_a_grant_was_given_on_the_version_it_cites() -> None:
    v1 = uuid.uuid4()
    granted = event(1, ConsentAction.GRANTED, v1)
    assert seen_document([granted], granted.id) == v1


def test_a_confirmation_was_given_on_the_version_its_request_cited() -> None:
    v1, v2 = uuid.uuid4(), uuid.uuid4()
    old = event(1, ConsentAction.REQUESTED, v1)
    request = event(2, ConsentAction.REQUESTED, v2)
    other_address = event(3, ConsentAction.REQUESTED, uuid.uuid4(), point=b"b" * 16)
    confirmed = event(4, ConsentAction.CONFIRMED, None)
    events = [confirmed, other_address, request, old]
    assert seen_document(events, confirmed.id) == v2
    assert seen_document([confirmed], confirmed.id) is None
    assert seen_document(events, uuid.uuid4()) is None


# --- whether a notice may be sent, and to whom -----------------------------------------------


def test_only_a_later_version_by_email_or_sms_is_notified() -> None:
    check_notice(doc(version=2), Channel.EMAIL)
    check_notice(doc(version=2), Channel.SMS)
    with pytest.raises(NoticeNotNeeded):
        check_notice(doc(version=1), Channel.EMAIL)
    for channel in (Channel.WHATSAPP, Channel.VOICE, Channel.POST):
        with pytest.raises(NoticeChannelInvalid):
            check_notice(doc(version=2), channel)


def fact(
    reason: SuppressionReason, scope: SuppressionScope = SuppressionScope.ALL
) -> SuppressionFact:
    return SuppressionFact(reason, scope)


def test_a_notice_is_a_service_message_a_marketing_opt_out_does_not_stop() -> None:
    unsubscribed = (fact(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),)
    assert notice_refusal(TenantStatus.ACTIVE, unsubscribed, address_present=True) is None
    assert notice_refusal(TenantStatus.PAUSED, (), address_present=True) is None


@pytest.mark.parametrize(
    ("reason", "code"),
    [
        (SuppressionReason.HARD_BOUNCE, "SUPPRESSED_HARD_BOUNCE"),
        (SuppressionReason.COMPLAINT, "SUPPRESSED_COMPLAINT"),
        (SuppressionReason.ERASED, "SUPPRESSED_ERASED"),
        (SuppressionReason.BLOCKED, "SUPPRESSED_BLOCKED"),
        (SuppressionReason.UNSUBSCRIBED, "SUPPRESSED_UNSUBSCRIBED"),  # STOP: every message
    ],
)
def test_an_all_scope_suppression_stops_a_notice(reason: SuppressionReason, code: str) -> None:
    assert notice_refusal(TenantStatus.ACTIVE, (fact(reason),), address_present=True) == code


def test_the_weightiest_reason_is_named_and_the_tenant_comes_first() -> None:
    both = (fact(SuppressionReason.HARD_BOUNCE), fact(SuppressionReason.ERASED))
    assert notice_refusal(TenantStatus.ACTIVE, both, address_present=False) == "SUPPRESSED_ERASED"
    for status in (TenantStatus.SUSPENDED, TenantStatus.TERMINATED):
        assert notice_refusal(status, both, address_present=True) == "TENANT_NOT_ACTIVE"
    assert notice_refusal(TenantStatus.ACTIVE, (), address_present=False) == "ADDRESS_MISSING"


def test_the_report_counts_each_recipient_once() -> None:
    report = report_of(
        [
            (RecipientStatus.QUEUED, None, 2),
            (RecipientStatus.SENDING, None, 1),
            (RecipientStatus.QUEUED, "DELIVERY_DEFERRED", 1),  # waiting for a retry
            (RecipientStatus.SENT, None, 5),
            (RecipientStatus.ACCEPTED, None, 3),
            (RecipientStatus.REFUSED, "SUPPRESSED_HARD_BOUNCE", 2),
            (RecipientStatus.REFUSED, "TENANT_NOT_ACTIVE", 1),
            (RecipientStatus.FAILED, "21211", 1),
        ]
    )
    assert (report.targeted, report.waiting, report.sent, report.accepted) == (16, 4, 8, 3)
    assert report.refused == {"SUPPRESSED_HARD_BOUNCE": 2, "TENANT_NOT_ACTIVE": 1}
    assert report.failed == {"21211": 1}
