"""Use cases for campaigns: create, simulate, launch (plan set-based), pause, resume, cancel.

Planning writes one delivery per audience member with the gate's decision (one INSERT ...
SELECT); launching queues the planned ones for the workers; each delivery is checked again at
dispatch. A campaign whose content fails review cannot launch (``CONTENT_NOT_COMPLIANT``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from consentry.domain.campaigns import (
    AudienceFilter,
    Campaign,
    CampaignProgress,
    ContentNotCompliant,
    Simulation,
    parse_frequency_cap,
)
from consentry.domain.delivery import CampaignStatus, InvalidCampaignTransition
from consentry.domain.errors import UnknownValue
from consentry.domain.gate import Intent
from consentry.domain.ids import new_id
from consentry.domain.model import Channel, Tenant
from consentry.domain.templates import Template
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.gate import intent_for
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

# Reviews a campaign's content by composing a sample message: (errors, warnings), each a
# (code, message) pair. Supplied by the composition root (services/outbound.py).
Reviewer = Callable[[UnitOfWork, Tenant, Campaign], tuple[tuple[tuple[str, str], ...], ...]]


@dataclass(frozen=True, slots=True)
class CampaignInput:
    name: str
    topic: str  # topic key
    template: str  # template name or id
    channel: Channel | None = None  # defaults to the template's channel
    list: str | None = None  # list name or id
    audience: AudienceFilter = field(default_factory=AudienceFilter)
    from_address: str | None = None
    frequency_cap: str | None = None  # "3/24h"
    scheduled_at: datetime | None = None


def _intent(uow: UnitOfWork, tenant: Tenant, campaign: Campaign) -> Intent:
    topic = uow.topics.get(tenant.id, campaign.topic_id)
    # A WhatsApp template without an approved template name is free text, which may only go
    # inside the 24-hour window a person opened by writing in: planning, simulation and the
    # check at dispatch all apply that rule, as for a single message.
    free_form = (
        campaign.channel is Channel.WHATSAPP
        and uow.templates.get(tenant.id, campaign.template_id).whatsapp_template is None
    )
    intent = intent_for(uow, tenant, topic, campaign.channel, whatsapp_free_form=free_form)
    return replace(intent, frequency_cap=parse_frequency_cap(campaign.frequency_cap))


def create_campaign(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    spec: CampaignInput,
    actor: str,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> Campaign:
    """Create a draft campaign; commits. The template must belong to the campaign's topic."""
    now = now or utcnow()
    if not spec.name.strip() or len(spec.name) > 200:
        raise UnknownValue("a campaign needs a name of 1-200 characters", field="name")
    parse_frequency_cap(spec.frequency_cap)
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        topic = uow.topics.by_key(tenant.id, spec.topic)
        template = _template(uow, tenant.id, spec.template)
        channel = spec.channel or template.channel
        if template.topic_id != topic.id or template.channel is not channel:
            raise UnknownValue(
                f"template {template.name!r} is not a {channel.value} template of topic "
                f"{topic.key!r}",
                field="template",
            )
        if topic.umbrella:
            raise UnknownValue("a campaign is sent on a topic, not an umbrella", field="topic")
        list_id = uow.lists.get_id(tenant.id, spec.list) if spec.list else None
        campaign = Campaign(
            id=new_id(),
            tenant_id=tenant.id,
            name=spec.name.strip(),
            topic_id=topic.id,
            channel=channel,
            template_id=template.id,
            status=CampaignStatus.DRAFT,
            created_by=actor,
            created_at=now,
            list_id=list_id,
            audience=spec.audience,
            from_address=spec.from_address,
            frequency_cap=spec.frequency_cap,
            scheduled_at=spec.scheduled_at,
        )
        uow.campaigns.add(campaign)
        audit(uow, context, tenant.id, "campaign.create", "campaign", campaign.id)
        uow.commit()
    return campaign


def _template(uow: UnitOfWork, tenant_id: uuid.UUID, ref: str) -> Template:
    try:
        return uow.templates.get(tenant_id, uuid.UUID(ref))
    except ValueError:
        return uow.templates.by_name(tenant_id, ref)


def get_campaign(uow: UnitOfWork, tenant_ref: TenantRef, ref: str) -> Campaign:
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        return uow.campaigns.get(tenant.id, ref)


def list_campaigns(uow: UnitOfWork, tenant_ref: TenantRef) -> list[Campaign]:
    with uow:
        return uow.campaigns.list(find_tenant(uow, tenant_ref).id)


