"""Explanations: every rule the gate checks for one recipient, what it found and its source.

The verdict always comes from ``decide``; this module only narrates the same helpers so that the
explanation can never disagree with the decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from consentry.domain.consent import ConsentStatus
from consentry.domain.gate import (
    Decision,
    Intent,
    Reason,
    RecipientFacts,
    consent_reason,
    decide,
    frequency_defer,
    governing_consent,
    service_window_open,
    tenant_blocks,
    weightiest_suppression,
)
from consentry.domain.model import PHONE_CHANNELS, Category, Channel
from consentry.domain.rules import pack_for, quiet_until
from consentry.domain.suppression import reason_code


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    DEFERRED = "deferred"
    NOT_APPLICABLE = "n/a"


@dataclass(frozen=True, slots=True)
class Check:
    rule: str
    outcome: Outcome
    detail: str
    reason: str | None = None
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Explanation:
    decision: Decision
    pack_code: str
    checks: tuple[Check, ...]


def _suppression_check(facts: RecipientFacts, intent: Intent) -> Check:
    hit = weightiest_suppression(facts.suppressions, intent.category)
    if hit is None:
        ignored = len(facts.suppressions)
        detail = "no active suppression on this address and channel"
        if ignored:
            detail = f"{ignored} marketing-only suppression(s) do not cover service messages"
        return Check("suppression", Outcome.PASSED, detail)
    where = "platform-wide" if hit.platform else "tenant"
    return Check(
        "suppression",
        Outcome.FAILED,
        f"{where} suppression, reason {hit.reason.value}, scope {hit.scope.value}",
        reason_code(hit.reason),
    )


def _consent_check(facts: RecipientFacts, intent: Intent, now: datetime) -> Check:
    pack = pack_for(facts.country, facts.tenant_country)
    free_form = intent.whatsapp_free_form and intent.channel is Channel.WHATSAPP
    window_open = service_window_open(facts.last_inbound_at, now)
    if free_form and intent.category is Category.SERVICE:
        withdrawn = governing_consent(facts, intent)
        if withdrawn is not None and withdrawn.status is ConsentStatus.WITHDRAWN:
            return Check(
                "consent",
                Outcome.FAILED,
                "the person withdrew service messages on WhatsApp: not even a reply inside "
                "the 24-hour window may go",
                Reason.CONSENT_WITHDRAWN,
            )
        if window_open:
            return Check(
                "consent",
                Outcome.PASSED,
                "free-form reply inside the 24-hour window the person opened",
            )
        return Check(
            "consent",
            Outcome.FAILED,
            "free-form WhatsApp text needs a message from the person in the last 24 hours",
            Reason.OUTSIDE_SERVICE_WINDOW,
            "WhatsApp Business Messaging Policy",
        )
    consent = governing_consent(facts, intent)
    why = consent_reason(consent, intent, pack, now)
    if why is None and free_form and not window_open:
        return Check(
            "consent",
            Outcome.FAILED,
            "consent is active, but free-form WhatsApp text needs a message from the "
            "person in the last 24 hours",
            Reason.OUTSIDE_SERVICE_WINDOW,
            "WhatsApp Business Messaging Policy",
        )
    if consent is None:
        return Check(
            "consent",
            Outcome.FAILED,
            "no consent on this topic (or its umbrella) for this address and channel",
            why,
        )
    scope = "topic" if consent.topic_id == intent.topic_id else "umbrella topic"
    detail = (
        f"{scope} consent {consent.status.value}, basis {consent.basis.value}, "
        f"{'confirmed' if consent.confirmed else 'unconfirmed'}, event {consent.event_id}"
    )
    if consent.expires_at is not None:
        detail += f", expires {consent.expires_at.isoformat()}"
    source = None
    if why is Reason.NO_CONSENT and consent.basis.value in ("implied_relationship", "soft_opt_in"):
        source = f"basis not lawful for this message under the {pack.name} pack"
    return Check("consent", Outcome.FAILED if why else Outcome.PASSED, detail, why, source)


def explain(facts: RecipientFacts, intent: Intent, now: datetime) -> Explanation:
    decision = decide(facts, intent, now)
    pack = pack_for(facts.country, facts.tenant_country)
    marketing = intent.category is Category.MARKETING
    checks: list[Check] = []
    blocked = tenant_blocks(facts.tenant_status, intent.category)
    checks.append(
        Check(
            "tenant",
            Outcome.FAILED if blocked else Outcome.PASSED,
            f"tenant is {facts.tenant_status.value}",
            Reason.TENANT_NOT_ACTIVE if blocked else None,
        )
    )
    checks.append(
        Check(
            "content",
            Outcome.PASSED if intent.content_compliant else Outcome.FAILED,
            "content review " + ("passed" if intent.content_compliant else "failed"),
            None if intent.content_compliant else Reason.CONTENT_NOT_COMPLIANT,
        )
    )
    if facts.point_key is None or not facts.address_valid:
        missing = facts.point_key is None
        checks.append(
            Check(
                "address",
                Outcome.FAILED,
                f"no {intent.channel.value} address"
                if missing
                else f"address cannot receive {intent.channel.value}",
                Reason.ADDRESS_MISSING if missing else Reason.ADDRESS_INVALID,
            )
        )
        return Explanation(decision, pack.code, tuple(checks))
    checks.append(Check("address", Outcome.PASSED, f"{intent.channel.value} address on file"))
    checks.append(_suppression_check(facts, intent))
    if marketing and intent.channel in PHONE_CHANNELS:
        checks.append(
            Check(
                "do-not-contact registry",
                Outcome.FAILED if facts.dnc_listed else Outcome.PASSED,
                "number is on a registry" if facts.dnc_listed else "not listed",
                Reason.DNC_REGISTERED if facts.dnc_listed else None,
            )
        )
    if marketing:
        minor = facts.adult_on is not None and now.date() < facts.adult_on
        detail = (
            "age unknown or attested"
            if facts.adult_on is None
            else (f"adult from {facts.adult_on.isoformat()}")
        )
        checks.append(
            Check(
                "age",
                Outcome.FAILED if minor else Outcome.PASSED,
                detail,
                Reason.MINOR if minor else None,
                pack.age_source,
            )
        )
    checks.append(_consent_check(facts, intent, now))
    windows = [
        w
        for w in pack.quiet_hours
        if intent.channel in w.channels and intent.category in w.categories
    ]
    if windows:
        until = quiet_until(pack, intent.channel, intent.category, facts.time_zone, now)
        checks.append(
            Check(
                "quiet hours",
                Outcome.DEFERRED if until else Outcome.PASSED,
                f"may go from {until.isoformat()}" if until else "outside quiet hours",
                Reason.QUIET_HOURS if until else None,
                "; ".join(w.source for w in windows),
            )
        )
    if marketing and intent.frequency_cap is not None:
        capped = frequency_defer(facts.recent_sends, intent.frequency_cap, now)
        checks.append(
            Check(
                "frequency cap",
                Outcome.DEFERRED if capped else Outcome.PASSED,
                f"cap of {intent.frequency_cap.max_messages} reached until {capped.isoformat()}"
                if capped
                else "under the cap",
                Reason.FREQUENCY_CAP if capped else None,
            )
        )
    return Explanation(decision, pack.code, tuple(checks))
