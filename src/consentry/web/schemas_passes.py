"""Request and response bodies of /v1/permission-passes: counts and ids, no personal data."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from consentry.domain.model import Channel
from consentry.domain.passes import PassStatus, SourceKind
from consentry.services.passes import PassInput, PassView
from consentry.web.schemas import Strict


class PassIn(Strict):
    topic: str = Field(min_length=1, max_length=64, description="Topic key.")
    channel: Channel = Field(description="email or sms.")
    deadline: AwareDatetime = Field(
        description="Who has not reconfirmed by then lapses (with a UTC offset; at most 90 days "
        "ahead)."
    )
    list: str | None = Field(
        default=None, min_length=1, max_length=200, description="The list (name or id)..."
    )
    import_id: uuid.UUID | None = Field(default=None, description="...or the import batch.")
    name: str | None = Field(default=None, min_length=1, max_length=200)
    subject: str | None = Field(
        default=None, min_length=1, max_length=200, description="Email subject (Jinja2)."
    )
    text: str | None = Field(
        default=None,
        min_length=1,
        max_length=10_000,
        description="Message text (Jinja2); must contain {{ data.reconfirm_url }}.",
    )
    disclosure_id: uuid.UUID | None = Field(
        default=None,
        description="The published disclosure the page shows and renewals cite. Default: the "
        "latest published consent disclosure.",
    )

    def to_input(self) -> PassInput:
        return PassInput(
            topic=self.topic,
            channel=self.channel,
            deadline=self.deadline,
            list=self.list,
            import_id=self.import_id,
            name=self.name,
            subject=self.subject,
            text=self.text,
            disclosure_id=self.disclosure_id,
        )


class PassReportOut(BaseModel):
    targeted: int = Field(description="Members: contact points whose consent was active.")
    sent: int = Field(description="Reconfirmation messages that left.")
    waiting: int = Field(description="Messages not sent yet.")
    failed: int = Field(description="Messages that failed, bounced or have no known outcome.")
    cancelled: int = Field(description="Messages not sent because the pass ended first.")
    refused: dict[str, int] = Field(description="Messages the gate refused, by reason.")
    renewed: int
    lapsed: int = Field(description="Lapsed at the deadline (0 until the pass ends).")
    other: int = Field(description="No longer active for another reason (withdrew meanwhile).")
    awaiting: int = Field(description="Running passes: members who have not answered yet.")


class PassOut(BaseModel):
    id: uuid.UUID
    name: str
    topic: str
    channel: Channel
    source: SourceKind
    source_id: uuid.UUID
    campaign_id: uuid.UUID
    disclosure_id: uuid.UUID
    deadline: datetime
    status: PassStatus
    created_at: datetime
    ended_at: datetime | None
    report: PassReportOut

    @classmethod
    def of(cls, view: PassView) -> PassOut:
        p, r = view.permission_pass, view.report
        return cls(
            id=p.id,
            name=p.name,
            topic=view.topic_key,
            channel=p.channel,
            source=p.source_kind,
            source_id=p.source_id,
            campaign_id=p.campaign_id,
            disclosure_id=p.disclosure_document_id,
            deadline=p.deadline,
            status=p.status,
            created_at=p.created_at,
            ended_at=p.ended_at,
            report=PassReportOut(
                targeted=r.targeted,
                sent=r.sent,
                waiting=r.waiting,
                failed=r.failed,
                cancelled=r.cancelled,
                refused=r.refused,
                renewed=r.renewed,
                lapsed=r.lapsed,
                other=r.other,
                awaiting=r.awaiting,
            ),
        )
