"""Use cases for sender domains, templates and transactional messages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain.campaigns import ContentNotCompliant, Delivery, SenderDomain
from consentry.domain.content import (
    ContentUnderReview,
    Finding,
    SmsEncoding,
    review_message,
    sms_segments,
)
from consentry.domain.delivery import DeliveryStatus
from consentry.domain.errors import AlreadyExists, UnknownValue
from consentry.domain.gate import Decision, Verdict, decide
from consentry.domain.ids import new_id
from consentry.domain.model import Category, Channel
from consentry.domain.templates import Template
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.compose.dkim import generate_dkim_key
from consentry.services.compose.templates import compile_template, template_variables
from consentry.services.contacts import resolve_contact
from consentry.services.gate import intent_for
from consentry.services.outbound import OutboundComposer, sample_contact
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

_DOMAIN = re.compile(r"^(?=.{1,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SELECTOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True, slots=True)
class RegisteredDomain:
    domain: SenderDomain
    dkim_dns_name: str | None
    dkim_dns_record: str | None  # the TXT record to publish


def register_sender_domain(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    domain: str,
    *,
    dkim_selector: str | None = None,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> RegisteredDomain:
    """Register a domain the tenant sends email from; with a selector, a DKIM key pair is
    generated (the private key sealed under the tenant's key). Commits."""
    domain = domain.strip().lower().rstrip(".")
    if not _DOMAIN.match(domain):
        raise UnknownValue(f"{domain!r} is not a domain name", field="domain")
    if dkim_selector is not None and not _SELECTOR.match(dkim_selector):
        raise UnknownValue("a DKIM selector is a DNS label", field="dkim_selector")
    pem, record = generate_dkim_key() if dkim_selector else (None, None)
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        sender = SenderDomain(
            id=new_id(),
            tenant_id=tenant.id,
            domain=domain,
            created_at=now or utcnow(),
            dkim_selector=dkim_selector,
            has_dkim_key=pem is not None,
        )
        uow.sender_domains.add(sender, None if pem is None else pem.decode())
        audit(uow, context, tenant.id, "sender_domain.create", "sender_domain", sender.id)
        uow.commit()
    name = f"{dkim_selector}._domainkey.{domain}" if dkim_selector else None
    return RegisteredDomain(sender, name, record)


def list_sender_domains(uow: UnitOfWork, tenant_ref: TenantRef) -> list[SenderDomain]:
    with uow:
        return uow.sender_domains.list(find_tenant(uow, tenant_ref).id)


@dataclass(frozen=True, slots=True)
class TemplateInput:
    name: str
    topic: str
    channel: Channel
    text: str
    subject: str | None = None
    html: str | None = None
    whatsapp_template: str | None = None
    whatsapp_language: str = "en"
    whatsapp_parameters: tuple[str, ...] = ()


def create_template(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    spec: TemplateInput,
    *,
    known_whatsapp_templates: frozenset[str] | None = None,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> Template:
    """Validate (it must compile, with what its channel needs) and store a template; commits."""
    if not spec.name.strip() or len(spec.name) > 200:
        raise UnknownValue("a template needs a name of 1-200 characters", field="name")
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        topic = uow.topics.by_key(tenant.id, spec.topic)
        template = Template(
            id=new_id(),
            tenant_id=tenant.id,
            topic_id=topic.id,
            channel=spec.channel,
            name=spec.name.strip(),
            text=spec.text,
            subject=spec.subject,
            html=spec.html,
            whatsapp_template=spec.whatsapp_template,
            whatsapp_language=spec.whatsapp_language,
            whatsapp_parameters=spec.whatsapp_parameters,
            created_at=now or utcnow(),
        )
        compile_template(template, known_whatsapp_templates)
        if topic.category is Category.SERVICE:
            _refuse_offers(template)
        uow.templates.add(template)
        audit(uow, context, tenant.id, "template.create", "template", template.id)
        uow.commit()
    return template


def _refuse_offers(template: Template) -> None:
    """A service template may not carry an offer: service messages reach people who opted out of
    marketing. ContentNotCompliant names what makes it one."""
    review = review_message(
        ContentUnderReview(
            channel=template.channel,
            category=Category.SERVICE,
            text=template.text,
            subject=template.subject,
            html=template.html,
        )
    )
    errors = tuple((f.code, f.message) for f in review.findings if f.severity == "error")
    if errors:
        raise ContentNotCompliant(
            "content review failed: " + "; ".join(f"{c}: {m}" for c, m in errors), errors
        )


def list_templates(uow: UnitOfWork, tenant_ref: TenantRef) -> list[Template]:
    with uow:
        return uow.templates.list(find_tenant(uow, tenant_ref).id)


@dataclass(frozen=True, slots=True)
class Preview:
    template: Template
    subject: str | None
    text: str
    html: str | None
    whatsapp_parameters: tuple[str, ...]
    sms: SmsEncoding | None
    findings: tuple[Finding, ...]


def preview_template(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    template_ref: str,
    composer: OutboundComposer,
    *,
    contact_ref: str | None = None,
    data: Mapping[str, Any] | None = None,
    from_address: str | None = None,
) -> Preview:
    """Render a template as a contact (or a made-up sample) would get it, compliance parts
    included, with SMS segments and the content review's findings; writes nothing."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        template = _template(uow, tenant.id, template_ref)
        contact = (
            resolve_contact(uow, tenant, contact_ref) if contact_ref else sample_contact(tenant)
        )
        _t, compiled = composer.template(uow, tenant.id, template.id)
        content = compiled.render(template_variables(tenant, contact, data))
        composed = composer.under_review(uow, tenant, template, content, from_address)
        review = review_message(composed)
        return Preview(
            template=template,
            subject=composed.subject,
            text=composed.text,
            html=composed.html,
            whatsapp_parameters=content.whatsapp_parameters,
            sms=sms_segments(composed.text) if template.channel is Channel.SMS else None,
            findings=review.findings,
        )


def _template(uow: UnitOfWork, tenant_id: uuid.UUID, ref: str) -> Template:
    try:
        return uow.templates.get(tenant_id, uuid.UUID(ref))
    except ValueError:
        return uow.templates.by_name(tenant_id, ref)


@dataclass(frozen=True, slots=True)
class MessageRequest:
    contact: str  # id, email or phone
    template: str  # name or id
    data: Mapping[str, Any]
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SentMessage:
    delivery: Delivery
    decision: Decision
    created: bool  # False: the idempotency key named an earlier message


def send_message(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    request: MessageRequest,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> SentMessage:
    """Queue one service message to one contact; the gate decides now and again at dispatch.

    Commits. A refused message is stored as ``suppressed`` with its reasons. The same
    idempotency key returns the first message instead of queueing another.
    """
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        if request.idempotency_key is not None:
            earlier = uow.deliveries.by_idempotency_key(tenant.id, request.idempotency_key)
            if earlier is not None:
                return SentMessage(earlier, _decision_of(earlier), created=False)
        template = _template(uow, tenant.id, request.template)
        topic = uow.topics.get(tenant.id, template.topic_id)
        if topic.category is not Category.SERVICE:
            raise UnknownValue(
                "a transactional message must use a service topic's template; marketing "
                "goes out as a campaign",
                field="template",
            )
        contact = resolve_contact(uow, tenant, request.contact)
        free_form = template.channel is Channel.WHATSAPP and template.whatsapp_template is None
        intent = intent_for(uow, tenant, topic, template.channel, whatsapp_free_form=free_form)
        decision = decide(uow.gate.facts(tenant, contact, intent, now), intent, now)
        status = {
            Verdict.ALLOW: DeliveryStatus.QUEUED,
            Verdict.DEFER: DeliveryStatus.DEFERRED,
            Verdict.DENY: DeliveryStatus.SUPPRESSED,
        }[decision.verdict]
        try:
            delivery_id = uow.deliveries.add_message(
                tenant_id=tenant.id,
                contact_id=contact.id,
                topic_id=topic.id,
                template_id=template.id,
                channel=template.channel,
                category=topic.category,
                idempotency_key=request.idempotency_key,
                variables=request.data,
                status=status,
                reasons=decision.reasons,
                consent_event_id=decision.consent_event_id,
                next_attempt_at=decision.defer_until,
                now=now,
            )
        except AlreadyExists:
            uow.rollback()
            raise
        audit(uow, context, tenant.id, "message.create", "delivery", str(delivery_id))
        uow.commit()
        return SentMessage(uow.deliveries.get(tenant.id, delivery_id), decision, created=True)


def _decision_of(delivery: Delivery) -> Decision:
    if delivery.status is DeliveryStatus.SUPPRESSED:
        return Decision(Verdict.DENY, delivery.reasons)
    if delivery.status is DeliveryStatus.DEFERRED:
        return Decision(Verdict.DEFER, delivery.reasons, delivery.consent_event_id,
                        delivery.next_attempt_at)  # fmt: skip
    return Decision(Verdict.ALLOW, (), delivery.consent_event_id)


def get_message(uow: UnitOfWork, tenant_ref: TenantRef, delivery_id: int) -> Delivery:
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        return uow.deliveries.get(tenant.id, delivery_id)
