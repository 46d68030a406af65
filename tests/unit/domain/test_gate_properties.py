"""Properties of the gate over generated recipients, intents and moments."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.consent import ConsentBasis, ConsentStatus
from consentry.domain.explain import Outcome, explain
from consentry.domain.gate import (
    ConsentFact,
    FrequencyCap,
    Intent,
    Reason,
    RecipientFacts,
    SuppressionFact,
    Verdict,
    decide,
)
from consentry.domain.model import Category, Channel, TenantStatus
from consentry.domain.rules import pack_for
from consentry.domain.suppression import SuppressionReason, SuppressionScope, reason_code

TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000001")
UMBRELLA = uuid.UUID("00000000-0000-7000-8000-000000000002")
OTHER_TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000003")
KEYS = (b"key-current", b"key-previous")

TIMING = frozenset({Reason.QUIET_HOURS, Reason.FREQUENCY_CAP})
KNOWN_REASONS = frozenset(Reason) | {reason_code(r) for r in SuppressionReason}

# The documented rule order; a decision's reasons must follow it.
RULE_RANK: dict[str, int] = {
    Reason.TENANT_NOT_ACTIVE: 1,
    Reason.CONTENT_NOT_COMPLIANT: 2,
    Reason.ADDRESS_MISSING: 3,
    Reason.ADDRESS_INVALID: 3,
    **{reason_code(r): 4 for r in SuppressionReason},
    Reason.DNC_REGISTERED: 5,
    Reason.MINOR: 6,
    Reason.NO_CONSENT: 7,
    Reason.CONSENT_PENDING: 7,
    Reason.CONSENT_WITHDRAWN: 7,
    Reason.CONSENT_LAPSED: 7,
    Reason.CONSENT_VOID_REASSIGNED: 7,
    Reason.OUTSIDE_SERVICE_WINDOW: 7,
    Reason.QUIET_HOURS: 8,
    Reason.FREQUENCY_CAP: 8,
}

COUNTRIES = ("US", "CA", "IN", "DE", "FR", "GB", "AU")
TIME_ZONES = (
    "America/New_York",
    "America/Los_Angeles",
    "Pacific/Honolulu",
    "Asia/Kolkata",
    "Europe/Berlin",
    "UTC",
)

nows = st.datetimes(
    # Hypothesis takes naive bounds; every value drawn is aware (UTC).
    min_value=datetime(2021, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.just(UTC),
)
# Offsets around "now": mostly within days, so windows, caps and expiries are exercised at edges.
offsets = st.one_of(
    st.timedeltas(min_value=timedelta(hours=-72), max_value=timedelta(hours=72)),
    st.timedeltas(min_value=timedelta(days=-800), max_value=timedelta(days=800)),
    st.sampled_from([timedelta(0), timedelta(hours=-24), timedelta(days=-7)]),
)


def mostly(value: object, others: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``value`` about three times in four, so that the later rules are reached often."""
    return st.one_of(st.just(value), st.just(value), st.just(value), others)


