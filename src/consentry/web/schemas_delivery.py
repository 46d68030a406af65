"""Request and response bodies for sending: campaigns, lists, templates, sender domains, messages.

Delivery rows go out without personal data: ids, statuses, reason codes and timestamps only.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field

from consentry.domain.campaigns import (
    AudienceFilter,
    Campaign,
    CampaignProgress,
    Delivery,
    SenderDomain,
    Simulation,
)
from consentry.domain.content import Finding
from consentry.domain.delivery import CampaignStatus, DeliveryStatus
from consentry.domain.errors import UnknownValue
from consentry.domain.model import Channel
from consentry.domain.templates import Template
from consentry.services.campaigns import CampaignInput
from consentry.services.messages import Preview, RegisteredDomain, SentMessage, TemplateInput
from consentry.web.problems import PROBLEM, Problem
from consentry.web.schemas import Strict


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text may not contain NUL characters")
    return value


def json_object(text: str | None) -> dict[str, Any] | None:
    """A JSON object passed as text (a query parameter), or None."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise UnknownValue("data must be a JSON object", field="data") from exc
    if not isinstance(value, dict):
        raise UnknownValue("data must be a JSON object", field="data")
    return value


# Strict checks a model's own text fields; text inside lists is checked by this type.
Text = Annotated[str, AfterValidator(_no_nul)]
FilterValue = Annotated[Text, Field(min_length=1, max_length=64)]


# -- campaigns and lists -----------------------------------------------------------------------


class AudienceIn(Strict):
    """Contacts whose field is one of the values, for each field given (AND across fields)."""

    country: list[FilterValue] | None = Field(default=None, max_length=250)
    locale: list[FilterValue] | None = Field(default=None, max_length=250)
    time_zone: list[FilterValue] | None = Field(default=None, max_length=250)

    def to_filter(self) -> AudienceFilter:
        given = self.model_dump(exclude_none=True)
        return AudienceFilter({name: tuple(values) for name, values in given.items()})


class CampaignIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    topic: str = Field(min_length=1, max_length=64, description="Topic key.")
    template: str = Field(min_length=1, max_length=200, description="Template name or id.")
    channel: Channel | None = Field(default=None, description="Default: the template's channel.")
    list: str | None = Field(
        default=None, min_length=1, max_length=200, description="Only this list (name or id)."
    )
    audience: AudienceIn = Field(default_factory=AudienceIn)
    from_address: str | None = Field(
        default=None, min_length=3, max_length=320, description="On a registered sender domain."
    )
    frequency_cap: str | None = Field(
        default=None,
        max_length=32,
        description="At most this many marketing messages per contact, e.g. '3/24h'.",
    )
    scheduled_at: AwareDatetime | None = Field(
        default=None, description="Start sending then instead of at launch (with a UTC offset)."
    )

    def to_input(self) -> CampaignInput:
        return CampaignInput(
            name=self.name,
            topic=self.topic,
            template=self.template,
            channel=self.channel,
            list=self.list,
            audience=self.audience.to_filter(),
            from_address=self.from_address,
            frequency_cap=self.frequency_cap,
            scheduled_at=self.scheduled_at,
        )


class CampaignOut(BaseModel):
    id: uuid.UUID
    name: str
    topic_id: uuid.UUID
    channel: Channel
    template_id: uuid.UUID
    status: CampaignStatus
    list_id: uuid.UUID | None
    audience: dict[str, list[str]]
    from_address: str | None
    frequency_cap: str | None
    scheduled_at: datetime | None
    plan_counts: dict[str, int] | None = Field(
        description="When launched: recipients by primary reason ('ALLOW' for allowed)."
    )
    created_by: str
    created_at: datetime
    planned_at: datetime | None
    launched_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, c: Campaign) -> CampaignOut:
        return cls(
            id=c.id,
            name=c.name,
            topic_id=c.topic_id,
            channel=c.channel,
            template_id=c.template_id,
            status=c.status,
            list_id=c.list_id,
            audience={k: list(v) for k, v in c.audience.fields.items()},
            from_address=c.from_address,
            frequency_cap=c.frequency_cap,
            scheduled_at=c.scheduled_at,
            plan_counts=c.plan_counts,
            created_by=c.created_by,
            created_at=c.created_at,
            planned_at=c.planned_at,
            launched_at=c.launched_at,
            finished_at=c.finished_at,
        )


