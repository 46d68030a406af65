"""/v1/messages, /v1/templates and /v1/sender-domains: what a tenant sends, and from where.

A transactional message is decided by the gate when it is queued and again when it is sent;
it is sent by the workers (with a broker the route asks them to start at once; without one,
the ``consentry worker`` process sends what is queued, never the request).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, status

from consentry.bootstrap import outbound_config
from consentry.domain.access import Scope, require
from consentry.domain.delivery import DeliveryStatus
from consentry.services import messages as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, TenantDep
from consentry.web.routes.campaigns import MAX_ROW_ID, NOT_QUEUED_HERE, enqueue_dispatch
from consentry.web.schemas_delivery import (
    DeliveryOut,
    MessageIn,
    MessageOut,
    PreviewOut,
    RegisteredDomainOut,
    SenderDomainIn,
    SenderDomainOut,
    TemplateIn,
    TemplateOut,
    json_object,
)
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1")
Sender = Annotated[RequestContext, Depends(needs(Scope.SEND))]
MessageReader = Annotated[RequestContext, Depends(needs(Scope.MESSAGES_READ))]
TemplateReader = Annotated[RequestContext, Depends(needs(Scope.TEMPLATES_READ))]
TemplateWriter = Annotated[RequestContext, Depends(needs(Scope.TEMPLATES_WRITE))]
Admin = Annotated[RequestContext, Depends(needs(Scope.ADMIN))]
TemplateRef = Annotated[
    str,
    Path(min_length=1, max_length=200, pattern=r"^[^\x00]+$", description="Template id or name."),
]


@router.post(
    "/messages",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=MessageOut,
    tags=["messages"],
    summary="Queue one service message through the gate; an Idempotency-Key sends it once"
    + NOT_QUEUED_HERE,
)
def send(
    body: MessageIn,
    c: ContainerDep,
    context: Sender,
    tenant: TenantDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=255,
            description="The same key returns the first message instead of sending another.",
        ),
    ] = None,
) -> MessageOut:
    request = service.MessageRequest(body.contact, body.template, body.data, idempotency_key)
    sent = service.send_message(c.uow(), tenant, request, context=context)
    if sent.created and sent.delivery.status is DeliveryStatus.QUEUED:
        enqueue_dispatch(c, None)
    return MessageOut.of(sent)


@router.get(
    "/messages/{message_id}",
    response_model=DeliveryOut,
    tags=["messages"],
    summary="A message's delivery: status, reasons and times (no personal data)",
)
def read_message(
    message_id: Annotated[int, Path(ge=1, le=MAX_ROW_ID)],
    c: ContainerDep,
    _context: MessageReader,
    tenant: TenantDep,
) -> DeliveryOut:
    return DeliveryOut.of(service.get_message(c.read_uow(), tenant, message_id))


@router.post(
    "/templates",
    status_code=status.HTTP_201_CREATED,
    response_model=TemplateOut,
    tags=["templates"],
    summary="Add a template; it must compile, with what its channel needs",
)
def create_template(
    body: TemplateIn, c: ContainerDep, context: TemplateWriter, tenant: TenantDep
) -> TemplateOut:
    known = outbound_config(c.settings).whatsapp_templates
    created = service.create_template(
        c.uow(), tenant, body.to_input(), known_whatsapp_templates=known, context=context
    )
    return TemplateOut.of(created)


@router.get(
    "/templates", response_model=list[TemplateOut], tags=["templates"], summary="The templates"
)
def list_templates(
    c: ContainerDep, _context: TemplateReader, tenant: TenantDep
) -> list[TemplateOut]:
    return [TemplateOut.of(t) for t in service.list_templates(c.read_uow(), tenant)]


@router.get(
    "/templates/{template}/preview",
    response_model=PreviewOut,
    tags=["templates"],
    summary="Render as a contact (or a sample) gets it: compliance parts, SMS segments, "
    "review findings; writes nothing",
)
def preview(
    template: TemplateRef,
    c: ContainerDep,
    context: TemplateReader,
    tenant: TenantDep,
    *,
    contact: Annotated[
        str | None,
        Query(min_length=1, max_length=320, description="Contact id, email or phone."),
    ] = None,
    data: Annotated[
        str | None, Query(max_length=8000, description="Template data: a JSON object.")
    ] = None,
) -> PreviewOut:
    if contact is not None:  # the rendering shows the contact's personal data
        require(context.principal, Scope.CONTACTS_READ)
    found = service.preview_template(
        c.read_uow(), tenant, template, c.composer(), contact_ref=contact, data=json_object(data)
    )
    return PreviewOut.of(found)


@router.post(
    "/sender-domains",
    status_code=status.HTTP_201_CREATED,
    response_model=RegisteredDomainOut,
    tags=["sender domains"],
    summary="Register a domain to send email from; with a DKIM selector, the TXT record to publish",
)
def register_domain(
    body: SenderDomainIn, c: ContainerDep, context: Admin, tenant: TenantDep
) -> RegisteredDomainOut:
    registered = service.register_sender_domain(
        c.uow(), tenant, body.domain, dkim_selector=body.dkim_selector, context=context
    )
    return RegisteredDomainOut.registered(registered)


@router.get(
    "/sender-domains",
    response_model=list[SenderDomainOut],
    tags=["sender domains"],
    summary="Domains the tenant sends email from",
)
def list_domains(
    c: ContainerDep, _context: TemplateReader, tenant: TenantDep
) -> list[SenderDomainOut]:
    return [SenderDomainOut.of(d) for d in service.list_sender_domains(c.read_uow(), tenant)]
