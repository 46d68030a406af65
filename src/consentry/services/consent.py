"""Use cases for the consent ledger: record a grant or withdrawal with its evidence."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from consentry.domain.consent import (
    AFFIRMATIVE,
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentState,
    Evidence,
    EvidenceDigests,
    Relationship,
    apply_event,
    validate_evidence,
)
from consentry.domain.errors import (
    AddressMissing,
    ConsentForMinor,
    DisclosureMismatch,
    EvidenceIncomplete,
    UnknownValue,
)
from consentry.domain.ids import new_id
from consentry.domain.model import Category, Channel, PolicyStatus, Topic
from consentry.domain.rules import pack_for
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.contacts import resolve_contact
from consentry.services.ports import UNREAD, UnitOfWork, Unread
from consentry.services.tenants_ref import TenantRef, find_tenant

# Callers' clocks drift; a few minutes ahead is tolerated, anything later is a mistake.
CLOCK_ALLOWANCE = timedelta(minutes=5)


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    contact: str  # id, email address or phone number
    topic: str  # topic key
    channel: Channel
    action: ConsentAction
    basis: ConsentBasis
    evidence: Evidence
    occurred_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Recorded:
    event: ConsentEvent
    state: ConsentState


def _implied_expiry(
    basis: ConsentBasis,
    relationship: Relationship | None,
    occurred_at: datetime,
    country: str | None,
    tenant_country: str,
) -> datetime | None:
    pack = pack_for(country, tenant_country)
    if basis is not ConsentBasis.IMPLIED_RELATIONSHIP or pack.implied_consent is None:
        return None
    implied = pack.implied_consent
    lifetime = (
        implied.after_purchase if relationship is Relationship.PURCHASE else implied.after_inquiry
    )
    return occurred_at + lifetime


def _check_disclosure(uow: UnitOfWork, tenant_id: uuid.UUID, evidence: Evidence) -> Evidence:
    """The cited disclosure must be a published version of this tenant; its hash is recorded."""
    if evidence.policy_document_id is None:
        if evidence.disclosure_hash is not None:
            raise EvidenceIncomplete(
                "a disclosure hash needs the policy document it belongs to",
                field="policy_document_id",
            )
        return evidence
    document = uow.policies.get(tenant_id, evidence.policy_document_id)
    if document.status is not PolicyStatus.PUBLISHED:
        raise DisclosureMismatch(
            "consent may only cite a published disclosure", field="policy_document_id"
        )
    if evidence.disclosure_hash is not None and evidence.disclosure_hash != document.content_hash:
        raise DisclosureMismatch(
            "the disclosure hash does not match the cited version", field="disclosure_hash"
        )
    return replace(evidence, disclosure_hash=document.content_hash)


def append_and_fold(
    uow: UnitOfWork,
    event: ConsentEvent,
    previous: ConsentState | Unread | None = UNREAD,
    *,
    commit: bool = False,
) -> tuple[ConsentEvent, ConsentState]:
    """Chain ``event`` onto its tenant's ledger, with the keyed digests of its evidence, and fold
    it into the state projection, in the caller's transaction: the event as chained and the new
    state. Every single-event writer (API, CLI, opt-out pages, confirmations) goes through it.
    ``previous`` is the state the event folds into, when the caller read it in this transaction
    (it is read otherwise). With ``commit``, the append is the transaction's last write and
    may commit it with the append (``ConsentLedger.append_folded``): call ``uow.commit()``
    right after."""
    ev, digest = event.evidence, uow.keys.digest
    digests = EvidenceDigests(
        source=digest(ev.source),
        ip_address=digest(ev.ip_address),
        user_agent=digest(ev.user_agent),
        note=digest(ev.note),
    )
    return uow.ledger.append_folded(event, digests, apply_event, previous, commit=commit)


def event_about(
    state: ConsentState,
    action: ConsentAction,
    basis: ConsentBasis,
    evidence: Evidence,
    now: datetime,
    *,
    event_id: uuid.UUID | None = None,
) -> ConsentEvent:
    """A new event, dated ``now``, about ``state``'s contact point, topic and channel."""
    return ConsentEvent(
        id=event_id or new_id(),
        tenant_id=state.tenant_id,
        contact_id=state.contact_id,
        point_key=state.point_key,
        topic_id=state.topic_id,
        channel=state.channel,
        action=action,
        basis=basis,
        evidence=evidence,
        occurred_at=now,
        recorded_at=now,
    )


