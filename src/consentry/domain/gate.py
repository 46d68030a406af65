"""The gate: one pure function decides whether a message may go to one recipient now.

``decide(facts, intent, now)`` is used per delivery at the moment of dispatch; its set-based twin
in ``persistence/eligibility.py`` applies the same rules to a whole audience in SQL, and property
tests hold the two to the same answers. ``explain`` walks the same rules and says, for each, what
it checked and why it passed or failed.

Rule order (the order reasons are reported in):
 1. tenant status          TENANT_NOT_ACTIVE (paused tenants still send service messages)
 2. content review         CONTENT_NOT_COMPLIANT
 3. contact point          ADDRESS_MISSING / ADDRESS_INVALID (stops the remaining checks)
 4. suppression            SUPPRESSED_<REASON> (the weightiest covering the category)
 5. registry               DNC_REGISTERED (marketing by SMS or voice)
 6. age                    MINOR (marketing)
 7. consent                NO_CONSENT / CONSENT_PENDING / CONSENT_WITHDRAWN / CONSENT_LAPSED /
                           CONSENT_VOID_REASSIGNED; OUTSIDE_SERVICE_WINDOW for WhatsApp free text
                           (service free text needs only the window; marketing needs both)
 8. timing, only when nothing denies: QUIET_HOURS, FREQUENCY_CAP (defer)
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from consentry.domain.consent import EXPRESS_BASES, ConsentBasis, ConsentStatus
from consentry.domain.model import PHONE_CHANNELS, Category, Channel, TenantStatus
from consentry.domain.rules import RulePack, pack_for, quiet_until
from consentry.domain.suppression import (
    REASON_RANK,
    SuppressionReason,
    SuppressionScope,
    reason_code,
)

WHATSAPP_SERVICE_WINDOW = timedelta(hours=24)


class Verdict(StrEnum):
    ALLOW = "allow"
    DENY = "deny"
    DEFER = "defer"


class Reason(StrEnum):
    TENANT_NOT_ACTIVE = "TENANT_NOT_ACTIVE"
    CONTENT_NOT_COMPLIANT = "CONTENT_NOT_COMPLIANT"
    ADDRESS_MISSING = "ADDRESS_MISSING"
    ADDRESS_INVALID = "ADDRESS_INVALID"
    DNC_REGISTERED = "DNC_REGISTERED"
    MINOR = "MINOR"
    NO_CONSENT = "NO_CONSENT"
    CONSENT_PENDING = "CONSENT_PENDING"
    CONSENT_WITHDRAWN = "CONSENT_WITHDRAWN"
    CONSENT_LAPSED = "CONSENT_LAPSED"
    CONSENT_VOID_REASSIGNED = "CONSENT_VOID_REASSIGNED"
    OUTSIDE_SERVICE_WINDOW = "OUTSIDE_SERVICE_WINDOW"
    QUIET_HOURS = "QUIET_HOURS"
    FREQUENCY_CAP = "FREQUENCY_CAP"


@dataclass(frozen=True, slots=True)
class ConsentFact:
    """A consent state that may authorise the message: on the topic or its umbrella topic."""

    topic_id: uuid.UUID
    point_key: bytes
    status: ConsentStatus
    basis: ConsentBasis
    confirmed: bool
    event_id: uuid.UUID
    seq: int
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SuppressionFact:
    reason: SuppressionReason
    scope: SuppressionScope
    platform: bool = False


@dataclass(frozen=True, slots=True)
class RecipientFacts:
    """Everything the gate needs to know about one recipient on one channel, as committed."""

    contact_id: uuid.UUID
    tenant_status: TenantStatus
    tenant_country: str
    point_key: bytes | None  # blind index of the address for the channel; None if missing
    address_valid: bool = True
    country: str | None = None
    time_zone: str | None = None
    adult_on: date | None = None
    suppressions: tuple[SuppressionFact, ...] = ()  # active ones on this address and channel
    consents: tuple[ConsentFact, ...] = ()
    dnc_listed: bool = False
    last_inbound_at: datetime | None = None
    recent_sends: tuple[datetime, ...] = ()  # marketing sends to this contact, newest first


@dataclass(frozen=True, slots=True)
class FrequencyCap:
    max_messages: int
    period: timedelta

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.period <= timedelta(0):
            raise ValueError("a frequency cap needs at least one message and a positive period")


@dataclass(frozen=True, slots=True)
class Intent:
    """The message about to go: which topic (and its umbrella), category and channel."""

    topic_id: uuid.UUID
    umbrella_topic_id: uuid.UUID
    category: Category
    channel: Channel
    requires_confirmation: bool = False
    whatsapp_free_form: bool = False
    content_compliant: bool = True
    frequency_cap: FrequencyCap | None = None


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...] = ()
    consent_event_id: uuid.UUID | None = None
    defer_until: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


def tenant_blocks(status: TenantStatus, category: Category) -> bool:
    if status is TenantStatus.ACTIVE:
        return False
    return status is not TenantStatus.PAUSED or category is Category.MARKETING


def weightiest_suppression(
    suppressions: tuple[SuppressionFact, ...], category: Category
) -> SuppressionFact | None:
    best: SuppressionFact | None = None
    for s in suppressions:
        covers = s.scope is SuppressionScope.ALL or category is Category.MARKETING
        if covers and (best is None or REASON_RANK[s.reason] < REASON_RANK[best.reason]):
            best = s
    return best


def governing_consent(facts: RecipientFacts, intent: Intent) -> ConsentFact | None:
    """The most recent consent state on the topic or its umbrella for the current address."""
    best: ConsentFact | None = None
    for c in facts.consents:
        if c.point_key != facts.point_key:
            continue
        if c.topic_id not in (intent.topic_id, intent.umbrella_topic_id):
            continue
        if best is None or c.seq > best.seq:
            best = c
    return best


def basis_allowed(basis: ConsentBasis, intent: Intent, pack: RulePack) -> bool:
    """Whether an active consent of this basis authorises this kind of message."""
    if intent.channel is Channel.WHATSAPP:
        # WhatsApp business-initiated messages need an opt-in naming the business.
        return basis in EXPRESS_BASES
    if intent.category is Category.SERVICE:
        return True
    if basis in EXPRESS_BASES:
        return True
    if basis is ConsentBasis.IMPLIED_RELATIONSHIP:
        return pack.implied_allowed(intent.channel)
    if basis is ConsentBasis.SOFT_OPT_IN:
        return pack.soft_opt_in_allowed(intent.channel)
    return False  # a service basis never authorises marketing


def consent_reason(
    consent: ConsentFact | None, intent: Intent, pack: RulePack, now: datetime
) -> str | None:
    if consent is None:
        return Reason.NO_CONSENT
    status = consent.status
    if status is ConsentStatus.ACTIVE:
        if consent.expires_at is not None and consent.expires_at <= now:
            return Reason.CONSENT_LAPSED
        if not basis_allowed(consent.basis, intent, pack):
            return Reason.NO_CONSENT
        if intent.requires_confirmation and not consent.confirmed:
            return Reason.CONSENT_PENDING
        return None
    if status is ConsentStatus.PENDING:
        return Reason.CONSENT_PENDING
    if status is ConsentStatus.WITHDRAWN:
        return Reason.CONSENT_WITHDRAWN
    if status is ConsentStatus.LAPSED:
        return Reason.CONSENT_LAPSED
    return Reason.CONSENT_VOID_REASSIGNED


def service_window_open(last_inbound_at: datetime | None, now: datetime) -> bool:
    return last_inbound_at is not None and now - last_inbound_at < WHATSAPP_SERVICE_WINDOW


def frequency_defer(
    recent: tuple[datetime, ...], cap: FrequencyCap, now: datetime
) -> datetime | None:
    """When the next message fits under the cap, or None if it fits now."""
    in_window = sorted((t for t in recent if now - t < cap.period), reverse=True)
    if len(in_window) < cap.max_messages:
        return None
    # The cap frees up when the max_messages-th most recent send leaves the window.
    return in_window[cap.max_messages - 1] + cap.period


def decide(facts: RecipientFacts, intent: Intent, now: datetime) -> Decision:
    """Allow, deny or defer one message to one recipient at ``now``; no I/O."""
    category = intent.category
    channel = intent.channel
    reasons: list[str] = []
    if facts.tenant_status is not TenantStatus.ACTIVE and tenant_blocks(
        facts.tenant_status, category
    ):
        reasons.append(Reason.TENANT_NOT_ACTIVE)
    if not intent.content_compliant:
        reasons.append(Reason.CONTENT_NOT_COMPLIANT)
    if facts.point_key is None:
        reasons.append(Reason.ADDRESS_MISSING)
        return Decision(Verdict.DENY, tuple(reasons))
    if not facts.address_valid:
        reasons.append(Reason.ADDRESS_INVALID)
        return Decision(Verdict.DENY, tuple(reasons))
    if facts.suppressions:
        hit = weightiest_suppression(facts.suppressions, category)
        if hit is not None:
            reasons.append(reason_code(hit.reason))
    marketing = category is Category.MARKETING
    if marketing and facts.dnc_listed and channel in PHONE_CHANNELS:
        reasons.append(Reason.DNC_REGISTERED)
    if marketing and facts.adult_on is not None and now.date() < facts.adult_on:
        reasons.append(Reason.MINOR)
    pack = pack_for(facts.country, facts.tenant_country)
    event_id: uuid.UUID | None = None
    free_form = intent.whatsapp_free_form and channel is Channel.WHATSAPP
    if free_form and not marketing:
        # A service reply inside the window the person opened needs no opt-in; a withdrawal of
        # service messages on WhatsApp still stops it.
        consent = governing_consent(facts, intent)
        if consent is not None and consent.status is ConsentStatus.WITHDRAWN:
            reasons.append(Reason.CONSENT_WITHDRAWN)
        elif not service_window_open(facts.last_inbound_at, now):
            reasons.append(Reason.OUTSIDE_SERVICE_WINDOW)
    else:
        # Marketing needs consent even as a free-form reply: a withdrawal is never bypassed.
        consent = governing_consent(facts, intent)
        why = consent_reason(consent, intent, pack, now)
        if why is None and free_form and not service_window_open(facts.last_inbound_at, now):
            why = Reason.OUTSIDE_SERVICE_WINDOW
        if why is not None:
            reasons.append(why)
        elif consent is not None:
            event_id = consent.event_id
    if reasons:
        return Decision(Verdict.DENY, tuple(reasons))
    until = quiet_until(pack, channel, category, facts.time_zone, now) if pack.quiet_hours else None
    if until is not None:
        return Decision(Verdict.DEFER, (Reason.QUIET_HOURS,), event_id, until)
    if marketing and intent.frequency_cap is not None and facts.recent_sends:
        until = frequency_defer(facts.recent_sends, intent.frequency_cap, now)
        if until is not None:
            return Decision(Verdict.DEFER, (Reason.FREQUENCY_CAP,), event_id, until)
    return Decision(Verdict.ALLOW, (), event_id)
