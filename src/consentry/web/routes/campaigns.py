"""/v1/campaigns and /v1/lists: draft, simulate, launch, steer and follow a campaign.

Launching and resuming queue deliveries; they are sent by the workers. With a broker
(``CONSENTRY_BROKER_URL``) the route asks the workers to start at once; without one, the
``consentry worker`` process (or the command line) sends what is queued, never the request.
"""

from __future__ import annotations

import logging
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import JSONResponse

from consentry.bootstrap import Container
from consentry.domain.access import Scope
from consentry.domain.campaigns import ContentNotCompliant, Delivery
from consentry.domain.delivery import CampaignStatus, DeliveryStatus
from consentry.services import campaigns as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, TenantDep
from consentry.web.problems import problem
from consentry.web.schemas_delivery import (
    CONTENT_PROBLEM,
    CampaignIn,
    CampaignOut,
    DeliveryOut,
    DeliveryPage,
    ListIn,
    ListOut,
    ProgressOut,
    SimulationOut,
)
from consentry.web.scopes import needs

log = logging.getLogger("consentry.http")

router = APIRouter(prefix="/v1", tags=["campaigns"])
Reader = Annotated[RequestContext, Depends(needs(Scope.CAMPAIGNS_READ))]
Writer = Annotated[RequestContext, Depends(needs(Scope.CAMPAIGNS_WRITE))]
Sender = Annotated[RequestContext, Depends(needs(Scope.SEND))]
CampaignRef = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=r"^[^\x00]+$", description="Campaign id or name."),
]
MAX_ROW_ID = 2**63 - 1  # deliveries are numbered by a signed 64-bit key
NOT_QUEUED_HERE = " (sent by the workers; without a broker, by `consentry worker`)"


def enqueue_dispatch(c: Container, campaign_id: uuid.UUID | None) -> None:
    """With a broker, ask the workers to send now (after commit). Without one nothing is
    dispatched inside the request: the ``consentry worker`` process sends what is queued."""
    if not c.settings.broker_url:
        return
    from consentry.workers import celery_app  # Celery is loaded only when a broker is set

    try:
        celery_app.enqueue_dispatch(c.settings, campaign_id, parallel=4 if campaign_id else 1)
    except Exception:  # noqa: BLE001  (committed already: the workers' tick picks it up)
        log.warning("could not reach the broker", extra={"campaign_id": str(campaign_id)})


@router.post(
    "/campaigns",
    status_code=status.HTTP_201_CREATED,
    response_model=CampaignOut,
    summary="Create a draft campaign: audience, topic, template, schedule",
)
def create(body: CampaignIn, c: ContainerDep, context: Writer, tenant: TenantDep) -> CampaignOut:
    spec = body.to_input()
    return CampaignOut.of(
        service.create_campaign(c.uow(), tenant, spec, context.principal.actor, context=context)
    )


@router.get("/campaigns", response_model=list[CampaignOut], summary="The tenant's campaigns")
def list_all(c: ContainerDep, _context: Reader, tenant: TenantDep) -> list[CampaignOut]:
    return [CampaignOut.of(x) for x in service.list_campaigns(c.read_uow(), tenant)]


@router.get("/campaigns/{campaign}", response_model=CampaignOut, summary="Read a campaign")
def read(
    campaign: CampaignRef, c: ContainerDep, _context: Reader, tenant: TenantDep
) -> CampaignOut:
    return CampaignOut.of(service.get_campaign(c.read_uow(), tenant, campaign))


@router.post(
    "/campaigns/{campaign}/simulate",
    response_model=SimulationOut,
    summary="Who would receive it now, by reason, with refused examples; writes nothing",
)
def simulate(
    campaign: CampaignRef, c: ContainerDep, _context: Reader, tenant: TenantDep
) -> SimulationOut:
    return SimulationOut.of(service.simulate_campaign(c.read_uow(), tenant, campaign))