def append_about(  # noqa: PLR0917  (as event_about)
    uow: UnitOfWork,
    state: ConsentState,
    action: ConsentAction,
    basis: ConsentBasis,
    evidence: Evidence,
    now: datetime,
    *,
    event_id: uuid.UUID | None = None,
) -> ConsentEvent:
    """Check the evidence, then append one event about ``state``'s contact point and fold it in
    (the caller commits)."""
    validate_evidence(action, basis, evidence)
    event = event_about(state, action, basis, evidence, now, event_id=event_id)
    return append_and_fold(uow, event)[0]


def record_consent(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    request: ConsentRequest,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> Recorded:
    """Append one consent event and update the state projection in the same transaction.

    Commits. Refuses (writing nothing) evidence that is incomplete, a disclosure that is not a
    published version, a contact point the contact does not have, and marketing consent from a
    person under the age threshold of their jurisdiction.
    """
    now = now or utcnow()
    occurred_at = request.occurred_at or now
    if occurred_at > now + CLOCK_ALLOWANCE:
        raise UnknownValue("consent cannot be dated in the future", field="occurred_at")
    validate_evidence(request.action, request.basis, request.evidence)
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        topic: Topic = uow.topics.by_key(tenant.id, request.topic)
        contact = resolve_contact(uow, tenant, request.contact)
        point_key = uow.contacts.point_key(contact, request.channel)
        if point_key is None:
            raise AddressMissing(
                f"the contact has no address for {request.channel.value}", field="channel"
            )
        affirmative = request.action in AFFIRMATIVE
        if not affirmative:
            # A "no" waits for messages to this address already past their final check, so
            # that none leaves after it commits (guarantee 1; persistence/fences.py).
            uow.fences.exclusive([point_key])
        if (
            affirmative
            and topic.category is Category.MARKETING
            and contact.adult_on is not None
            and now.date() < contact.adult_on
        ):
            raise ConsentForMinor(
                "marketing consent cannot be taken from a person under the age threshold",
                field="contact",
            )
        evidence = _check_disclosure(uow, tenant.id, request.evidence)
        ev = evidence
        event = ConsentEvent(
            id=new_id(),
            tenant_id=tenant.id,
            contact_id=contact.id,
            point_key=point_key,
            topic_id=topic.id,
            channel=request.channel,
            action=request.action,
            basis=request.basis,
            evidence=evidence,
            occurred_at=occurred_at,
            recorded_at=now,
            expires_at=_implied_expiry(
                request.basis, ev.relationship, occurred_at, contact.country, tenant.country
            )
            if affirmative
            else None,
        )
        # The access is recorded first: appending takes the tenant's ledger chain, which every
        # other write of the tenant waits for until this transaction commits.
        audit(uow, context, tenant.id, f"consent.{request.action.value}", "contact", contact.id)
        event, state = append_and_fold(uow, event, commit=True)
        uow.commit()
    return Recorded(event, state)


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    event: ConsentEvent
    topic_key: str


def consent_history(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    contact_ref: str,
    context: RequestContext | None = None,
) -> list[HistoryEntry]:
    """Every ledger event of one contact, oldest first, with its evidence decrypted."""
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        contact = resolve_contact(uow, tenant, contact_ref)
        topics = {t.id: t.key for t in uow.topics.list(tenant.id)}
        entries = [
            HistoryEntry(e, topics.get(e.topic_id, str(e.topic_id)))
            for e in uow.ledger.history(tenant.id, contact.id)
        ]
        if context is not None:
            audit(uow, context, tenant.id, "consent.read", "contact", contact.id)
            uow.commit()
        return entries
