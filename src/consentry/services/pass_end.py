"""Ending permission passes at their deadline: the members who did not renew lapse.

For every member still active on the event it started with, a ``lapsed`` event is appended
(chained in one batch, folded into the state); members who renewed (by the link or by any new
affirmative act) and members no longer active (who withdrew meanwhile, for instance) are left
as they are. Messages of the pass not sent yet are cancelled. Runs hourly in the workers
(``end_due_passes``) and from ``consentry pass end``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from consentry.domain.consent import (
    ConsentAction,
    ConsentMethod,
    ConsentState,
    Evidence,
    EvidenceDigests,
    apply_event,
)
from consentry.domain.delivery import CampaignStatus
from consentry.domain.passes import (
    ACTOR_PREFIX,
    MemberOutcome,
    PassNotDue,
    PassStatus,
    outcome_at_end,
)
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.consent import event_about
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

log = logging.getLogger(__name__)
_LIVE = (CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.RUNNING,
         CampaignStatus.PAUSED)  # fmt: skip


def _lapse(uow: UnitOfWork, pass_id: uuid.UUID, states: list[ConsentState], now: datetime) -> None:
    """One chained batch of ``lapsed`` events, folded into the states (the caller commits)."""
    if not states:
        return
    # A "no": messages to these addresses already past their final check leave first.
    uow.fences.exclusive(s.point_key for s in states)
    evidence = Evidence(method=ConsentMethod.API, actor=f"{ACTOR_PREFIX}{pass_id}")
    none = EvidenceDigests(None, None, None, None)
    events = [(event_about(s, ConsentAction.LAPSED, s.basis, evidence, now), none) for s in states]
    by_contact = {s.contact_id: s for s in states}
    for event in uow.ledger.append_many(events):
        uow.consent_states.put(apply_event(by_contact[event.contact_id], event))


def _end(uow: UnitOfWork, tenant_id: uuid.UUID, pass_id: uuid.UUID, now: datetime) -> int:
    """End one pass inside the caller's transaction; the number lapsed."""
    found = uow.passes.get(tenant_id, pass_id)
    if found.status is not PassStatus.RUNNING or found.deadline > now:
        raise PassNotDue(
            "the pass has ended already" if found.status is PassStatus.ENDED
            else f"the pass runs until its deadline, {found.deadline.isoformat()}",
            field="pass",
        )  # fmt: skip
    if not uow.passes.mark_ended(pass_id, now):  # locks the pass: renewals in progress finish
        raise PassNotDue("the pass has ended already", field="pass")
    campaign = uow.campaigns.get(tenant_id, found.campaign_id)
    if uow.deliveries.cancel_pending(campaign.id, now) and campaign.status in _LIVE:
        uow.campaigns.set_status(campaign.id, campaign.status, CampaignStatus.CANCELLED, now)
    outcomes: dict[uuid.UUID, MemberOutcome] = {}
    to_lapse: list[ConsentState] = []
    for contact_id, start_event_id, state in uow.passes.undecided(pass_id):
        outcome = outcome_at_end(
            start_event_id,
            None if state is None else state.status,
            None if state is None else state.event_id,
        )
        outcomes[contact_id] = outcome
        if outcome is MemberOutcome.LAPSED and state is not None:
            to_lapse.append(state)
    _lapse(uow, pass_id, to_lapse, now)
    uow.passes.set_outcomes(pass_id, outcomes)
    return len(to_lapse)


def end_pass(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    pass_id: uuid.UUID,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> int:
    """End one pass whose deadline has passed (PassNotDue before it, or once ended); commits.
    The number of members lapsed."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        lapsed = _end(uow, tenant.id, pass_id, now)
        audit(uow, context, tenant.id, "permission_pass.end", "permission_pass", pass_id)
        uow.commit()
    return lapsed


def end_due_passes(uow: UnitOfWork, *, now: datetime | None = None) -> dict[uuid.UUID, int]:
    """End every running pass whose deadline has passed, in every tenant, one transaction per
    pass; pass id -> members lapsed."""
    now = now or utcnow()
    with uow:
        due = uow.passes.due(now)
    ended: dict[uuid.UUID, int] = {}
    for tenant_id, pass_id in due:
        with uow:
            try:
                ended[pass_id] = _end(uow, tenant_id, pass_id, now)
            except PassNotDue:
                continue  # another worker ended it first
            uow.commit()
        log.info("permission pass ended", extra={"pass_id": str(pass_id)})
    return ended
