"""/v1/permission-passes: ask a list or an import batch to reconfirm by a deadline.

Creating a pass plans and queues the reconfirmation messages (sent by the workers, like a
campaign's); at the deadline the workers end it and the members who did not renew lapse.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse

from consentry.domain.access import Scope
from consentry.domain.campaigns import ContentNotCompliant
from consentry.services import passes as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, TenantDep
from consentry.web.problems import problem
from consentry.web.routes.campaigns import NOT_QUEUED_HERE, enqueue_dispatch
from consentry.web.schemas_delivery import CONTENT_PROBLEM
from consentry.web.schemas_passes import PassIn, PassOut
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1", tags=["permission passes"])
Reader = Annotated[RequestContext, Depends(needs(Scope.CAMPAIGNS_READ))]
Sender = Annotated[RequestContext, Depends(needs(Scope.SEND))]


@router.post(
    "/permission-passes",
    status_code=status.HTTP_201_CREATED,
    response_model=PassOut,
    responses=CONTENT_PROBLEM,
    summary="Ask the active contact points of a list or an import batch to reconfirm by a "
    "deadline" + NOT_QUEUED_HERE,
)
def create(
    body: PassIn, c: ContainerDep, context: Sender, tenant: TenantDep
) -> PassOut | JSONResponse:
    reviewer = c.composer().reviewer
    actor = context.principal.actor
    try:
        view = service.create_pass(
            c.uow(), tenant, body.to_input(), actor, reviewer, context=context
        )
    except ContentNotCompliant as exc:
        findings = [{"code": code, "message": message} for code, message in exc.findings]
        return problem(422, exc.code, exc.message, extra={"findings": findings})
    enqueue_dispatch(c, view.permission_pass.campaign_id)
    return PassOut.of(view)


@router.get(
    "/permission-passes",
    response_model=list[PassOut],
    summary="The tenant's permission passes, newest first, with their reports",
)
def list_all(c: ContainerDep, _context: Reader, tenant: TenantDep) -> list[PassOut]:
    return [PassOut.of(v) for v in service.list_passes(c.read_uow(), tenant)]


@router.get(
    "/permission-passes/{pass_id}",
    response_model=PassOut,
    summary="A permission pass with its report: sent, refused by reason, renewed, lapsed, other",
)
def read(pass_id: uuid.UUID, c: ContainerDep, _context: Reader, tenant: TenantDep) -> PassOut:
    return PassOut.of(service.get_pass(c.read_uow(), tenant, pass_id))
