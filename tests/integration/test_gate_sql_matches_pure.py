"""The set-based gate (SQL) and the pure gate agree on random populations, on both databases."""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentMethod,
    Evidence,
    Relationship,
)
from consentry.domain.errors import ConsentForMinor
from consentry.domain.gate import decide
from consentry.domain.model import BusinessProfile, Category, Channel, TenantStatus
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.consent import ConsentRequest, record_consent
from consentry.services.contacts import ContactInput, add_contact
from consentry.services.gate import intent_for
from consentry.services.suppressions import add_suppression, list_on_registry
from consentry.services.tenancy import create_tenant, create_topic

_slugs = itertools.count()
BASE = datetime(2026, 6, 1, tzinfo=UTC)

PHONES = [f"+1617555{n:04d}" for n in range(100, 130)] + [
    "+442079460018",  # London fixed line: cannot receive SMS
    "+442079460019",
    "+447911123456",  # UK mobile
    "+919810012345",
]
COUNTRIES = [None, "US", "CA", "DE", "IN", "GB"]
ZONES = [
    None,
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "Europe/Berlin",
    "Pacific/Honolulu",
]

contact_st = st.fixed_dictionaries(
    {
        "email": st.booleans(),
        "phone": st.none() | st.sampled_from(PHONES),
        "whatsapp": st.none() | st.sampled_from(PHONES),
        "country": st.sampled_from(COUNTRIES),
        "time_zone": st.sampled_from(ZONES),
        "dob": st.none() | st.dates(date(1950, 1, 1), date(2021, 12, 31)),
        "inbound_hours_ago": st.none() | st.integers(0, 72),
    }
)
# Weighted towards the combinations intents ask about, so that most examples exercise consent.
EVENT_CHANNELS = [Channel.EMAIL, Channel.EMAIL, Channel.SMS, Channel.SMS, Channel.WHATSAPP]
EVENT_ACTIONS = [ConsentAction.GRANTED] * 4 + list(ConsentAction)
event_st = st.tuples(
    st.integers(0, 7),  # contact index (modulo population)
    st.sampled_from(["service", "promo", "news", "all-marketing", "all-service"]),
    st.sampled_from(EVENT_CHANNELS),
    st.sampled_from(EVENT_ACTIONS),
    st.sampled_from(list(ConsentBasis)),
    st.integers(0, 1200),  # days before BASE
)
suppression_st = st.tuples(
    st.integers(0, 11),
    st.sampled_from(list(Channel)),
    st.sampled_from(list(SuppressionReason)),
    st.sampled_from(list(SuppressionScope)),
    st.booleans(),  # platform-wide
    st.booleans(),  # lifted
)
population_st = st.fixed_dictionaries(
    {
        "status": st.sampled_from(list(TenantStatus)),
        "tenant_country": st.sampled_from(["US", "CA", "DE", "IN", "GB"]),
        "contacts": st.lists(contact_st, min_size=1, max_size=8),
        "events": st.lists(event_st, max_size=40),
        "suppressions": st.lists(suppression_st, max_size=6),
        "dnc": st.lists(st.sampled_from(PHONES), max_size=4),
    }
)
intent_st = st.fixed_dictionaries(
    {
        "topic": st.sampled_from(["service", "promo", "news"]),
        "channel": st.sampled_from(list(Channel)),
        "free_form": st.booleans(),
        "content_ok": st.booleans() | st.just(True),
        "now": st.datetimes(BASE, BASE + timedelta(days=400)).map(lambda d: d.replace(tzinfo=UTC)),
    }
)


def _populate(new_uow: Callable[[], SqlUnitOfWork], pop: dict) -> str:  # type: ignore[type-arg]
    slug = f"t{next(_slugs)}"
    tenant = create_tenant(
        new_uow(),
        slug=slug,
        name=slug,
        now=BASE - timedelta(days=2000),
        profile=BusinessProfile(legal_name=slug, country=pop["tenant_country"]),
    )
    create_topic(new_uow(), slug, key="service", name="Service", category=Category.SERVICE)
    create_topic(new_uow(), slug, key="promo", name="Promo", category=Category.MARKETING)
    create_topic(
        new_uow(),
        slug,
        key="news",
        name="News",
        category=Category.MARKETING,
        requires_double_opt_in=True,
    )
    refs = []
    for i, c in enumerate(pop["contacts"]):
        contact = add_contact(
            new_uow(),
            slug,
            ContactInput(
                email=f"p{i}@{slug}.example" if c["email"] else None,
                phone=c["phone"],
                whatsapp=c["whatsapp"],
                country=c["country"],
                time_zone=c["time_zone"],
                date_of_birth=c["dob"],
            ),
            now=BASE - timedelta(days=1500),
        )
        if c["inbound_hours_ago"] is not None:
            with new_uow() as uow:
                uow.contacts.update(
                    replace(
                        contact,
                        whatsapp_last_inbound_at=BASE
                        + timedelta(days=200, hours=-c["inbound_hours_ago"]),
                    )
                )
                uow.commit()
        refs.append((contact, c))
    n = len(refs)
    for idx, topic, channel, action, basis, days in pop["events"]:
        contact, _ = refs[idx % n]
        if contact.address_for(channel) is None:
            continue
        evidence = Evidence(
            method=ConsentMethod.PAPER,
            actor="clerk",
            note="form",
            relationship=Relationship.PURCHASE if days % 2 else Relationship.INQUIRY,
        )
        with contextlib.suppress(ConsentForMinor):  # refused by the service, as it should be
            record_consent(
                new_uow(),
                slug,
                ConsentRequest(
                    contact=str(contact.id),
                    topic=topic,
                    channel=channel,
                    action=action,
                    basis=basis,
                    evidence=evidence,
                    occurred_at=BASE - timedelta(days=days),
                ),
                now=BASE + timedelta(days=1),
            )
    for idx, channel, reason, scope, platform, lifted in pop["suppressions"]:
        contact, _ = refs[idx % n]
        address = contact.address_for(channel)
        if address is None:
            continue
        created = add_suppression(
            new_uow(),
            None if platform else slug,
            address=address,
            channels=[channel],
            reason=reason,
            scope=scope,
            now=BASE,
        )
        if lifted:
            with new_uow() as uow:
                uow.suppressions.lift(created[0].id, BASE, "test")
                uow.commit()
    if pop["dnc"]:
        list_on_registry(new_uow(), "TEST-DNC", pop["dnc"], None, BASE)
    with new_uow() as uow:
        uow.tenants.set_status(tenant.id, pop["status"].value, BASE)
        uow.commit()
    return slug


