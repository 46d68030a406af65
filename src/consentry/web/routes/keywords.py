"""/v1/keywords: a tenant's own SMS and WhatsApp keywords and reply texts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Response, status

from consentry.domain.access import Scope
from consentry.services import tenant_keywords as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, ContextDep, TenantDep
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1", tags=["keywords"])
Admin = Annotated[RequestContext, Depends(needs(Scope.ADMIN))]
Config = Annotated[
    dict[str, dict[str, Any]],
    Body(
        description="Per language code: words added to opt_out, opt_in, help, fillers, refusal, "
        "negators (lists), and help_reply, opt_out_reply, opt_in_reply texts ($brand, "
        "$support_contact, $frequency). The deployment's words always stay. For example "
        '{"it": {"opt_out": ["basta"], "help": ["aiuto"]}}.',
    ),
]


@router.get(
    "/keywords",
    response_model=dict[str, dict[str, Any]],
    summary="The keywords and reply texts the tenant adds to the deployment's",
)
def read(c: ContainerDep, _context: ContextDep, tenant: TenantDep) -> dict[str, Any]:
    return service.get_keywords(c.read_uow(), tenant)


@router.put(
    "/keywords",
    response_model=dict[str, dict[str, Any]],
    summary="Replace the tenant's own keywords and reply texts",
)
def replace(body: Config, c: ContainerDep, context: Admin, tenant: TenantDep) -> dict[str, Any]:
    return service.set_keywords(c.uow(), tenant, body, context=context)


@router.delete(
    "/keywords",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Go back to the deployment's keywords",
)
def clear(c: ContainerDep, context: Admin, tenant: TenantDep) -> Response:
    service.clear_keywords(c.uow(), tenant, context=context)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
