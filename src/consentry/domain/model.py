"""The vocabulary of consentry (ARCHITECTURE.md section 1) as enums and frozen dataclasses."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum


class Channel(StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    VOICE = "voice"
    POST = "post"


class PointKind(StrEnum):
    """What kind of contact point a channel delivers to."""

    EMAIL = "email"
    PHONE = "phone"
    POSTAL = "postal"


POINT_KIND: dict[Channel, PointKind] = {
    Channel.EMAIL: PointKind.EMAIL,
    Channel.SMS: PointKind.PHONE,
    Channel.VOICE: PointKind.PHONE,
    Channel.WHATSAPP: PointKind.PHONE,
    Channel.POST: PointKind.POSTAL,
}

PHONE_CHANNELS = frozenset({Channel.SMS, Channel.VOICE})


def point_index_value(kind: PointKind, normalized: str) -> str:
    """The canonical string a blind index is computed over.

    Email local parts are case-insensitive at every large mailbox provider, so the index folds
    case (the stored address keeps it); postal addresses fold case and whitespace; phone numbers
    are already canonical in E.164.
    """
    if kind is PointKind.PHONE:
        return normalized
    if kind is PointKind.EMAIL:
        return normalized.lower()
    return " ".join(normalized.split()).casefold()


class Category(StrEnum):
    SERVICE = "service"
    MARKETING = "marketing"


class TenantStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"


class PhoneType(StrEnum):
    """Line type from the numbering plan; fixed lines cannot receive SMS."""

    MOBILE = "mobile"
    FIXED_LINE = "fixed_line"
    FIXED_LINE_OR_MOBILE = "fixed_line_or_mobile"
    VOIP = "voip"
    OTHER = "other"


# Reserved topics every tenant has: consent "to all marketing" and the service basis of a channel.
ALL_MARKETING_KEY = "all-marketing"
ALL_SERVICE_KEY = "all-service"


@dataclass(frozen=True, slots=True)
class BusinessProfile:
    legal_name: str
    country: str
    description: str = ""
    contact_email: str | None = None
    contact_phone: str | None = None
    postal_address: str | None = None
    website: str | None = None


@dataclass(frozen=True, slots=True)
class Tenant:
    id: uuid.UUID
    slug: str
    name: str
    profile: BusinessProfile
    status: TenantStatus
    created_at: datetime

    @property
    def country(self) -> str:
        return self.profile.country


@dataclass(frozen=True, slots=True)
class Topic:
    id: uuid.UUID
    tenant_id: uuid.UUID
    key: str
    name: str
    category: Category
    requires_double_opt_in: bool = False
    description: str = ""
    umbrella: bool = False
    created_at: datetime | None = None

    def umbrella_key(self) -> str:
        """The reserved topic whose consent also covers this one."""
        return ALL_MARKETING_KEY if self.category is Category.MARKETING else ALL_SERVICE_KEY


@dataclass(frozen=True, slots=True)
class Contact:
    """A person known to a tenant. Addresses are already normalised (email lower-cased domain,
    phone numbers in E.164)."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    phone_type: PhoneType | None = None
    whatsapp: str | None = None
    postal_address: str | None = None
    country: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    date_of_birth: date | None = None
    age_attested: bool = False
    adult_on: date | None = None
    whatsapp_last_inbound_at: datetime | None = None
    external_ref: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    erased_at: datetime | None = None

    def address_for(self, channel: Channel) -> str | None:
        kind = POINT_KIND[channel]
        if kind is PointKind.EMAIL:
            return self.email
        if kind is PointKind.POSTAL:
            return self.postal_address
        return self.whatsapp if channel is Channel.WHATSAPP else self.phone


class PolicyKind(StrEnum):
    PRIVACY_POLICY = "privacy_policy"
    ANTI_SPAM_POLICY = "anti_spam_policy"
    CONSENT_DISCLOSURE = "consent_disclosure"
    WHATSAPP_OPT_IN = "whatsapp_opt_in"


class PolicyStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"


def content_hash(body: str) -> str:
    """The hash that consent evidence quotes for the exact words shown to a person."""
    return "sha256:" + hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    id: uuid.UUID
    tenant_id: uuid.UUID
    kind: PolicyKind
    version: int
    title: str
    body: str
    locale: str
    content_hash: str
    status: PolicyStatus
    created_at: datetime
    published_at: datetime | None = None
