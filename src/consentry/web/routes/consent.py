"""/v1/consent: record grants, requests, confirmations and withdrawals; read a contact's history."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field

from consentry.domain.access import Scope
from consentry.domain.model import Channel
from consentry.services import confirmations
from consentry.services import consent as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, TenantDep, run_write
from consentry.web.schemas import ConsentEventOut, ConsentIn, Strict
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1", tags=["consent"])
Reader = Annotated[RequestContext, Depends(needs(Scope.CONSENT_READ))]
Writer = Annotated[RequestContext, Depends(needs(Scope.CONSENT_WRITE))]


class RecordedOut(BaseModel):
    event_id: uuid.UUID
    seq: int
    hash: str
    state: str
    confirmed: bool
    confirmation_sent: bool = False


class ResendIn(Strict):
    contact: str = Field(
        min_length=1, max_length=320, description="Contact id, email address or phone number."
    )
    topic: str = Field(min_length=1, max_length=64)
    channel: Channel


@router.post(
    "/consent",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordedOut,
    summary="Append a consent event with its evidence to the ledger",
)
async def record(
    body: ConsentIn, c: ContainerDep, context: Writer, tenant: TenantDep
) -> RecordedOut:
    """A ``requested`` event on email or SMS also sends the confirmation request (a link by
    email, a YES reply by SMS); see docs/confirmations.md."""
    request = service.ConsentRequest(
        contact=body.contact,
        topic=body.topic,
        channel=body.channel,
        action=body.action,
        basis=body.basis,
        evidence=body.evidence.to_evidence(context.principal.actor),
        occurred_at=body.occurred_at,
    )
    if confirmations.sends_confirmation(request):
        # Sending is I/O outside the database: the whole request keeps to a worker thread.
        done = await run_in_threadpool(
            confirmations.request_consent, c.uow(), c.confirmers(), tenant, request, context=context
        )
    else:
        # One transaction that commits at its end: the event loop may run it (run_write).
        recorded = await run_write(
            c, tenant, lambda uow: service.record_consent(uow, tenant, request, context=context)
        )
        done = confirmations.Requested(recorded, sent=False)
    event, state = done.recorded.event, done.recorded.state
    return RecordedOut(
        event_id=event.id,
        seq=event.seq,
        hash=event.hash,
        state=state.status.value,
        confirmed=state.confirmed,
        confirmation_sent=done.sent,
    )


@router.post(
    "/consent/confirmation",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send the confirmation request of a pending consent again (rate-limited)",
)
def resend(body: ResendIn, c: ContainerDep, context: Writer, tenant: TenantDep) -> dict[str, str]:
    confirmations.resend_confirmation(
        c.uow(),
        c.confirmers(),
        tenant,
        body.contact,
        body.topic,
        body.channel,
        context=context,
    )
    return {"status": "sent"}


@router.get(
    "/contacts/{contact_id}/consent",
    response_model=list[ConsentEventOut],
    summary="Every consent event of a contact, oldest first, with its evidence",
)
def history(
    contact_id: uuid.UUID, c: ContainerDep, context: Reader, tenant: TenantDep
) -> list[ConsentEventOut]:
    entries = service.consent_history(c.uow(), tenant, str(contact_id), context=context)
    return [ConsentEventOut.of(e) for e in entries]