WHATSAPP_PERSON = {
    "email": False, "phone": None, "whatsapp": PHONES[0], "country": "US",
    "time_zone": "America/New_York", "dob": None, "inbound_hours_ago": 1,
}  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(pop=population_st, intents=st.lists(intent_st, min_size=1, max_size=4))
# A person who withdrew service messages on WhatsApp, then wrote in: a free-form service reply
# inside the window is still refused, by both.
@example(
    pop={
        "status": TenantStatus.ACTIVE, "tenant_country": "US", "contacts": [WHATSAPP_PERSON],
        "events": [
            (0, "service", Channel.WHATSAPP, ConsentAction.GRANTED,
             ConsentBasis.SERVICE_NECESSITY, 10),
            (0, "service", Channel.WHATSAPP, ConsentAction.WITHDRAWN,
             ConsentBasis.SERVICE_NECESSITY, 5),
        ],
        "suppressions": [], "dnc": [],
    },
    intents=[{"topic": "service", "channel": Channel.WHATSAPP, "free_form": True,
              "content_ok": True, "now": BASE + timedelta(days=200)}],
)  # fmt: skip
def test_sql_twin_agrees_with_pure_gate(
    new_uow: Callable[[], SqlUnitOfWork],
    pop: dict,
    intents: list[dict],  # type: ignore[type-arg]
) -> None:
    slug = _populate(new_uow, pop)
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        contacts = {
            c.id: c
            for c in (
                uow.contacts.get(tenant.id, cid)
                for cid in [
                    row.contact_id
                    for row in uow.gate.eligibility(
                        tenant,
                        intent_for(
                            uow, tenant, uow.topics.by_key(tenant.id, "promo"), Channel.EMAIL
                        ),
                        BASE,
                    )
                ]
            )
        }
        for spec in intents:
            topic = uow.topics.by_key(tenant.id, spec["topic"])
            intent = intent_for(
                uow,
                tenant,
                topic,
                spec["channel"],
                whatsapp_free_form=spec["free_form"],
                content_compliant=spec["content_ok"],
            )
            now = spec["now"]
            sql = {
                row.contact_id: row.decision for row in uow.gate.eligibility(tenant, intent, now)
            }
            assert set(sql) == set(contacts)
            pure = {
                cid: decide(uow.gate.facts(tenant, c, intent, now), intent, now)
                for cid, c in contacts.items()
            }
            for cid in contacts:
                assert sql[cid] == pure[cid], (spec, cid)
            # A dispatch window (some of the contacts) is decided as the whole audience is: its
            # suppressions, registry entries and quiet hours are narrowed to its own addresses.
            ordered = sorted(contacts)
            for window in (ordered[::2], ordered[1::2]):
                windowed = {
                    row.contact_id: row.decision
                    for row in uow.gate.eligibility(tenant, intent, now, window)
                }
                assert windowed == {cid: sql[cid] for cid in window}, spec
            # The window's statement is built once per tenant and intent, then executed at
            # other instants: consents lapse, minors come of age, a service window closes.
            later = now + timedelta(days=400)
            assert {
                row.contact_id: row.decision
                for row in uow.gate.eligibility(tenant, intent, later, ordered)
            } == {
                row.contact_id: row.decision for row in uow.gate.eligibility(tenant, intent, later)
            }
            summary = uow.gate.eligibility_summary(tenant, intent, now)
            expected = Counter(d.reasons[0] if d.reasons else "ALLOW" for d in pure.values())
            # Deferred decisions carry a reason but are not refusals; both sides count them by it.
            assert summary.by_reason == dict(expected)
            assert summary.total == len(contacts)
            assert summary.eligible == expected.get("ALLOW", 0)
