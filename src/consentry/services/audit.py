"""Recording access to personal data in the hash-chained audit log, and verifying it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.access import Principal
from consentry.domain.audit import PLATFORM_CHAIN_ID, AuditEntry
from consentry.domain.chain import ChainBreak
from consentry.domain.ids import new_id
from consentry.services.audit_seal import seal_audit
from consentry.services.clock import utcnow
from consentry.services.ledger import verify_chain_with_head
from consentry.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who is asking, from where, under which request id: what an audit entry records."""

    principal: Principal
    ip_address: str | None = None
    request_id: str | None = None


def record_access(
    uow: UnitOfWork,
    context: RequestContext,
    *,
    tenant_id: uuid.UUID | None,
    action: str,
    object_type: str,
    object_id: str | None,
    now: datetime | None = None,
) -> AuditEntry:
    """Append one entry inside the caller's open unit of work (commit is the caller's)."""
    entry = AuditEntry(
        id=new_id(),
        tenant_id=tenant_id or PLATFORM_CHAIN_ID,
        actor=context.principal.actor,
        action=action,
        object_type=object_type,
        object_id=object_id,
        at=now or utcnow(),
        ip_digest=uow.keys.digest(context.ip_address),
        request_id=context.request_id,
    )
    return uow.audit.append(entry)


@dataclass(frozen=True, slots=True)
class AuditReport:
    verified: int
    head_seq: int
    broken: ChainBreak | None


def verify_audit(uow: UnitOfWork, tenant_id: uuid.UUID) -> AuditReport:
    """Seal the tenant's waiting entries, then recompute its chain from the stored rows."""
    seal_audit(uow, tenant_id)
    with uow:
        verified, broken = verify_chain_with_head(
            uow.audit.links(tenant_id), uow.audit.head(tenant_id)
        )
        head_seq, _ = uow.audit.head(tenant_id)
    return AuditReport(verified, head_seq, broken)


def audit(  # noqa: PLR0917  (read as one sentence: who did what to which object)
    uow: UnitOfWork,
    context: RequestContext | None,
    tenant_id: uuid.UUID,
    action: str,
    object_type: str,
    object_id: object | None,
) -> None:
    """Record access when it comes through the API (``context``); the caller commits."""
    if context is not None:
        record_access(
            uow,
            context,
            tenant_id=tenant_id,
            action=action,
            object_type=object_type,
            object_id=None if object_id is None else str(object_id),
        )