class RefusedOut(BaseModel):
    contact_id: uuid.UUID
    reasons: list[str]


class SimulationOut(BaseModel):
    total: int
    eligible: int
    deferred: int
    by_reason: dict[str, int] = Field(description="Recipients by primary reason ('ALLOW').")
    refused_sample: list[RefusedOut]

    @classmethod
    def of(cls, s: Simulation) -> SimulationOut:
        return cls(
            total=s.total,
            eligible=s.eligible,
            deferred=s.deferred,
            by_reason=s.by_reason,
            refused_sample=[
                RefusedOut(contact_id=r.contact_id, reasons=list(r.reasons))
                for r in s.refused_sample
            ],
        )


class ProgressOut(BaseModel):
    campaign: CampaignOut
    by_status: dict[str, int] = Field(description="Deliveries by status.")
    total: int
    remaining: int = Field(description="Deliveries still waiting to be sent.")

    @classmethod
    def of(cls, p: CampaignProgress) -> ProgressOut:
        return cls(
            campaign=CampaignOut.of(p.campaign),
            by_status=p.by_status,
            total=p.total,
            remaining=p.remaining,
        )


class DeliveryOut(BaseModel):
    """One delivery, without personal data."""

    id: int
    campaign_id: uuid.UUID | None
    contact_id: uuid.UUID
    topic_id: uuid.UUID
    template_id: uuid.UUID
    channel: Channel
    status: DeliveryStatus
    reasons: list[str]
    attempts: int
    error_code: str | None
    planned_at: datetime
    updated_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            campaign_id=d.campaign_id,
            contact_id=d.contact_id,
            topic_id=d.topic_id,
            template_id=d.template_id,
            channel=d.channel,
            status=d.status,
            reasons=list(d.reasons),
            attempts=d.attempts,
            error_code=d.error_code,
            planned_at=d.planned_at,
            updated_at=d.updated_at,
            next_attempt_at=d.next_attempt_at,
            sent_at=d.sent_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    next_cursor: int | None = Field(description="Pass as `after` for the next page.")


class ListIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    contacts: list[uuid.UUID] = Field(max_length=10_000, description="Contact ids.")


class ListOut(BaseModel):
    id: uuid.UUID
    name: str
    added: int = Field(description="Contacts added (repeated ids count once).")


# -- templates and sender domains ---------------------------------------------------------------


class TemplateIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    topic: str = Field(min_length=1, max_length=64, description="Topic key.")
    channel: Channel
    text: str = Field(default="", max_length=100_000, description="Text body (Jinja2).")
    subject: str | None = Field(default=None, max_length=998, description="Email subject.")
    html: str | None = Field(default=None, max_length=500_000, description="Email HTML body.")
    whatsapp_template: str | None = Field(
        default=None, min_length=1, max_length=512, description="An approved template's name."
    )
    whatsapp_language: str = Field(default="en", min_length=2, max_length=16)
    whatsapp_parameters: list[Annotated[Text, Field(max_length=2000)]] = Field(
        default_factory=list, max_length=20, description="Jinja2 expressions, one per parameter."
    )

    def to_input(self) -> TemplateInput:
        return TemplateInput(
            name=self.name,
            topic=self.topic,
            channel=self.channel,
            text=self.text,
            subject=self.subject,
            html=self.html,
            whatsapp_template=self.whatsapp_template,
            whatsapp_language=self.whatsapp_language,
            whatsapp_parameters=tuple(self.whatsapp_parameters),
        )


class TemplateOut(BaseModel):
    id: uuid.UUID
    name: str
    topic_id: uuid.UUID
    channel: Channel
    subject: str | None
    text: str
    html: str | None
    whatsapp_template: str | None
    whatsapp_language: str
    whatsapp_parameters: list[str]
    created_at: datetime | None

    @classmethod
    def of(cls, t: Template) -> TemplateOut:
        return cls(
            id=t.id,
            name=t.name,
            topic_id=t.topic_id,
            channel=t.channel,
            subject=t.subject,
            text=t.text,
            html=t.html,
            whatsapp_template=t.whatsapp_template,
            whatsapp_language=t.whatsapp_language,
            whatsapp_parameters=list(t.whatsapp_parameters),
            created_at=t.created_at,
        )


