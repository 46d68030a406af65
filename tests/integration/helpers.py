"""Small builders shared by integration tests."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, Evidence
from consentry.domain.model import BusinessProfile, Category, Channel, Contact, PolicyKind
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.consent import ConsentRequest, Recorded, record_consent
from consentry.services.contacts import ContactInput, add_contact
from consentry.services.tenancy import create_tenant, create_topic, draft_policy, publish_policy

NOW = datetime(2026, 5, 4, 15, 0, tzinfo=UTC)
UowFactory = Callable[[], SqlUnitOfWork]


def shop(new_uow: UowFactory, slug: str = "shop", country: str = "US") -> str:
    """A tenant with a service topic, a marketing topic and a published disclosure."""
    create_tenant(
        new_uow(),
        slug=slug,
        name=f"{slug} name",
        now=NOW,
        profile=BusinessProfile(legal_name=f"{slug} LLC", country=country),
    )
    create_topic(
        new_uow(), slug, key="reminders", name="Reminders", category=Category.SERVICE, now=NOW
    )
    create_topic(
        new_uow(), slug, key="promotions", name="Promotions", category=Category.MARKETING, now=NOW
    )
    return slug


def disclosure(new_uow: UowFactory, slug: str) -> Evidence:
    draft = draft_policy(
        new_uow(),
        slug,
        kind=PolicyKind.CONSENT_DISCLOSURE,
        title="Consent",
        body="You may send me offers. Reply STOP to opt out.",
        now=NOW,
    )
    doc = publish_policy(new_uow(), slug, draft.id, NOW)
    return Evidence(
        method=ConsentMethod.WEB_FORM,
        source="https://shop.example/join",
        ip_address="203.0.113.9",
        user_agent="Mozilla/5.0 test",
        policy_document_id=doc.id,
    )


def person(
    new_uow: UowFactory,
    slug: str,
    email: str = "ana@example.com",
    phone: str | None = "+16175550142",
    **extra: object,
) -> Contact:
    return add_contact(
        new_uow(), slug, ContactInput(email=email, phone=phone, name="Ana Lima", **extra), now=NOW
    )  # type: ignore[arg-type]


def grant(
    new_uow: UowFactory,
    slug: str,
    contact: str,
    evidence: Evidence,
    *,
    topic: str = "promotions",
    channel: Channel = Channel.EMAIL,
    action: ConsentAction = ConsentAction.GRANTED,
    basis: ConsentBasis = ConsentBasis.EXPRESS,
) -> Recorded:
    return record_consent(
        new_uow(),
        slug,
        ConsentRequest(
            contact=contact,
            topic=topic,
            channel=channel,
            action=action,
            basis=basis,
            evidence=evidence,
        ),
        now=NOW,
    )
