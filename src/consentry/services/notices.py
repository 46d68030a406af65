"""Use cases for policy-change notices: create one (choose who the new version concerns), follow it.

Creating a notice writes it and its recipients, all queued, in one transaction; nothing is sent
inside the request. ``services/notice_sending.py`` sends them in leased batches (``consentry
worker``, the Celery workers, or ``consentry policy notify`` itself), checking each recipient
again at the moment of sending. Accepting lives in ``services/notice_acceptance.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.errors import PolicyDocumentNotFound
from consentry.domain.ids import new_id
from consentry.domain.model import Channel, PolicyDocument, PolicyStatus
from consentry.domain.notices import (
    NoticeReport,
    NoticeStatus,
    PolicyNotice,
    check_notice,
    report_of,
)
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


@dataclass(frozen=True, slots=True)
class NoticeView:
    notice: PolicyNotice
    document: PolicyDocument
    report: NoticeReport


def _published(uow: UnitOfWork, tenant_id: uuid.UUID, document_id: uuid.UUID) -> PolicyDocument:
    """The tenant's published version: drafts answer like documents that do not exist."""
    document = uow.policies.get(tenant_id, document_id)
    if document.status is not PolicyStatus.PUBLISHED:
        raise PolicyDocumentNotFound(f"policy document {document_id} not found")
    return document


def _view(uow: UnitOfWork, notice: PolicyNotice, document: PolicyDocument) -> NoticeView:
    return NoticeView(notice, document, report_of(uow.notices.counts(notice.id)))


def create_notice(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    document_id: uuid.UUID,
    channel: Channel,
    actor: str,
    *,
    ask_acceptance: bool = False,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> NoticeView:
    """Queue a notice about a published version (> 1) to every contact point it concerns that no
    earlier notice about it on ``channel`` has reached; commits once, or writes nothing.
    POLICY_DOCUMENT_NOT_FOUND for drafts and other tenants' documents, NOTICE_NOT_NEEDED for a
    first version, NOTICE_CHANNEL_INVALID for channels other than email and SMS."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        document = _published(uow, tenant.id, document_id)
        check_notice(document, channel)
        notice = PolicyNotice(
            id=new_id(),
            tenant_id=tenant.id,
            document_id=document.id,
            channel=channel,
            ask_acceptance=ask_acceptance,
            status=NoticeStatus.SENDING,
            created_by=actor,
            created_at=now,
        )
        uow.notices.add(notice)
        uow.notices.add_recipients(notice, document, now)
        uow.notices.finish_done(now)  # nobody concerned: done at once
        audit(uow, context, tenant.id, "policy_notice.create", "policy_notice", notice.id)
        view = _view(uow, uow.notices.get(tenant.id, notice.id), document)
        uow.commit()
    return view


def get_notice(uow: UnitOfWork, tenant_ref: TenantRef, notice_id: uuid.UUID) -> NoticeView:
    """One notice with its report; writes nothing."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        notice = uow.notices.get(tenant.id, notice_id)
        return _view(uow, notice, uow.policies.get(tenant.id, notice.document_id))


def list_notices(
    uow: UnitOfWork, tenant_ref: TenantRef, document_id: uuid.UUID
) -> list[NoticeView]:
    """The notices about one of the tenant's versions, newest first; writes nothing."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        document = uow.policies.get(tenant.id, document_id)
        return [_view(uow, n, document) for n in uow.notices.of_document(tenant.id, document.id)]
