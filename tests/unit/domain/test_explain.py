"""Explanations: which rules were checked, what each found, and the legal source it rests on."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from consentry.domain.consent import ConsentBasis, ConsentStatus
from consentry.domain.explain import Check, Explanation, Outcome, explain
from consentry.domain.gate import (
    ConsentFact,
    FrequencyCap,
    Intent,
    Reason,
    RecipientFacts,
    SuppressionFact,
    Verdict,
)
from consentry.domain.model import Category, Channel, TenantStatus
from consentry.domain.rules import EU, US
from consentry.domain.suppression import SuppressionReason, SuppressionScope

TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000001")
UMBRELLA = uuid.UUID("00000000-0000-7000-8000-000000000002")
EVENT = uuid.UUID("00000000-0000-7000-8000-0000000000e1")
KEY = b"blind-index-current"
NOW = datetime(2025, 6, 11, 20, 0, tzinfo=UTC)  # 16:00 in New York, 10:00 in Honolulu


def grant(**overrides: Any) -> ConsentFact:
    base = ConsentFact(
        topic_id=TOPIC,
        point_key=KEY,
        status=ConsentStatus.ACTIVE,
        basis=ConsentBasis.EXPRESS,
        confirmed=True,
        event_id=EVENT,
        seq=1,
    )
    return replace(base, **overrides)


def facts(**overrides: Any) -> RecipientFacts:
    base = RecipientFacts(
        contact_id=uuid.UUID(int=1),
        tenant_status=TenantStatus.ACTIVE,
        tenant_country="US",
        point_key=KEY,
        time_zone="America/New_York",
        consents=(grant(),),
    )
    return replace(base, **overrides)


def intent(**overrides: Any) -> Intent:
    base = Intent(
        topic_id=TOPIC,
        umbrella_topic_id=UMBRELLA,
        category=Category.MARKETING,
        channel=Channel.SMS,
    )
    return replace(base, **overrides)


def check(explanation: Explanation, rule: str) -> Check:
    (found,) = [c for c in explanation.checks if c.rule == rule]
    return found


def test_marketing_by_sms_walks_every_rule_in_order() -> None:
    cap = FrequencyCap(max_messages=3, period=timedelta(days=7))

    explanation = explain(facts(), intent(frequency_cap=cap), NOW)

    assert explanation.decision.verdict is Verdict.ALLOW
    assert explanation.pack_code == "US"
    assert [c.rule for c in explanation.checks] == [
        "tenant",
        "content",
        "address",
        "suppression",
        "do-not-contact registry",
        "age",
        "consent",
        "quiet hours",
        "frequency cap",
    ]
    assert {c.outcome for c in explanation.checks} == {Outcome.PASSED}
    assert all(c.reason is None for c in explanation.checks)


def test_service_email_skips_the_rules_that_do_not_apply_to_it() -> None:
    explanation = explain(facts(), intent(category=Category.SERVICE, channel=Channel.EMAIL), NOW)

    assert [c.rule for c in explanation.checks] == [
        "tenant",
        "content",
        "address",
        "suppression",
        "consent",
    ]


def test_quiet_hours_are_explained_only_where_a_window_applies() -> None:
    email = explain(facts(), intent(channel=Channel.EMAIL), NOW)
    outside_us = explain(facts(country="GB"), intent(), NOW)

    assert "quiet hours" not in [c.rule for c in email.checks]
    assert "quiet hours" not in [c.rule for c in outside_us.checks]


def test_a_missing_address_ends_the_explanation() -> None:
    explanation = explain(facts(point_key=None), intent(), NOW)

    assert [c.rule for c in explanation.checks] == ["tenant", "content", "address"]
    address = check(explanation, "address")
    assert address.outcome is Outcome.FAILED
    assert address.reason == Reason.ADDRESS_MISSING
    assert "no sms address" in address.detail


def test_an_invalid_address_says_it_cannot_receive_the_channel() -> None:
    explanation = explain(facts(address_valid=False), intent(), NOW)

    address = check(explanation, "address")
    assert address.reason == Reason.ADDRESS_INVALID
    assert "cannot receive sms" in address.detail


def test_marketing_only_suppressions_are_said_not_to_cover_service() -> None:
    suppressions = (
        SuppressionFact(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),
        SuppressionFact(SuppressionReason.COMPLAINT, SuppressionScope.MARKETING),
    )

    explanation = explain(facts(suppressions=suppressions), intent(category=Category.SERVICE), NOW)

    suppression = check(explanation, "suppression")
    assert suppression.outcome is Outcome.PASSED
    assert "2 marketing-only suppression(s)" in suppression.detail


def test_no_suppression_at_all_is_said_plainly() -> None:
    suppression = check(explain(facts(), intent(), NOW), "suppression")

    assert suppression.detail == "no active suppression on this address and channel"


def test_a_platform_wide_suppression_is_named_as_such() -> None:
    blocked = SuppressionFact(SuppressionReason.COMPLAINT, SuppressionScope.ALL, platform=True)

    suppression = check(explain(facts(suppressions=(blocked,)), intent(), NOW), "suppression")

    assert suppression.outcome is Outcome.FAILED
    assert suppression.reason == "SUPPRESSED_COMPLAINT"
    assert suppression.detail.startswith("platform-wide suppression")
    assert "complaint" in suppression.detail


def test_the_age_rule_quotes_the_packs_source() -> None:
    adult_on = NOW.date() + timedelta(days=40)

    explanation = explain(facts(country="DE", adult_on=adult_on), intent(), NOW)

    age = check(explanation, "age")
    assert age.outcome is Outcome.FAILED
    assert age.reason == Reason.MINOR
    assert age.source == EU.age_source
    assert adult_on.isoformat() in age.detail


def test_quiet_hours_say_when_the_message_may_go_and_why() -> None:
    now = datetime(2025, 6, 11, 2, 0, tzinfo=UTC)  # 22:00 in New York

    explanation = explain(facts(), intent(), now)

    quiet = check(explanation, "quiet hours")
    assert explanation.decision.verdict is Verdict.DEFER
    assert quiet.outcome is Outcome.DEFERRED
    assert quiet.reason == Reason.QUIET_HOURS
    assert datetime(2025, 6, 11, 12, 0, tzinfo=UTC).isoformat() in quiet.detail
    assert quiet.source == US.quiet_hours[0].source
    assert "TCPA" in quiet.source


def test_the_consent_check_names_the_umbrella_and_the_event() -> None:
    umbrella = grant(topic_id=UMBRELLA, expires_at=NOW + timedelta(days=3))

    consent = check(explain(facts(consents=(umbrella,)), intent(), NOW), "consent")

    assert consent.outcome is Outcome.PASSED
    assert consent.detail.startswith("umbrella topic consent active")
    assert str(EVENT) in consent.detail
    assert umbrella.expires_at is not None
    assert umbrella.expires_at.isoformat() in consent.detail


def test_an_unlawful_basis_names_the_pack_that_refuses_it() -> None:
    implied = grant(basis=ConsentBasis.IMPLIED_RELATIONSHIP)

    consent = check(explain(facts(consents=(implied,)), intent(), NOW), "consent")

    assert consent.outcome is Outcome.FAILED
    assert consent.reason == Reason.NO_CONSENT
    assert consent.source is not None
    assert US.name in consent.source


def test_a_free_form_whatsapp_reply_outside_the_window_cites_whatsapps_policy() -> None:
    explanation = explain(
        facts(last_inbound_at=NOW - timedelta(days=2)),
        intent(category=Category.SERVICE, channel=Channel.WHATSAPP, whatsapp_free_form=True),
        NOW,
    )

    consent = check(explanation, "consent")
    assert consent.reason == Reason.OUTSIDE_SERVICE_WINDOW
    assert consent.source == "WhatsApp Business Messaging Policy"


def test_a_reached_frequency_cap_says_until_when() -> None:
    cap = FrequencyCap(max_messages=1, period=timedelta(days=1))
    sent = NOW - timedelta(hours=2)

    explanation = explain(facts(recent_sends=(sent,)), intent(frequency_cap=cap), NOW)

    capped = check(explanation, "frequency cap")
    assert capped.outcome is Outcome.DEFERRED
    assert capped.reason == Reason.FREQUENCY_CAP
    assert (sent + timedelta(days=1)).isoformat() in capped.detail
    assert explanation.decision.defer_until == sent + timedelta(days=1)
