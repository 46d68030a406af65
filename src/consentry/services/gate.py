"""Use cases around the gate: explain one decision, and size an audience set-based."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consentry.domain.access import Scope, require
from consentry.domain.consent import ConsentEvent
from consentry.domain.explain import Explanation, explain
from consentry.domain.gate import Intent
from consentry.domain.model import Channel, Contact, Tenant, Topic
from consentry.services.audit import RequestContext, record_access
from consentry.services.clock import utcnow
from consentry.services.contacts import resolve_contact
from consentry.services.ports import EligibilitySummary, UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


def intent_for(
    uow: UnitOfWork,
    tenant: Tenant,
    topic: Topic,
    channel: Channel,
    *,
    whatsapp_free_form: bool = False,
    content_compliant: bool = True,
) -> Intent:
    umbrella = uow.topics.by_key(tenant.id, topic.umbrella_key())
    return Intent(
        topic_id=topic.id,
        umbrella_topic_id=umbrella.id,
        category=topic.category,
        channel=channel,
        requires_confirmation=topic.requires_double_opt_in,
        whatsapp_free_form=whatsapp_free_form,
        content_compliant=content_compliant,
    )


@dataclass(frozen=True, slots=True)
class ExplainedDecision:
    tenant: Tenant
    contact: Contact
    topic: Topic
    channel: Channel
    at: datetime
    explanation: Explanation
    evidence: ConsentEvent | None  # the consent event that governs (authorising or refusing)


def explain_decision(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    contact_ref: str,
    topic_key: str,
    channel: Channel,
    *,
    whatsapp_free_form: bool = False,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> ExplainedDecision:
    """Why a message would or would not go to one contact now: each rule and the evidence.

    With a request context the caller needs the ``decisions`` scope, and the read is recorded in
    the audit log (committed with it).
    """
    now = now or utcnow()
    if context is not None:
        require(context.principal, Scope.DECISIONS)
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        topic = uow.topics.by_key(tenant.id, topic_key)
        contact = resolve_contact(uow, tenant, contact_ref)
        intent = intent_for(uow, tenant, topic, channel, whatsapp_free_form=whatsapp_free_form)
        facts = uow.gate.facts(tenant, contact, intent, now)
        explanation = explain(facts, intent, now)
        governing = [c for c in facts.consents if c.point_key == facts.point_key]
        evidence = None
        if governing:
            newest = max(governing, key=lambda c: c.seq)
            evidence = uow.ledger.get(tenant.id, newest.event_id)
        if context is not None:
            record_access(
                uow,
                context,
                tenant_id=tenant.id,
                action="decision.read",
                object_type="contact",
                object_id=str(contact.id),
                now=now,
            )
            uow.commit()
        return ExplainedDecision(tenant, contact, topic, channel, now, explanation, evidence)


def audience_summary(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    topic_key: str,
    channel: Channel,
    now: datetime | None = None,
) -> EligibilitySummary:
    """How many contacts may receive this topic on this channel now, and why not the rest."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        topic = uow.topics.by_key(tenant.id, topic_key)
        return uow.gate.eligibility_summary(tenant, intent_for(uow, tenant, topic, channel), now)
