"""Consent, suppression and policy use cases against real databases: bad input writes nothing
(guarantee 8), and nothing brings back a suppressed or withdrawn contact point (guarantee 6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, func, select
from tests.integration.helpers import NOW, UowFactory, disclosure, grant, person, shop

from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, Evidence
from consentry.domain.errors import (
    AlreadyExists,
    ConsentForMinor,
    ConsentryError,
    DateOfBirthInFuture,
    DisclosureMismatch,
    EvidenceIncomplete,
    InvalidEmail,
    InvalidPhone,
    PolicyDocumentImmutable,
    SuppressionNotLiftable,
    TopicNotFound,
)
from consentry.domain.gate import Reason
from consentry.domain.model import Channel, PointKind, PolicyKind
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.persistence.tables import metadata
from consentry.services.contacts import ContactInput, add_contact
from consentry.services.gate import explain_decision
from consentry.services.suppressions import add_suppression, lift_suppression
from consentry.services.tenancy import draft_policy, publish_policy


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
            for t in metadata.sorted_tables
        }


def _decision(
    new_uow: UowFactory,
    slug: str,
    contact: str,
    topic: str = "promotions",
    channel: Channel = Channel.EMAIL,
) -> tuple[str, ...]:
    result = explain_decision(new_uow(), slug, contact, topic, channel, now=NOW)
    return result.explanation.decision.reasons


def test_the_migrations_build_exactly_the_declared_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


BAD_INPUT: list[tuple[str, type[ConsentryError], Callable[[UowFactory, str, Evidence], object]]] = [
    (
        "invalid email",
        InvalidEmail,
        lambda u, s, e: add_contact(u(), s, ContactInput(email="ana@@example"), NOW),
    ),
    (
        "invalid phone",
        InvalidPhone,
        lambda u, s, e: add_contact(u(), s, ContactInput(phone="+1 555"), NOW),
    ),
    (
        "future birth date",
        DateOfBirthInFuture,
        lambda u, s, e: add_contact(
            u(),
            s,
            ContactInput(email="kid@example.com", date_of_birth=NOW.date() + timedelta(1)),
            NOW,
        ),
    ),
    (
        "duplicate email",
        AlreadyExists,
        lambda u, s, e: add_contact(u(), s, ContactInput(email="ANA@example.com"), NOW),
    ),
    (
        "unknown topic",
        TopicNotFound,
        lambda u, s, e: grant(u, s, "ana@example.com", e, topic="nope"),
    ),
    (
        "evidence without ip",
        EvidenceIncomplete,
        lambda u, s, e: grant(u, s, "ana@example.com", replace(e, ip_address=None)),
    ),
    (
        "wrong disclosure hash",
        DisclosureMismatch,
        lambda u, s, e: grant(u, s, "ana@example.com", replace(e, disclosure_hash="sha256:00")),
    ),
]


@pytest.mark.parametrize(("label", "error", "action"), BAD_INPUT, ids=[b[0] for b in BAD_INPUT])
def test_bad_input_is_refused_with_its_code_and_writes_nothing(
    new_uow: UowFactory,
    engine: Engine,
    label: str,
    error: type[ConsentryError],
    action: Callable[[UowFactory, str, Evidence], object],
) -> None:
    slug = shop(new_uow)
    person(new_uow, slug)
    evidence = disclosure(new_uow, slug)
    before = _counts(engine)
    with pytest.raises(error) as caught:
        action(new_uow, slug, evidence)
    assert caught.value.code == error.code, label
    assert _counts(engine) == before


def test_marketing_consent_from_a_minor_is_refused_and_service_consent_is_not(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug = shop(new_uow)
    person(new_uow, slug, email="teen@example.com", phone=None, date_of_birth=date(2012, 1, 5))
    evidence = disclosure(new_uow, slug)
    before = _counts(engine)
    with pytest.raises(ConsentForMinor):
        grant(new_uow, slug, "teen@example.com", evidence)
    assert _counts(engine) == before
    grant(
        new_uow,
        slug,
        "teen@example.com",
        evidence,
        topic="reminders",
        basis=ConsentBasis.SERVICE_NECESSITY,
    )
    assert _decision(new_uow, slug, "teen@example.com", "reminders") == ()


def test_a_draft_disclosure_cannot_be_cited_and_a_published_one_cannot_change(
    new_uow: UowFactory,
) -> None:
    slug = shop(new_uow)
    person(new_uow, slug)
    draft = draft_policy(
        new_uow(), slug, kind=PolicyKind.PRIVACY_POLICY, title="Privacy", body="v2 text", now=NOW
    )
    evidence = disclosure(new_uow, slug)
    with pytest.raises(DisclosureMismatch):
        grant(new_uow, slug, "ana@example.com", replace(evidence, policy_document_id=draft.id))
    published = publish_policy(new_uow(), slug, draft.id, NOW)
    with pytest.raises(PolicyDocumentImmutable):
        publish_policy(new_uow(), slug, published.id, NOW)
    again = draft_policy(
        new_uow(), slug, kind=PolicyKind.PRIVACY_POLICY, title="Privacy", body="v3 text", now=NOW
    )
    assert again.version == published.version + 1
    recorded = grant(new_uow, slug, "ana@example.com", evidence)
    assert recorded.event.evidence.disclosure_hash == evidence_hash(new_uow, slug, evidence)


def evidence_hash(new_uow: UowFactory, slug: str, evidence: Evidence) -> str:
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        assert evidence.policy_document_id is not None
        return uow.policies.get(tenant.id, evidence.policy_document_id).content_hash


def test_a_new_grant_does_not_lift_a_suppression(new_uow: UowFactory) -> None:
    slug = shop(new_uow)
    person(new_uow, slug)
    evidence = disclosure(new_uow, slug)
    add_suppression(
        new_uow(),
        slug,
        address="ana@example.com",
        channels=[Channel.EMAIL],
        reason=SuppressionReason.COMPLAINT,
        now=NOW,
    )
    grant(new_uow, slug, "ana@example.com", evidence)
    assert _decision(new_uow, slug, "ana@example.com") == ("SUPPRESSED_COMPLAINT",)
    assert _decision(new_uow, slug, "ana@example.com", "reminders") == (
        "SUPPRESSED_COMPLAINT",
        Reason.NO_CONSENT,
    )


def test_a_suppression_outlives_the_contact_and_binds_a_new_one(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug = shop(new_uow)
    add_suppression(
        new_uow(),
        slug,
        address="Ana@Example.com",
        channels=[Channel.EMAIL],
        reason=SuppressionReason.HARD_BOUNCE,
        now=NOW,
    )
    person(new_uow, slug)  # the address comes back later, e.g. typed in again
    grant(new_uow, slug, "ana@example.com", disclosure(new_uow, slug))
    assert _decision(new_uow, slug, "ana@example.com")[0] == "SUPPRESSED_HARD_BOUNCE"
    with new_uow() as uow:
        (suppression,) = uow.suppressions.list(uow.tenants.by_slug(slug).id)
    with pytest.raises(SuppressionNotLiftable):
        lift_suppression(new_uow(), slug, suppression.id, "operator")


def test_a_platform_suppression_binds_every_tenant_and_a_tenant_one_only_its_own(
    new_uow: UowFactory,
) -> None:
    for slug in ("one", "two"):
        shop(new_uow, slug)
        person(new_uow, slug)
        grant(new_uow, slug, "ana@example.com", disclosure(new_uow, slug))
    add_suppression(
        new_uow(),
        "one",
        address="ana@example.com",
        channels=[Channel.EMAIL],
        reason=SuppressionReason.MANUAL,
        scope=SuppressionScope.MARKETING,
        now=NOW,
    )
    assert _decision(new_uow, "one", "ana@example.com") == ("SUPPRESSED_MANUAL",)
    assert _decision(new_uow, "two", "ana@example.com") == ()
    add_suppression(
        new_uow(),
        None,
        address="ana@example.com",
        channels=[Channel.EMAIL],
        reason=SuppressionReason.ERASED,
        now=NOW,
    )
    assert _decision(new_uow, "two", "ana@example.com") == ("SUPPRESSED_ERASED",)


def test_withdrawal_then_a_new_affirmative_act_is_the_only_way_back(new_uow: UowFactory) -> None:
    slug = shop(new_uow)
    person(new_uow, slug)
    evidence = disclosure(new_uow, slug)
    grant(new_uow, slug, "ana@example.com", evidence)
    grant(
        new_uow,
        slug,
        "ana@example.com",
        Evidence(method=ConsentMethod.KEYWORD, inbound_message_id="SM1"),
        action=ConsentAction.WITHDRAWN,
    )
    assert _decision(new_uow, slug, "ana@example.com") == (Reason.CONSENT_WITHDRAWN,)
    # Changing the address starts over: the old consent does not follow the contact.
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        contact = uow.contacts.find_by_point(tenant.id, PointKind.EMAIL, "ana@example.com")
        assert contact is not None
        uow.contacts.update(replace(contact, email="ana.lima@example.com"))
        uow.commit()
    assert _decision(new_uow, slug, "ana.lima@example.com") == (Reason.NO_CONSENT,)
    grant(new_uow, slug, "ana.lima@example.com", evidence)
    assert _decision(new_uow, slug, "ana.lima@example.com") == ()
