"""/v1/topics and /v1/policies: what a tenant sends, and the words it shows people."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from consentry.domain.access import Scope
from consentry.domain.model import PolicyKind
from consentry.services import tenancy
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, ContextDep, TenantDep
from consentry.web.schemas import PolicyIn, PolicyOut, TopicIn, TopicOut
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1", tags=["topics and policies"])
Admin = Annotated[RequestContext, Depends(needs(Scope.ADMIN))]


@router.get("/topics", response_model=list[TopicOut], summary="The tenant's topics")
def topics(c: ContainerDep, _context: ContextDep, tenant: TenantDep) -> list[TopicOut]:
    return [TopicOut.of(t) for t in tenancy.list_topics(c.read_uow(), tenant)]


@router.post(
    "/topics", status_code=status.HTTP_201_CREATED, response_model=TopicOut, summary="Add a topic"
)
def create_topic(body: TopicIn, c: ContainerDep, _context: Admin, tenant: TenantDep) -> TopicOut:
    return TopicOut.of(
        tenancy.create_topic(
            c.uow(),
            tenant,
            key=body.key,
            name=body.name,
            category=body.category,
            requires_double_opt_in=body.requires_double_opt_in,
            description=body.description,
        )
    )


@router.get(
    "/policies",
    response_model=list[PolicyOut],
    summary="Every version of the tenant's policy documents",
)
def policies(
    c: ContainerDep,
    _context: ContextDep,
    tenant: TenantDep,
    kind: Annotated[PolicyKind | None, Query()] = None,
) -> list[PolicyOut]:
    return [PolicyOut.of(d) for d in tenancy.list_policies(c.read_uow(), tenant, kind)]


@router.post(
    "/policies",
    status_code=status.HTTP_201_CREATED,
    response_model=PolicyOut,
    summary="Store the next version of a policy document as a draft",
)
def draft(body: PolicyIn, c: ContainerDep, _context: Admin, tenant: TenantDep) -> PolicyOut:
    return PolicyOut.of(
        tenancy.draft_policy(
            c.uow(), tenant, kind=body.kind, title=body.title, body=body.body, locale=body.locale
        )
    )


@router.post(
    "/policies/{document_id}/publish",
    response_model=PolicyOut,
    summary="Publish a draft: from now on it is immutable and consent may cite it",
)
def publish(
    document_id: uuid.UUID, c: ContainerDep, _context: Admin, tenant: TenantDep
) -> PolicyOut:
    return PolicyOut.of(tenancy.publish_policy(c.uow(), tenant, document_id))