@router.post(
    "/campaigns/{campaign}/launch",
    response_model=ProgressOut,
    responses=CONTENT_PROBLEM,
    summary="Review the content, plan every delivery through the gate and queue them"
    + NOT_QUEUED_HERE,
)
def launch(
    campaign: CampaignRef, c: ContainerDep, context: Sender, tenant: TenantDep
) -> ProgressOut | JSONResponse:
    reviewer = c.composer().reviewer
    try:
        progress = service.launch_campaign(c.uow(), tenant, campaign, reviewer, context=context)
    except ContentNotCompliant as exc:
        findings = [{"code": code, "message": message} for code, message in exc.findings]
        return problem(422, exc.code, exc.message, extra={"findings": findings})
    if progress.campaign.status is CampaignStatus.RUNNING:
        enqueue_dispatch(c, progress.campaign.id)
    return ProgressOut.of(progress)


@router.post(
    "/campaigns/{campaign}/pause",
    response_model=ProgressOut,
    summary="Stop claiming deliveries (messages in flight finish); 409 unless running or scheduled",
)
def pause(
    campaign: CampaignRef, c: ContainerDep, context: Writer, tenant: TenantDep
) -> ProgressOut:
    return ProgressOut.of(
        service.change_campaign(c.uow(), tenant, campaign, "pause", context=context)
    )


@router.post(
    "/campaigns/{campaign}/resume",
    response_model=ProgressOut,
    summary="Continue a paused campaign; 409 unless paused" + NOT_QUEUED_HERE,
)
def resume(
    campaign: CampaignRef, c: ContainerDep, context: Sender, tenant: TenantDep
) -> ProgressOut:
    progress = service.change_campaign(c.uow(), tenant, campaign, "resume", context=context)
    enqueue_dispatch(c, progress.campaign.id)
    return ProgressOut.of(progress)


@router.post(
    "/campaigns/{campaign}/cancel",
    response_model=ProgressOut,
    summary="Cancel every delivery that has not left yet; 409 once completed or cancelled",
)
def cancel(
    campaign: CampaignRef, c: ContainerDep, context: Writer, tenant: TenantDep
) -> ProgressOut:
    return ProgressOut.of(
        service.change_campaign(c.uow(), tenant, campaign, "cancel", context=context)
    )


@router.get(
    "/campaigns/{campaign}/status",
    response_model=ProgressOut,
    summary="Progress: deliveries by status, total and still to send",
)
def read_status(
    campaign: CampaignRef, c: ContainerDep, _context: Reader, tenant: TenantDep
) -> ProgressOut:
    return ProgressOut.of(service.campaign_progress(c.read_uow(), tenant, campaign))


@router.get(
    "/campaigns/{campaign}/deliveries",
    response_model=DeliveryPage,
    summary="The campaign's deliveries in id order (ids, status, reasons, times; no personal data)",
)
def deliveries(
    campaign: CampaignRef,
    c: ContainerDep,
    _context: Reader,
    tenant: TenantDep,
    *,
    status_is: Annotated[
        DeliveryStatus | None, Query(alias="status", description="Only this status")
    ] = None,
    after: Annotated[
        int, Query(ge=0, le=MAX_ROW_ID, description="next_cursor of the previous page")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> DeliveryPage:
    found = _campaign_deliveries(c, tenant, campaign, status=status_is, after=after, limit=limit)
    next_cursor = found[-1].id if len(found) == limit else None
    return DeliveryPage(items=[DeliveryOut.of(d) for d in found], next_cursor=next_cursor)


def _campaign_deliveries(
    c: Container,
    tenant: uuid.UUID,
    ref: str,
    *,
    status: DeliveryStatus | None,
    after: int,
    limit: int,
) -> list[Delivery]:
    """A page of one campaign's deliveries. Stands in for a use case of
    ``services.campaigns`` (none lists deliveries yet): the tenant-scoped campaign lookup
    comes first, so another tenant's campaign is not found."""
    found = service.get_campaign(c.read_uow(), tenant, ref)
    with c.read_uow() as uow:
        return uow.deliveries.of_campaign(found.id, status, after, limit)


@router.post(
    "/lists",
    status_code=status.HTTP_201_CREATED,
    response_model=ListOut,
    summary="A named list of contacts to narrow campaign audiences",
)
def create_list(body: ListIn, c: ContainerDep, _context: Writer, tenant: TenantDep) -> ListOut:
    list_id, added = service.create_list(c.uow(), tenant, body.name, body.contacts)
    return ListOut(id=list_id, name=body.name.strip(), added=added)