def simulate_campaign(
    uow: UnitOfWork, tenant_ref: TenantRef, ref: str, now: datetime | None = None, sample: int = 20
) -> Simulation:
    """Who would receive the campaign now, counted by reason, with refused examples; writes
    nothing."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        campaign = uow.campaigns.get(tenant.id, ref)
        return uow.deliveries.simulate(
            tenant, _intent(uow, tenant, campaign), now, campaign, sample
        )


def launch_campaign(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    ref: str,
    review: Reviewer,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> CampaignProgress:
    """Review the content, plan every delivery set-based and queue them; commits. A campaign
    scheduled for later is planned at launch and queued when its time comes."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        # Locked until the launch commits: a second launch of the same campaign waits, then
        # finds it launched, where it would otherwise plan it again and fail on its rows.
        campaign = uow.campaigns.get(tenant.id, ref, lock=True)
        if campaign.status is not CampaignStatus.DRAFT:
            raise InvalidCampaignTransition(f"a {campaign.status} campaign cannot be launched")
        errors, _warnings = review(uow, tenant, campaign)
        if errors:
            raise ContentNotCompliant(
                "content review failed: " + "; ".join(f"{c}: {m}" for c, m in errors), errors
            )
        later = campaign.scheduled_at is not None and campaign.scheduled_at > now
        intent = _intent(uow, tenant, campaign)
        planned = uow.deliveries.plan(tenant, campaign, intent, now, queue=not later)
        uow.campaigns.set_planned(campaign.id, planned.by_reason, now)
        target = CampaignStatus.SCHEDULED if later else CampaignStatus.RUNNING
        uow.campaigns.set_status(campaign.id, CampaignStatus.DRAFT, target, now)
        audit(uow, context, tenant.id, "campaign.launch", "campaign", campaign.id)
        uow.commit()
        # Planning wrote every delivery of the campaign: its counts are the progress at launch,
        # without counting a million rows a second time.
        return CampaignProgress(uow.campaigns.get(tenant.id, campaign.id), planned.by_status)


def start_due_campaigns(uow: UnitOfWork, now: datetime | None = None) -> list[uuid.UUID]:
    """Scheduled campaigns whose time has come start running; commits."""
    now = now or utcnow()
    started = []
    with uow:
        for _tenant_id, campaign_id in uow.campaigns.due(now):
            if uow.campaigns.set_status(
                campaign_id, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, now
            ):
                uow.deliveries.queue_planned(campaign_id, now)
                started.append(campaign_id)
        uow.commit()
    return started


_CANCELLABLE = (
    CampaignStatus.DRAFT,
    CampaignStatus.SCHEDULED,
    CampaignStatus.RUNNING,
    CampaignStatus.PAUSED,
)
_MOVES = {
    "pause": ((CampaignStatus.RUNNING, CampaignStatus.SCHEDULED), CampaignStatus.PAUSED),
    "resume": ((CampaignStatus.PAUSED,), CampaignStatus.RUNNING),
    "cancel": (_CANCELLABLE, CampaignStatus.CANCELLED),
}


def change_campaign(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    ref: str,
    action: str,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> CampaignProgress:
    """pause | resume | cancel; commits. Pausing stops new claims at once (messages already in
    flight finish); cancelling also cancels every delivery not yet in flight."""
    now = now or utcnow()
    allowed_from, target = _MOVES[action]
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        campaign = uow.campaigns.get(tenant.id, ref)
        if campaign.status not in allowed_from or not uow.campaigns.set_status(
            campaign.id, campaign.status, target, now
        ):
            raise InvalidCampaignTransition(f"a {campaign.status} campaign cannot {action}")
        if target is CampaignStatus.RUNNING:
            uow.deliveries.queue_planned(campaign.id, now)  # paused while still scheduled
        if target is CampaignStatus.CANCELLED and campaign.status is CampaignStatus.DRAFT:
            # A draft has no deliveries; rows left by a launch that failed go.
            uow.deliveries.discard(campaign.id)
        elif target is CampaignStatus.CANCELLED:
            uow.deliveries.cancel_pending(campaign.id, now)
        audit(uow, context, tenant.id, f"campaign.{action}", "campaign", campaign.id)
        uow.commit()
        return CampaignProgress(
            uow.campaigns.get(tenant.id, campaign.id), uow.deliveries.progress(campaign.id)
        )


def campaign_progress(uow: UnitOfWork, tenant_ref: TenantRef, ref: str) -> CampaignProgress:
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        campaign = uow.campaigns.get(tenant.id, ref)
        if campaign.status is CampaignStatus.DRAFT:
            # Not planned yet: rows a failed launch left behind are not its progress.
            return CampaignProgress(campaign, {})
        return CampaignProgress(campaign, uow.deliveries.progress(campaign.id))


def create_list(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    name: str,
    contact_ids: list[uuid.UUID],
    now: datetime | None = None,
) -> tuple[uuid.UUID, int]:
    """A named list of contacts to narrow campaign audiences; commits. (id, members added)"""
    if not name.strip() or len(name) > 200:
        raise UnknownValue("a list needs a name of 1-200 characters", field="name")
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        list_id = new_id()
        uow.lists.create(tenant.id, list_id, name.strip(), now or utcnow())
        added = uow.lists.add_members(tenant.id, list_id, contact_ids)
        uow.commit()
    return list_id, added
