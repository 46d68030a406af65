"""Reading the captured outbox: what the embedded ``capture`` channel kept instead of sending.

A tenant's principal reads only its own tenant's messages; a platform operator (no tenant) reads
every tenant's. Another tenant's message is "not found", exactly like one that does not exist.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from consentry.domain.access import Principal, Scope, require
from consentry.services.audit import RequestContext, audit
from consentry.services.ports import CapturedMessage, OutboxStore, UnitOfWork

PAGE_SIZE = 50


@dataclass(frozen=True, slots=True)
class OutboxPage:
    messages: list[CapturedMessage]
    tenant_names: dict[uuid.UUID, str]
    older: int | None  # the ``before`` of the next (older) page, if there is one


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    message: CapturedMessage
    tenant_name: str


def visible_tenant(principal: Principal) -> uuid.UUID | None:
    """The tenant whose messages ``principal`` may read (None: every tenant's)."""
    require(principal, Scope.MESSAGES_READ)
    return principal.tenant_id


def _names(uow: UnitOfWork, tenant_id: uuid.UUID | None) -> dict[uuid.UUID, str]:
    tenants = [uow.tenants.get(tenant_id)] if tenant_id is not None else uow.tenants.list()
    return {t.id: t.name for t in tenants}


def outbox_page(
    uow: UnitOfWork,
    store: OutboxStore,
    principal: Principal,
    *,
    before: int | None = None,
    size: int = PAGE_SIZE,
) -> OutboxPage:
    """One page of captured messages, newest first; writes nothing."""
    tenant_id = visible_tenant(principal)
    found = store.list(tenant_id, size + 1, before)
    messages = found[:size]
    older = messages[-1].id if len(found) > size else None
    with uow:
        return OutboxPage(messages, _names(uow, tenant_id), older)


def outbox_message(
    uow: UnitOfWork, store: OutboxStore, context: RequestContext, capture_id: int
) -> OutboxMessage:
    """One captured message with its raw bytes; the read is recorded in the tenant's audit log
    (a captured message holds personal data). Commits that entry."""
    tenant_id = visible_tenant(context.principal)
    message = store.get(capture_id, tenant_id)
    with uow:
        name = uow.tenants.get(message.tenant_id).name
        audit(uow, context, message.tenant_id, "outbox.read", "captured_message", message.id)
        uow.commit()
    return OutboxMessage(message, name)
