"""/v1/consent: record grants, requests, confirmations and withdrawals; read a contact's history."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel

from consentry.domain.access import Scope
from consentry.services import consent as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, TenantDep
from consentry.web.schemas import ConsentEventOut, ConsentIn
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


@router.post(
    "/consent",
    status_code=status.HTTP_201_CREATED,
    response_model=RecordedOut,
    summary="Append a consent event with its evidence to the ledger",
)
def record(body: ConsentIn, c: ContainerDep, context: Writer, tenant: TenantDep) -> RecordedOut:
    recorded = service.record_consent(
        c.uow(),
        tenant,
        service.ConsentRequest(
            contact=body.contact,
            topic=body.topic,
            channel=body.channel,
            action=body.action,
            basis=body.basis,
            evidence=body.evidence.to_evidence(context.principal.actor),
            occurred_at=body.occurred_at,
        ),
        context=context,
    )
    return RecordedOut(
        event_id=recorded.event.id,
        seq=recorded.event.seq,
        hash=recorded.event.hash,
        state=recorded.state.status.value,
        confirmed=recorded.state.confirmed,
    )


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
