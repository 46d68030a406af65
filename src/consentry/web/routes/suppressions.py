"""/v1/suppressions: block addresses, list the blocks with their reasons, lift where allowed."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from consentry.domain.access import Scope
from consentry.services import suppressions as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, TenantDep
from consentry.web.schemas import SuppressionIn, SuppressionOut
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1/suppressions", tags=["suppressions"])
Reader = Annotated[RequestContext, Depends(needs(Scope.SUPPRESSIONS_READ))]
Writer = Annotated[RequestContext, Depends(needs(Scope.SUPPRESSIONS_WRITE))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=list[SuppressionOut],
    summary="Suppress an address on one or more channels (stored as a blind index)",
)
def create(
    body: SuppressionIn, c: ContainerDep, context: Writer, tenant: TenantDep
) -> list[SuppressionOut]:
    created = service.add_suppression(
        c.uow(),
        tenant,
        address=body.address,
        channels=body.channels,
        reason=body.reason,
        scope=body.scope,
        note=body.note,
        source="api",
        actor=context.principal.actor,
        context=context,
    )
    return [SuppressionOut.of(s) for s in created]


@router.get(
    "",
    response_model=list[SuppressionOut],
    summary="Suppressions that bind this tenant (its own and platform-wide)",
)
def list_all(
    c: ContainerDep,
    _context: Reader,
    tenant: TenantDep,
    include_lifted: Annotated[bool, Query()] = False,
) -> list[SuppressionOut]:
    return [
        SuppressionOut.of(s)
        for s in service.list_suppressions(c.read_uow(), tenant, include_lifted)
    ]


@router.delete(
    "/{suppression_id}",
    response_model=SuppressionOut,
    summary="Lift a manual block or an unsubscribe (other reasons are permanent)",
)
def lift(
    suppression_id: uuid.UUID, c: ContainerDep, context: Writer, tenant: TenantDep
) -> SuppressionOut:
    return SuppressionOut.of(
        service.lift_suppression(
            c.uow(), tenant, suppression_id, context.principal.actor, context=context
        )
    )