class FindingOut(BaseModel):
    code: str
    severity: str = Field(description="error (blocks sending) or warning.")
    message: str
    field: str

    @classmethod
    def of(cls, f: Finding) -> FindingOut:
        return cls(code=f.code, severity=f.severity, message=f.message, field=f.field)


class SmsOut(BaseModel):
    encoding: str = Field(description="GSM-7 or UCS-2.")
    units: int
    segments: int
    per_segment: int


class PreviewOut(BaseModel):
    template_id: uuid.UUID
    channel: Channel
    subject: str | None
    text: str
    html: str | None
    whatsapp_parameters: list[str]
    sms: SmsOut | None
    findings: list[FindingOut]
    passed: bool = Field(description="No finding is an error.")

    @classmethod
    def of(cls, p: Preview) -> PreviewOut:
        sms = p.sms
        return cls(
            template_id=p.template.id,
            channel=p.template.channel,
            subject=p.subject,
            text=p.text,
            html=p.html,
            whatsapp_parameters=list(p.whatsapp_parameters),
            sms=None
            if sms is None
            else SmsOut(
                encoding=sms.encoding,
                units=sms.units,
                segments=sms.segments,
                per_segment=sms.per_segment,
            ),
            findings=[FindingOut.of(f) for f in p.findings],
            passed=not any(f.severity == "error" for f in p.findings),
        )


class SenderDomainIn(Strict):
    domain: str = Field(min_length=1, max_length=253, description="e.g. mail.example.com")
    dkim_selector: str | None = Field(
        default=None,
        min_length=1,
        max_length=63,
        description="Generate a DKIM key pair published under this selector.",
    )


class DnsRecordOut(BaseModel):
    type: str
    name: str
    value: str


class SenderDomainOut(BaseModel):
    id: uuid.UUID
    domain: str
    dkim_selector: str | None
    has_dkim_key: bool
    created_at: datetime

    @classmethod
    def of(cls, d: SenderDomain) -> SenderDomainOut:
        return cls(
            id=d.id,
            domain=d.domain,
            dkim_selector=d.dkim_selector,
            has_dkim_key=d.has_dkim_key,
            created_at=d.created_at,
        )


class RegisteredDomainOut(SenderDomainOut):
    dkim_record: DnsRecordOut | None = Field(description="The TXT record to publish for DKIM.")

    @classmethod
    def registered(cls, r: RegisteredDomain) -> RegisteredDomainOut:
        record = None
        if r.dkim_dns_name is not None and r.dkim_dns_record is not None:
            record = DnsRecordOut(type="TXT", name=r.dkim_dns_name, value=r.dkim_dns_record)
        return cls(**SenderDomainOut.of(r.domain).model_dump(), dkim_record=record)


# -- transactional messages ---------------------------------------------------------------------


class MessageIn(Strict):
    contact: str = Field(
        min_length=1, max_length=320, description="Contact id, email address or phone number."
    )
    template: str = Field(
        min_length=1, max_length=200, description="A service topic's template (name or id)."
    )
    data: dict[str, Any] = Field(
        default_factory=dict, description="Values the template reads as `data`."
    )


class MessageOut(BaseModel):
    """The stored message and the gate's decision when it was queued."""

    id: int
    status: DeliveryStatus
    verdict: str = Field(description="allow, deny or defer.")
    reasons: list[str]
    defer_until: datetime | None
    consent_event_id: uuid.UUID | None

    @classmethod
    def of(cls, sent: SentMessage) -> MessageOut:
        decision = sent.decision
        return cls(
            id=sent.delivery.id,
            status=sent.delivery.status,
            verdict=decision.verdict.value,
            reasons=list(decision.reasons),
            defer_until=decision.defer_until,
            consent_event_id=decision.consent_event_id,
        )


class ReviewErrorOut(BaseModel):
    code: str
    message: str


class ContentProblem(Problem):
    """A launch refused by the content review: each error it found."""

    findings: list[ReviewErrorOut] | None = None


CONTENT_PROBLEM: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "Invalid input; CONTENT_NOT_COMPLIANT lists the review's `findings`",
        "model": ContentProblem,
        "content": {PROBLEM: {}},
    }
}