# Strategies are built once, here; the composites below only draw from them (building strategies
# inside a composite makes hypothesis validate them on every draw, which is slow).
uuids = st.uuids()
seqs = st.integers(min_value=1, max_value=50)
any_offset = st.none() | offsets
rare_offset = mostly(None, offsets)
sends_ago = st.lists(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=20)), max_size=6
)
any_topic = st.sampled_from([TOPIC, UMBRELLA, OTHER_TOPIC])
own_topic = st.sampled_from([TOPIC, UMBRELLA])
any_key = st.sampled_from(KEYS)
any_status = st.sampled_from(ConsentStatus)
any_basis = st.sampled_from(ConsentBasis)
mostly_express = mostly(ConsentBasis.EXPRESS, any_basis)
mostly_true = mostly(True, st.booleans())
mostly_false = mostly(False, st.booleans())
tenant_statuses = mostly(TenantStatus.ACTIVE, st.sampled_from(TenantStatus))
countries = st.sampled_from(COUNTRIES)
maybe_country = st.none() | countries
maybe_time_zone = st.none() | st.sampled_from(TIME_ZONES)
point_keys = mostly(KEYS[0], st.sampled_from([KEYS[1], None]))
suppression_lists = mostly(
    [],
    st.lists(
        st.builds(
            SuppressionFact,
            reason=st.sampled_from(SuppressionReason),
            scope=st.sampled_from(SuppressionScope),
            platform=st.booleans(),
        ),
        max_size=3,
    ),
)
consent_counts = mostly(1, st.integers(min_value=0, max_value=4))
extra_consents = st.integers(min_value=0, max_value=3)
live_or_any = st.booleans()
frequency_caps = st.builds(
    FrequencyCap,
    max_messages=st.integers(min_value=1, max_value=4),
    period=st.timedeltas(min_value=timedelta(hours=1), max_value=timedelta(days=14)),
)
maybe_cap = st.none() | frequency_caps
channels = st.sampled_from([Channel.EMAIL, Channel.SMS, Channel.VOICE, Channel.WHATSAPP])
categories = st.sampled_from(Category)


def at(now: datetime, offset: timedelta | None) -> datetime | None:
    return None if offset is None else now + offset


def draw_consent(draw: st.DrawFn, now: datetime) -> ConsentFact:
    if draw(live_or_any):
        # An active consent on the topic or its umbrella for the current address.
        return ConsentFact(
            topic_id=draw(own_topic),
            point_key=KEYS[0],
            status=ConsentStatus.ACTIVE,
            basis=draw(mostly_express),
            confirmed=draw(mostly_true),
            event_id=draw(uuids),
            seq=draw(seqs),
            expires_at=at(now, draw(rare_offset)),
        )
    # Any consent state at all: other topics, previous addresses, every status and basis.
    return ConsentFact(
        topic_id=draw(any_topic),
        point_key=draw(any_key),
        status=draw(any_status),
        basis=draw(any_basis),
        confirmed=draw(st.booleans()),
        event_id=draw(uuids),
        seq=draw(seqs),
        expires_at=at(now, draw(any_offset)),
    )


def draw_facts(draw: st.DrawFn, now: datetime) -> RecipientFacts:
    adult_offset = draw(rare_offset)
    return RecipientFacts(
        contact_id=draw(uuids),
        tenant_status=draw(tenant_statuses),
        tenant_country=draw(countries),
        point_key=draw(point_keys),
        address_valid=draw(mostly_true),
        country=draw(maybe_country),
        time_zone=draw(maybe_time_zone),
        adult_on=None if adult_offset is None else (now + adult_offset).date(),
        suppressions=tuple(draw(suppression_lists)),
        consents=tuple(draw_consent(draw, now) for _ in range(draw(consent_counts))),
        dnc_listed=draw(mostly_false),
        last_inbound_at=at(now, draw(any_offset)),
        recent_sends=tuple(now - ago for ago in draw(sends_ago)),
    )


@st.composite
def scenarios(
    draw: st.DrawFn, category: Category | None = None
) -> tuple[RecipientFacts, Intent, datetime]:
    now = draw(nows)
    facts = draw_facts(draw, now)
    intent = Intent(
        topic_id=TOPIC,
        umbrella_topic_id=UMBRELLA,
        category=draw(categories) if category is None else category,
        channel=draw(channels),
        requires_confirmation=draw(st.booleans()),
        whatsapp_free_form=draw(st.booleans()),
        content_compliant=draw(mostly_true),
        frequency_cap=draw(maybe_cap),
    )
    return facts, intent, now


timed_tenant_countries = st.sampled_from(["US", "IN", "GB"])
timed_countries = st.none() | st.sampled_from(["US", "IN"])
timed_channels = st.sampled_from([Channel.SMS, Channel.VOICE, Channel.EMAIL])
timed_sends_ago = st.lists(
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10)), max_size=5
)


