"""Campaigns, transactional messages and the deliveries they become.

A campaign is audience, topic, channel, template and schedule. Its audience is every contact
of the tenant, narrowed by a list and a filter on plain contact fields; the gate decides who of
them may receive it when it is planned, and again for each one at the moment of dispatch.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from consentry.domain.delivery import CampaignStatus, DeliveryStatus
from consentry.domain.errors import InvalidInput, NotFound
from consentry.domain.gate import FrequencyCap
from consentry.domain.model import Category, Channel


class CampaignNotFound(NotFound):
    code = "CAMPAIGN_NOT_FOUND"


class DeliveryNotFound(NotFound):
    code = "DELIVERY_NOT_FOUND"


class ListNotFound(NotFound):
    code = "LIST_NOT_FOUND"


class SenderDomainNotRegistered(InvalidInput):
    """Email must come from a domain the tenant registered (honest From)."""

    code = "SENDER_DOMAIN_NOT_REGISTERED"


class InvalidAudienceFilter(InvalidInput):
    code = "INVALID_AUDIENCE_FILTER"


class ContentNotCompliant(InvalidInput):
    """Content review found errors: the campaign may not launch."""

    code = "CONTENT_NOT_COMPLIANT"

    def __init__(self, message: str, findings: tuple[tuple[str, str], ...]) -> None:
        super().__init__(message)
        self.findings = findings  # (code, message) of each error


# Contact fields a campaign audience may be narrowed by: stored in clear (not personal data
# on their own), so the database can filter on them.
FILTERABLE_FIELDS = ("country", "locale", "time_zone")
_CAP = re.compile(r"^([1-9][0-9]{0,3})/([1-9][0-9]{0,4})h$")


def parse_frequency_cap(text: str | None) -> FrequencyCap | None:
    """ "3/24h" → at most 3 marketing messages per contact in any 24 hours."""
    if text is None or text == "":
        return None
    m = _CAP.match(text)
    if m is None:
        raise InvalidInput(
            "frequency cap must look like '3/24h' (messages/hours)", field="frequency_cap"
        )
    return FrequencyCap(int(m.group(1)), timedelta(hours=int(m.group(2))))


@dataclass(frozen=True, slots=True)
class AudienceFilter:
    """Contacts whose field is one of the values, for each field given (AND across fields)."""

    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, values in self.fields.items():
            if name not in FILTERABLE_FIELDS:
                raise InvalidAudienceFilter(
                    f"audience filter on {name!r}: only {', '.join(FILTERABLE_FIELDS)}",
                    field="filter",
                )
            if not values:
                raise InvalidAudienceFilter(f"audience filter on {name!r} has no values")


@dataclass(frozen=True, slots=True)
class Campaign:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    topic_id: uuid.UUID
    channel: Channel
    template_id: uuid.UUID
    status: CampaignStatus
    created_by: str
    created_at: datetime
    list_id: uuid.UUID | None = None
    audience: AudienceFilter = field(default_factory=AudienceFilter)
    from_address: str | None = None
    frequency_cap: str | None = None
    scheduled_at: datetime | None = None
    plan_counts: dict[str, int] | None = None
    planned_at: datetime | None = None
    launched_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CampaignProgress:
    campaign: Campaign
    by_status: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.by_status.values())

    @property
    def remaining(self) -> int:
        waiting = (DeliveryStatus.PLANNED, DeliveryStatus.QUEUED, DeliveryStatus.DEFERRED,
                   DeliveryStatus.SENDING)  # fmt: skip
        return sum(self.by_status.get(s, 0) for s in waiting)


@dataclass(frozen=True, slots=True)
class PlanCounts:
    """What planning wrote: recipients per primary reason ("ALLOW" for those going) and
    deliveries per status (the campaign's progress at the moment it was planned)."""

    by_reason: dict[str, int]
    by_status: dict[str, int]


@dataclass(frozen=True, slots=True)
class RefusedSample:
    contact_id: uuid.UUID
    reasons: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Simulation:
    """What planning would do now, writing nothing."""

    total: int
    eligible: int
    deferred: int
    by_reason: dict[str, int]  # primary reason -> recipients ("ALLOW" for allowed)
    refused_sample: tuple[RefusedSample, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    tenant_id: uuid.UUID
    campaign_id: uuid.UUID | None
    contact_id: uuid.UUID
    topic_id: uuid.UUID
    template_id: uuid.UUID
    channel: Channel
    status: DeliveryStatus
    reasons: tuple[str, ...]
    attempts: int
    planned_at: datetime
    updated_at: datetime
    consent_event_id: uuid.UUID | None = None
    next_attempt_at: datetime | None = None
    message_id: str | None = None
    provider_message_id: str | None = None
    error_code: str | None = None
    error_detail: str | None = None
    sent_at: datetime | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class SenderDomain:
    id: uuid.UUID
    tenant_id: uuid.UUID
    domain: str
    created_at: datetime
    dkim_selector: str | None = None
    has_dkim_key: bool = False


@dataclass(frozen=True, slots=True)
class ClaimedDelivery:
    """A delivery a worker leased, with what it needs to compose the message."""

    id: int
    tenant_id: uuid.UUID
    campaign_id: uuid.UUID | None
    contact_id: uuid.UUID
    topic_id: uuid.UUID
    template_id: uuid.UUID
    channel: Channel
    category: Category
    attempts: int
    message_id: str | None
    variables: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one in-flight delivery ended, to be recorded in bulk."""

    delivery_id: int
    status: DeliveryStatus  # sent, failed, bounced, or queued (a transient error, retried)
    at: datetime
    provider_message_id: str | None = None
    error_code: str | None = None
    error_detail: str | None = None
    next_attempt_at: datetime | None = None
