"""The demo: a car-repair shop with topics, contacts and consents, and who may get what."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, Evidence
from consentry.domain.errors import TenantNotFound
from consentry.domain.gate import Decision, decide
from consentry.domain.model import BusinessProfile, Category, Channel, PolicyKind
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.services.clock import utcnow
from consentry.services.consent import ConsentRequest, record_consent
from consentry.services.contacts import ContactInput, add_contact, resolve_contact
from consentry.services.gate import intent_for
from consentry.services.ports import UnitOfWork
from consentry.services.suppressions import add_suppression, list_on_registry
from consentry.services.tenancy import create_tenant, create_topic, draft_policy, publish_policy

DEMO_SLUG = "harbour-auto"
DEMO_TOPICS = ("appointment-reminders", "promotions", "newsletter")
DEMO_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP)

_DISCLOSURE = (
    "Yes, Harbour Street Auto Repair may send me offers and news about car care by the channels "
    "I ticked. Up to 4 messages a month. Msg & data rates may apply. Reply STOP to opt out of "
    "texts, HELP for help; every email has an unsubscribe link. "
    "Privacy: harbourauto.example/privacy"
)

# (name, email, phone, whatsapp, date of birth)
_PEOPLE: tuple[tuple[str, str | None, str | None, str | None, date | None], ...] = (
    ("Alice Moreno", "alice@example.com", "+1 617 555 0134", "+1 617 555 0134", date(1986, 4, 2)),
    ("Bob Tran", "bob@example.com", "+1 617 555 0178", None, None),
    ("Carla Diaz", "carla@example.com", "+1 617 555 0199", None, date(2012, 9, 14)),
    ("Dev Patel", "dev@example.com", "+1 617 555 0111", None, None),
    ("Erin Walsh", "erin@bounced.example", None, None, None),
    ("Frank Osei", None, "+1 617 555 0162", "+1 617 555 0162", None),
)


@dataclass(frozen=True, slots=True)
class DemoCell:
    contact: str
    topic: str
    channel: Channel
    decision: Decision


def seed_demo(new_uow: Callable[[], UnitOfWork], now: datetime | None = None) -> bool:
    """Create the demo tenant and its people; False (and no change) if it already exists."""
    now = now or utcnow()
    with new_uow() as uow:
        try:
            uow.tenants.by_slug(DEMO_SLUG)
        except TenantNotFound:
            pass
        else:
            return False
    create_tenant(
        new_uow(),
        slug=DEMO_SLUG,
        name="Harbour Street Auto Repair",
        now=now,
        profile=BusinessProfile(
            legal_name="Harbour Street Auto Repair LLC",
            country="US",
            description="A car-repair shop",
            contact_email="service@harbourauto.example",
            contact_phone="+16175550100",
            postal_address="12 Harbour St, Boston, MA 02110",
            website="https://harbourauto.example",
        ),
    )
    create_topic(
        new_uow(),
        DEMO_SLUG,
        key="appointment-reminders",
        name="Appointment reminders",
        category=Category.SERVICE,
        now=now,
    )
    create_topic(
        new_uow(),
        DEMO_SLUG,
        key="promotions",
        name="Promotions",
        category=Category.MARKETING,
        now=now,
    )
    create_topic(
        new_uow(),
        DEMO_SLUG,
        key="newsletter",
        name="Car-care newsletter",
        category=Category.MARKETING,
        requires_double_opt_in=True,
        now=now,
    )
    disclosure = draft_policy(
        new_uow(),
        DEMO_SLUG,
        kind=PolicyKind.CONSENT_DISCLOSURE,
        title="Marketing consent",
        body=_DISCLOSURE,
        now=now,
    )
    publish_policy(new_uow(), DEMO_SLUG, disclosure.id, now)
    for name, email, phone, whatsapp, dob in _PEOPLE:
        add_contact(
            new_uow(),
            DEMO_SLUG,
            ContactInput(
                name=name,
                email=email,
                phone=phone,
                whatsapp=whatsapp,
                country="US",
                time_zone="America/New_York",
                date_of_birth=dob,
                locale="en-US",
            ),
            now,
        )

    form = Evidence(
        method=ConsentMethod.WEB_FORM,
        source="https://harbourauto.example/signup",
        ip_address="203.0.113.24",
        user_agent="Mozilla/5.0 (demo)",
        policy_document_id=disclosure.id,
    )
    desk = Evidence(method=ConsentMethod.PAPER, actor="front-desk", note="work order form")
    earlier = now - timedelta(days=30)

    def grant(
        contact: str,
        topic: str,
        channel: Channel,
        basis: ConsentBasis,
        evidence: Evidence,
        *,
        action: ConsentAction = ConsentAction.GRANTED,
        when: datetime = earlier,
    ) -> None:
        record_consent(
            new_uow(),
            DEMO_SLUG,
            ConsentRequest(
                contact=contact,
                topic=topic,
                channel=channel,
                action=action,
                basis=basis,
                evidence=evidence,
                occurred_at=when,
            ),
            now,
        )

    service = ConsentBasis.SERVICE_NECESSITY
    for contact, channels in (
        ("alice@example.com", (Channel.EMAIL, Channel.SMS)),
        ("bob@example.com", (Channel.EMAIL,)),
        ("carla@example.com", (Channel.EMAIL, Channel.SMS)),
        ("dev@example.com", (Channel.SMS,)),
        ("erin@bounced.example", (Channel.EMAIL,)),
        ("+16175550162", (Channel.SMS,)),
    ):
        for channel in channels:
            grant(contact, "all-service", channel, service, desk)
    express = ConsentBasis.EXPRESS
    grant("alice@example.com", "promotions", Channel.EMAIL, express, form)
    grant("alice@example.com", "promotions", Channel.SMS, express, form)
    grant(
        "alice@example.com",
        "newsletter",
        Channel.EMAIL,
        ConsentBasis.DOUBLE_OPT_IN,
        form,
        action=ConsentAction.REQUESTED,
    )
    grant("bob@example.com", "all-marketing", Channel.EMAIL, express, form)
    grant(
        "bob@example.com",
        "promotions",
        Channel.EMAIL,
        express,
        Evidence(
            method=ConsentMethod.WEB_FORM,
            source="https://harbourauto.example/unsubscribe",
            ip_address="198.51.100.7",
            user_agent="Mozilla/5.0 (demo)",
        ),
        action=ConsentAction.WITHDRAWN,
        when=now - timedelta(days=2),
    )
    grant(
        "dev@example.com",
        "promotions",
        Channel.SMS,
        express,
        Evidence(method=ConsentMethod.KEYWORD, inbound_message_id="SMdemo0001"),
    )
    grant("+16175550162", "promotions", Channel.WHATSAPP, express, form)
    add_suppression(
        new_uow(),
        DEMO_SLUG,
        address="erin@bounced.example",
        channels=[Channel.EMAIL],
        reason=SuppressionReason.HARD_BOUNCE,
        scope=SuppressionScope.ALL,
        source="550 5.1.1 user unknown",
        now=now,
    )
    list_on_registry(new_uow(), "US-DNC", ["+1 617 555 0111"], "US", now)
    return True


def demo_matrix(uow: UnitOfWork, now: datetime | None = None) -> list[DemoCell]:
    """The gate's answer for every demo contact, topic and channel."""
    now = now or utcnow()
    cells: list[DemoCell] = []
    with uow:
        tenant = uow.tenants.by_slug(DEMO_SLUG)
        topics = [uow.topics.by_key(tenant.id, key) for key in DEMO_TOPICS]
        for name, email, phone, _, _ in _PEOPLE:
            contact = resolve_contact(uow, tenant, email or phone or "")
            for topic in topics:
                for channel in DEMO_CHANNELS:
                    intent = intent_for(uow, tenant, topic, channel)
                    facts = uow.gate.facts(tenant, contact, intent, now)
                    cells.append(DemoCell(name, topic.key, channel, decide(facts, intent, now)))
    return cells