@st.composite
def timed_scenarios(draw: st.DrawFn) -> tuple[RecipientFacts, Intent, datetime]:
    """Marketing that nothing denies, where quiet hours and frequency caps decide the timing."""
    now = draw(nows)
    grant = ConsentFact(
        topic_id=TOPIC,
        point_key=KEYS[0],
        status=ConsentStatus.ACTIVE,
        basis=ConsentBasis.EXPRESS,
        confirmed=True,
        event_id=draw(uuids),
        seq=1,
    )
    facts = RecipientFacts(
        contact_id=draw(uuids),
        tenant_status=TenantStatus.ACTIVE,
        tenant_country=draw(timed_tenant_countries),
        point_key=KEYS[0],
        country=draw(timed_countries),
        time_zone=draw(maybe_time_zone),
        consents=(grant,),
        recent_sends=tuple(now - ago for ago in draw(timed_sends_ago)),
    )
    intent = Intent(
        topic_id=TOPIC,
        umbrella_topic_id=UMBRELLA,
        category=Category.MARKETING,
        channel=draw(timed_channels),
        frequency_cap=draw(maybe_cap),
    )
    return facts, intent, now


any_scenarios = st.one_of(scenarios(), timed_scenarios())


def is_free_form(intent: Intent) -> bool:
    return intent.whatsapp_free_form and intent.channel is Channel.WHATSAPP


@settings(max_examples=200, deadline=None)
@given(any_scenarios)
def test_the_verdict_agrees_with_the_reasons(
    scenario: tuple[RecipientFacts, Intent, datetime],
) -> None:
    facts, intent, now = scenario

    decision = decide(facts, intent, now)

    assert set(decision.reasons) <= KNOWN_REASONS
    ranks = [RULE_RANK[r] for r in decision.reasons]
    assert ranks == sorted(ranks)
    assert len(ranks) == len(set(ranks)), "at most one reason per rule"
    is_deny = bool(decision.reasons) and not TIMING & set(decision.reasons)
    assert (decision.verdict is Verdict.DENY) == is_deny
    if decision.verdict is Verdict.DENY:
        assert decision.consent_event_id is None
        assert decision.defer_until is None
    elif decision.verdict is Verdict.DEFER:
        assert decision.reasons in ((Reason.QUIET_HOURS,), (Reason.FREQUENCY_CAP,))
        assert decision.defer_until is not None
        assert decision.defer_until > now
    else:
        assert decision.reasons == ()
        assert decision.defer_until is None
    if decision.verdict is not Verdict.DENY:
        if is_free_form(intent) and intent.category is Category.SERVICE:
            # a service reply inside the window rests on the window, not on a consent
            assert decision.consent_event_id is None
        else:
            assert decision.consent_event_id in {c.event_id for c in facts.consents}
    assert decision.allowed == (decision.verdict is Verdict.ALLOW)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_an_allowed_marketing_message_passed_every_marketing_rule(
    scenario: tuple[RecipientFacts, Intent, datetime],
) -> None:
    facts, intent, now = scenario

    decision = decide(facts, intent, now)

    if decision.verdict is Verdict.DENY or intent.category is not Category.MARKETING:
        return
    assert facts.tenant_status is TenantStatus.ACTIVE
    assert intent.content_compliant
    assert facts.point_key is not None
    assert facts.address_valid
    assert not facts.suppressions
    assert not (facts.dnc_listed and intent.channel in (Channel.SMS, Channel.VOICE))
    assert facts.adult_on is None or facts.adult_on <= now.date()
    if not is_free_form(intent):
        (authorising,) = [c for c in facts.consents if c.event_id == decision.consent_event_id]
        assert authorising.status is ConsentStatus.ACTIVE
        assert authorising.point_key == facts.point_key
        assert authorising.topic_id in (TOPIC, UMBRELLA)
        assert authorising.expires_at is None or authorising.expires_at > now
        assert authorising.basis is not ConsentBasis.SERVICE_NECESSITY
        assert authorising.confirmed or not intent.requires_confirmation


