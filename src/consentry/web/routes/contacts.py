"""/v1/contacts: create, read, update, find by address, list with a cursor."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from pydantic import Field

from consentry.domain.access import Scope
from consentry.services import contacts as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, TenantDep
from consentry.web.schemas import ContactIn, ContactOut, ContactPage, Strict
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])
Reader = Annotated[RequestContext, Depends(needs(Scope.CONTACTS_READ))]
Writer = Annotated[RequestContext, Depends(needs(Scope.CONTACTS_WRITE))]


class LookupIn(Strict):
    address: str = Field(min_length=1, max_length=320, description="Email address or phone number.")


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ContactOut,
    summary="Add a contact (addresses validated, normalised, stored encrypted)",
)
def create(body: ContactIn, c: ContainerDep, context: Writer, tenant: TenantDep) -> ContactOut:
    return ContactOut.of(service.add_contact(c.uow(), tenant, body.to_input(), context=context))


@router.get("", response_model=ContactPage, summary="List contacts, oldest first")
def list_page(
    c: ContainerDep,
    context: Reader,
    tenant: TenantDep,
    cursor: Annotated[
        uuid.UUID | None, Query(description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> ContactPage:
    found = service.list_contacts(c.uow(), tenant, after=cursor, limit=limit, context=context)
    next_cursor = str(found[-1].id) if len(found) == limit else None
    return ContactPage(items=[ContactOut.of(x) for x in found], next_cursor=next_cursor)


@router.post(
    "/lookup",
    response_model=ContactOut,
    summary="Find a contact by email address or phone number (blind index)",
)
def lookup(body: LookupIn, c: ContainerDep, context: Reader, tenant: TenantDep) -> ContactOut:
    return ContactOut.of(service.get_contact(c.uow(), tenant, body.address, context=context))


@router.get("/{contact_id}", response_model=ContactOut, summary="Read a contact")
def read(contact_id: uuid.UUID, c: ContainerDep, context: Reader, tenant: TenantDep) -> ContactOut:
    return ContactOut.of(service.get_contact(c.uow(), tenant, str(contact_id), context=context))


@router.put(
    "/{contact_id}",
    response_model=ContactOut,
    summary="Replace a contact's details; a changed address starts without consent",
)
def update(
    contact_id: uuid.UUID, body: ContactIn, c: ContainerDep, context: Writer, tenant: TenantDep
) -> ContactOut:
    return ContactOut.of(
        service.update_contact(c.uow(), tenant, contact_id, body.to_input(), context=context)
    )


@router.delete(
    "/{contact_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase a contact: personal data scrubbed, ledger and a suppression kept",
)
def erase(contact_id: uuid.UUID, c: ContainerDep, context: Writer, tenant: TenantDep) -> None:
    service.erase_contact(c.uow(), tenant, contact_id, context=context)
