"""Use cases for permission passes: create (choose the members, plan the messages), follow, end.

The reconfirmation messages are an ordinary campaign on the pass's topic and channel, whose
audience is a list of the members: they are planned set-based through the gate and checked
again at dispatch, so a suppressed or withdrawn person gets nothing. Each message carries a
``/r/{token}`` link (services/outbound.py adds it); renewing lives in services/reconfirming.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.campaigns import Campaign, ContentNotCompliant
from consentry.domain.delivery import CampaignStatus
from consentry.domain.errors import DisclosureMismatch, UnknownValue
from consentry.domain.ids import new_id
from consentry.domain.model import (
    Channel,
    PolicyDocument,
    PolicyKind,
    PolicyStatus,
    Tenant,
    Topic,
)
from consentry.domain.passes import (
    PASS_CHANNELS,
    PassReport,
    PassSourceInvalid,
    PassStatus,
    PassTopicInvalid,
    PermissionPass,
    SourceKind,
    check_text,
    default_subject,
    default_text,
    validate_deadline,
)
from consentry.domain.templates import Template
from consentry.services.audit import RequestContext, audit
from consentry.services.campaigns import Reviewer, _intent
from consentry.services.clock import utcnow
from consentry.services.compose.templates import compile_template
from consentry.services.pass_report import pass_report
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


@dataclass(frozen=True, slots=True)
class PassInput:
    topic: str  # topic key
    channel: Channel
    deadline: datetime
    list: str | None = None  # list name or id
    import_id: uuid.UUID | None = None  # or the import batch
    name: str | None = None
    subject: str | None = None  # email; a default names the topic and the business
    text: str | None = None  # must contain {{ data.reconfirm_url }}; a default explains it
    disclosure_id: uuid.UUID | None = None  # default: the latest published consent disclosure


@dataclass(frozen=True, slots=True)
class PassView:
    permission_pass: PermissionPass
    topic_key: str
    report: PassReport


def _disclosure(uow: UnitOfWork, tenant_id: uuid.UUID, ref: uuid.UUID | None) -> PolicyDocument:
    """The published disclosure the reconfirmation page shows and renewals cite."""
    if ref is not None:
        document = uow.policies.get(tenant_id, ref)
        if document.status is not PolicyStatus.PUBLISHED:
            raise DisclosureMismatch(
                "a permission pass may only show a published disclosure", field="disclosure_id"
            )
        return document
    published = [
        d
        for d in uow.policies.list(tenant_id, PolicyKind.CONSENT_DISCLOSURE)
        if d.status is PolicyStatus.PUBLISHED
    ]
    if not published:
        raise DisclosureMismatch(
            "publish a consent disclosure first: renewals must cite the words people saw",
            field="disclosure_id",
        )
    return max(published, key=lambda d: (d.published_at or d.created_at, d.version))


def _source(uow: UnitOfWork, tenant_id: uuid.UUID, spec: PassInput) -> tuple[SourceKind, uuid.UUID]:
    if (spec.list is None) == (spec.import_id is None):
        raise PassSourceInvalid("name either a list or an import, not both", field="list")
    if spec.list is not None:
        return SourceKind.LIST, uow.lists.get_id(tenant_id, spec.list)
    record = uow.imports.get(tenant_id, spec.import_id)  # type: ignore[arg-type]  # set: above
    return SourceKind.IMPORT, record.id


def _template(tenant: Tenant, topic: Topic, spec: PassInput, name: str, now: datetime) -> Template:
    business = tenant.profile.legal_name or tenant.name
    text = spec.text or default_text(spec.channel, topic.name, business, spec.deadline)
    check_text(text)
    subject = None
    if spec.channel is Channel.EMAIL:
        subject = spec.subject or default_subject(topic.name, business)
    template = Template(
        id=new_id(),
        tenant_id=tenant.id,
        topic_id=topic.id,
        channel=spec.channel,
        name=name,
        text=text,
        subject=subject,
        created_at=now,
    )
    compile_template(template)  # TemplateInvalid before anything is written
    return template


def create_pass(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    spec: PassInput,
    actor: str,
    review: Reviewer,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> PassView:
    """Choose the members (the source's contact points whose consent for the topic and channel
    is active now), plan one reconfirmation message to each through the gate and queue them;
    commits once, or writes nothing."""
    now = now or utcnow()
    validate_deadline(spec.deadline, now)
    if spec.channel not in PASS_CHANNELS:
        raise UnknownValue("a permission pass is sent by email or SMS", field="channel")
    if spec.name is not None and not 0 < len(spec.name.strip()) <= 200:
        raise UnknownValue("a pass name has 1-200 characters", field="name")
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        topic = uow.topics.by_key(tenant.id, spec.topic)
        if topic.umbrella:
            raise PassTopicInvalid("a permission pass asks about a topic, not an umbrella",
                                   field="topic")  # fmt: skip
        kind, source_id = _source(uow, tenant.id, spec)
        disclosure = _disclosure(uow, tenant.id, spec.disclosure_id)
        pass_id = new_id()
        internal = f"permission-pass-{pass_id}"
        template = _template(tenant, topic, spec, internal, now)
        uow.templates.add(template)
        audience = new_id()
        uow.lists.create(tenant.id, audience, internal, now)
        campaign = Campaign(
            id=new_id(),
            tenant_id=tenant.id,
            name=internal,
            topic_id=topic.id,
            channel=spec.channel,
            template_id=template.id,
            status=CampaignStatus.DRAFT,
            created_by=actor,
            created_at=now,
            list_id=audience,
        )
        uow.campaigns.add(campaign)
        permission_pass = PermissionPass(
            id=pass_id,
            tenant_id=tenant.id,
            name=(spec.name or f"{topic.name} reconfirmation").strip(),
            topic_id=topic.id,
            channel=spec.channel,
            source_kind=kind,
            source_id=source_id,
            campaign_id=campaign.id,
            disclosure_document_id=disclosure.id,
            deadline=spec.deadline,
            status=PassStatus.RUNNING,
            created_by=actor,
            created_at=now,
        )
        uow.passes.add(permission_pass)
        uow.passes.add_members(permission_pass, now)
        uow.passes.fill_list(pass_id, audience)
        errors, _warnings = review(uow, tenant, campaign)
        if errors:
            raise ContentNotCompliant(
                "content review failed: " + "; ".join(f"{c}: {m}" for c, m in errors), errors
            )
        planned = uow.deliveries.plan(tenant, campaign, _intent(uow, tenant, campaign), now,
                                      queue=True)  # fmt: skip
        uow.campaigns.set_planned(campaign.id, planned.by_reason, now)
        uow.campaigns.set_status(campaign.id, CampaignStatus.DRAFT, CampaignStatus.RUNNING, now)
        audit(uow, context, tenant.id, "permission_pass.create", "permission_pass", pass_id)
        uow.commit()
        return PassView(permission_pass, topic.key, pass_report(uow, permission_pass))


def get_pass(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    pass_id: uuid.UUID,
    *,
    context: RequestContext | None = None,
) -> PassView:
    """One pass with its report; writes nothing."""
    del context
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        found = uow.passes.get(tenant.id, pass_id)
        topic = uow.topics.get(tenant.id, found.topic_id)
        return PassView(found, topic.key, pass_report(uow, found))


def list_passes(uow: UnitOfWork, tenant_ref: TenantRef) -> list[PassView]:
    """The tenant's passes, newest first, each with its report; writes nothing."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        topics = {t.id: t.key for t in uow.topics.list(tenant.id)}
        return [
            PassView(p, topics.get(p.topic_id, str(p.topic_id)), pass_report(uow, p))
            for p in uow.passes.of_tenant(tenant.id)
        ]