@settings(max_examples=200, deadline=None)
@given(scenarios(category=Category.SERVICE))
def test_service_ignores_marketing_suppressions_registries_and_age(
    scenario: tuple[RecipientFacts, Intent, datetime],
) -> None:
    facts, intent, now = scenario
    stripped = replace(
        facts,
        suppressions=tuple(s for s in facts.suppressions if s.scope is SuppressionScope.ALL),
        dnc_listed=False,
        adult_on=None,
    )

    assert decide(facts, intent, now) == decide(stripped, intent, now)


@settings(max_examples=200, deadline=None)
@given(any_scenarios, st.sampled_from(SuppressionReason), st.booleans())
def test_a_covering_suppression_always_denies(
    scenario: tuple[RecipientFacts, Intent, datetime],
    reason: SuppressionReason,
    marketing_scope: bool,
) -> None:
    facts, intent, now = scenario
    scope = (
        SuppressionScope.MARKETING
        if marketing_scope and intent.category is Category.MARKETING
        else SuppressionScope.ALL
    )
    suppressed = replace(facts, suppressions=(*facts.suppressions, SuppressionFact(reason, scope)))

    before = decide(facts, intent, now)
    after = decide(suppressed, intent, now)

    assert after.verdict is Verdict.DENY
    if facts.point_key is not None and facts.address_valid:
        suppressed_codes = [r for r in after.reasons if r.startswith("SUPPRESSED_")]
        assert len(suppressed_codes) == 1
        # Everything the suppression rule does not touch is reported as before.
        others = [r for r in after.reasons if not r.startswith("SUPPRESSED_")]
        if before.verdict is Verdict.DENY:
            assert others == [r for r in before.reasons if not r.startswith("SUPPRESSED_")]
        else:
            assert others == []
    else:
        assert after == before


@settings(max_examples=200, deadline=None)
@given(any_scenarios)
def test_the_explanation_tells_the_same_story_as_the_decision(
    scenario: tuple[RecipientFacts, Intent, datetime],
) -> None:
    facts, intent, now = scenario

    decision = decide(facts, intent, now)
    explanation = explain(facts, intent, now)

    assert explanation.decision == decision
    assert explanation.pack_code == pack_for(facts.country, facts.tenant_country).code
    failed = [c.reason for c in explanation.checks if c.outcome is Outcome.FAILED]
    deferred = [c.reason for c in explanation.checks if c.outcome is Outcome.DEFERRED]
    if decision.verdict is Verdict.DENY:
        assert failed == list(decision.reasons)
    else:
        assert failed == []
    if decision.verdict is Verdict.DEFER:
        assert deferred[:1] == list(decision.reasons)
    if decision.verdict is Verdict.ALLOW:
        assert deferred == []


@settings(max_examples=200, deadline=None)
@given(timed_scenarios())
def test_a_deferral_names_the_first_moment_its_own_rule_lets_the_message_go(
    scenario: tuple[RecipientFacts, Intent, datetime],
) -> None:
    facts, intent, now = scenario

    decision = decide(facts, intent, now)

    if decision.verdict is not Verdict.DEFER:
        assert decision.verdict is Verdict.ALLOW
        return
    assert decision.defer_until is not None
    at_the_time = decide(facts, intent, decision.defer_until)
    assert at_the_time.reasons != decision.reasons
    just_before = decide(facts, intent, decision.defer_until - timedelta(microseconds=1))
    assert just_before.verdict is Verdict.DEFER
    if decision.reasons == (Reason.QUIET_HOURS,):
        assert just_before.reasons == (Reason.QUIET_HOURS,)
