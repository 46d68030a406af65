"""Policy-change notices: tell the people a new version concerns, and follow who accepted.

``POST /v1/policies/{document_id}/notices`` queues one notice per contact point the version
concerns and answers 202 at once: nothing is sent inside the request. With a broker the route
asks the workers to send now; without one, ``consentry worker`` sends what is queued. The
report (``GET /v1/policy-notices/{notice_id}``) counts targeted, waiting, sent, refused and
failed by reason, and accepted.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, Field

from consentry.bootstrap import Container
from consentry.domain.access import Scope
from consentry.domain.model import Channel, PolicyKind
from consentry.domain.notices import NoticeStatus
from consentry.services import notices as service
from consentry.services.audit import RequestContext
from consentry.web.deps import ContainerDep, ContextDep, TenantDep
from consentry.web.schemas import Strict
from consentry.web.scopes import needs

log = logging.getLogger("consentry.http")
router = APIRouter(prefix="/v1", tags=["policy notices"])
Admin = Annotated[RequestContext, Depends(needs(Scope.ADMIN))]


class NoticeIn(Strict):
    channel: Channel = Field(default=Channel.EMAIL, description="email or sms.")
    ask_acceptance: bool = Field(
        default=False,
        description='Add a link to a page where the person can press "I accept"; for a '
        "consent disclosure or WhatsApp opt-in, accepting gives the consent again on the new "
        "version.",
    )


class NoticeReportOut(BaseModel):
    targeted: int = Field(description="Contact points the new version concerns (one each).")
    waiting: int = Field(description="Notices not sent yet.")
    sent: int = Field(description="Notices that left (accepted ones included).")
    refused: dict[str, int] = Field(description="Not sent, by reason (SUPPRESSED_HARD_BOUNCE…).")
    failed: dict[str, int] = Field(description="The channel refused them, by its error code.")
    accepted: int


class NoticeOut(BaseModel):
    id: uuid.UUID
    document_id: uuid.UUID
    kind: PolicyKind
    version: int
    channel: Channel
    ask_acceptance: bool
    status: NoticeStatus
    created_at: datetime
    finished_at: datetime | None
    report: NoticeReportOut

    @classmethod
    def of(cls, view: service.NoticeView) -> NoticeOut:
        n, d, r = view.notice, view.document, view.report
        return cls(
            id=n.id,
            document_id=d.id,
            kind=d.kind,
            version=d.version,
            channel=n.channel,
            ask_acceptance=n.ask_acceptance,
            status=n.status,
            created_at=n.created_at,
            finished_at=n.finished_at,
            report=NoticeReportOut(
                targeted=r.targeted,
                waiting=r.waiting,
                sent=r.sent,
                refused=r.refused,
                failed=r.failed,
                accepted=r.accepted,
            ),
        )


def enqueue_notices(c: Container) -> None:
    """With a broker, ask the workers to send now (after commit); without one, the ``consentry
    worker`` process sends what is queued."""
    if not c.settings.broker_url:
        return
    from consentry.workers import celery_app  # Celery is loaded only when a broker is set

    try:
        celery_app.enqueue_notices(c.settings)
    except Exception:  # noqa: BLE001  (committed already: the workers' tick picks it up)
        log.warning("could not reach the broker")


@router.post(
    "/policies/{document_id}/notices",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=NoticeOut,
    summary="Tell the contact points a published version (> 1) concerns that it changed "
    "(sent by the workers; without a broker, by `consentry worker`)",
)
def create(
    document_id: uuid.UUID, body: NoticeIn, c: ContainerDep, context: Admin, tenant: TenantDep
) -> NoticeOut:
    view = service.create_notice(
        c.uow(), tenant, document_id, body.channel, context.principal.actor,
        ask_acceptance=body.ask_acceptance, context=context,
    )  # fmt: skip
    enqueue_notices(c)
    return NoticeOut.of(view)


@router.get(
    "/policies/{document_id}/notices",
    response_model=list[NoticeOut],
    summary="The notices about one version, newest first, with their reports",
)
def list_all(
    document_id: uuid.UUID, c: ContainerDep, _context: ContextDep, tenant: TenantDep
) -> list[NoticeOut]:
    return [NoticeOut.of(v) for v in service.list_notices(c.read_uow(), tenant, document_id)]


@router.get(
    "/policy-notices/{notice_id}",
    response_model=NoticeOut,
    summary="A notice's progress and report: sent, refused by reason, failed, accepted",
)
def read(
    notice_id: uuid.UUID, c: ContainerDep, _context: ContextDep, tenant: TenantDep
) -> NoticeOut:
    return NoticeOut.of(service.get_notice(c.read_uow(), tenant, notice_id))
