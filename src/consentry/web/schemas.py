"""Request and response bodies of the API (pydantic), translated to and from domain objects."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentMethod,
    Evidence,
    Relationship,
)
from consentry.domain.model import Category, Channel, Contact, PolicyDocument, PolicyKind, Topic
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.services.consent import HistoryEntry
from consentry.services.contacts import ContactInput


class Strict(BaseModel):
    """Unknown fields are refused, and so is NUL in any text (no database stores it)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("text may not contain NUL characters")
        return value


class ContactIn(Strict):
    name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    whatsapp: str | None = Field(default=None, max_length=40)
    postal_address: str | None = Field(default=None, max_length=500)
    country: str | None = Field(default=None, max_length=2)
    time_zone: str | None = Field(default=None, max_length=64)
    locale: str | None = Field(default=None, max_length=16)
    date_of_birth: date | None = None
    age_attested: bool = False
    external_ref: str | None = Field(default=None, max_length=200)

    def to_input(self) -> ContactInput:
        return ContactInput(**self.model_dump())


class ContactOut(BaseModel):
    id: uuid.UUID
    name: str | None
    email: str | None
    phone: str | None
    whatsapp: str | None
    postal_address: str | None
    country: str | None
    time_zone: str | None
    locale: str | None
    date_of_birth: date | None
    age_attested: bool
    external_ref: str | None
    created_at: datetime | None

    @classmethod
    def of(cls, c: Contact) -> ContactOut:
        return cls(
            id=c.id,
            name=c.name,
            email=c.email,
            phone=c.phone,
            whatsapp=c.whatsapp,
            postal_address=c.postal_address,
            country=c.country,
            time_zone=c.time_zone,
            locale=c.locale,
            date_of_birth=c.date_of_birth,
            age_attested=c.age_attested,
            external_ref=c.external_ref,
            created_at=c.created_at,
        )


class ContactPage(BaseModel):
    items: list[ContactOut]
    next_cursor: str | None


class EvidenceIn(Strict):
    method: ConsentMethod
    source: str | None = Field(default=None, max_length=2000)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=1000)
    policy_document_id: uuid.UUID | None = None
    disclosure_hash: str | None = Field(default=None, max_length=80)
    import_batch_id: uuid.UUID | None = None
    inbound_message_id: str | None = Field(default=None, max_length=200)
    relationship: Relationship | None = None
    note: str | None = Field(default=None, max_length=2000)

    def to_evidence(self, actor: str) -> Evidence:
        return Evidence(actor=actor, **self.model_dump())


class ConsentIn(Strict):
    action: ConsentAction = Field(
        default=ConsentAction.GRANTED,
        description="granted, requested (awaiting confirmation), confirmed or withdrawn.",
    )
    contact: str = Field(
        min_length=1, max_length=320, description="Contact id, email address or phone number."
    )
    topic: str = Field(min_length=1, max_length=64)
    channel: Channel
    basis: ConsentBasis = ConsentBasis.EXPRESS
    evidence: EvidenceIn
    occurred_at: AwareDatetime | None = Field(
        default=None, description="When it happened, with a UTC offset; default now."
    )


class ConsentEventOut(BaseModel):
    id: uuid.UUID
    seq: int
    topic: str
    channel: Channel
    action: str
    basis: str
    occurred_at: datetime
    recorded_at: datetime
    expires_at: datetime | None
    method: str
    source: str | None
    ip_address: str | None
    user_agent: str | None
    policy_document_id: uuid.UUID | None
    disclosure_hash: str | None
    actor: str | None
    inbound_message_id: str | None
    hash: str

    @classmethod
    def of(cls, entry: HistoryEntry) -> ConsentEventOut:
        e, ev = entry.event, entry.event.evidence
        return cls(
            id=e.id,
            seq=e.seq,
            topic=entry.topic_key,
            channel=e.channel,
            action=e.action.value,
            basis=e.basis.value,
            occurred_at=e.occurred_at,
            recorded_at=e.recorded_at,
            expires_at=e.expires_at,
            method=ev.method.value,
            source=ev.source,
            ip_address=ev.ip_address,
            user_agent=ev.user_agent,
            policy_document_id=ev.policy_document_id,
            disclosure_hash=ev.disclosure_hash,
            actor=ev.actor,
            inbound_message_id=ev.inbound_message_id,
            hash=e.hash,
        )


class SuppressionIn(Strict):
    address: str = Field(min_length=1, max_length=500)
    channels: list[Channel] = Field(min_length=1, max_length=5)
    reason: SuppressionReason = SuppressionReason.MANUAL
    scope: SuppressionScope = SuppressionScope.ALL
    note: str | None = Field(default=None, max_length=2000)


class SuppressionOut(BaseModel):
    id: uuid.UUID
    channel: Channel
    scope: SuppressionScope
    reason: SuppressionReason
    platform_wide: bool
    created_at: datetime
    source: str | None
    note: str | None
    lifted_at: datetime | None

    @classmethod
    def of(cls, s: Suppression) -> SuppressionOut:
        return cls(
            id=s.id,
            channel=s.channel,
            scope=s.scope,
            reason=s.reason,
            platform_wide=s.tenant_id is None,
            created_at=s.created_at,
            source=s.source,
            note=s.note,
            lifted_at=s.lifted_at,
        )


class TopicIn(Strict):
    key: str = Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]+$")
    name: str = Field(min_length=1, max_length=200)
    category: Category
    requires_double_opt_in: bool = False
    description: str = Field(default="", max_length=2000)


class TopicOut(BaseModel):
    id: uuid.UUID
    key: str
    name: str
    category: Category
    requires_double_opt_in: bool
    umbrella: bool
    description: str

    @classmethod
    def of(cls, t: Topic) -> TopicOut:
        return cls(
            id=t.id,
            key=t.key,
            name=t.name,
            category=t.category,
            requires_double_opt_in=t.requires_double_opt_in,
            umbrella=t.umbrella,
            description=t.description,
        )


class PolicyIn(Strict):
    kind: PolicyKind
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=200_000)
    locale: str = Field(default="en", min_length=2, max_length=16)


class PolicyOut(BaseModel):
    id: uuid.UUID
    kind: PolicyKind
    version: int
    title: str
    locale: str
    status: str
    content_hash: str
    created_at: datetime
    published_at: datetime | None
    body: str

    @classmethod
    def of(cls, d: PolicyDocument) -> PolicyOut:
        return cls(
            id=d.id,
            kind=d.kind,
            version=d.version,
            title=d.title,
            locale=d.locale,
            status=d.status.value,
            content_hash=d.content_hash,
            created_at=d.created_at,
            published_at=d.published_at,
            body=d.body,
        )
