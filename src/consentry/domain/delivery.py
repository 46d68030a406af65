"""Deliveries: one send to one recipient, its state machine, and what a channel is handed.

Delivery states (ARCHITECTURE.md §1), with ``cancelled`` added for campaigns stopped before a
delivery left::

    planned ──► queued ──► sending ──► sent ──► delivered | bounced | complained | failed
       │          │  ▲        │  └──► failed (permanent error) / queued (transient, retried)
       │          │  └────────┤──► unknown (the process died while the message was in flight)
       │          ├──► deferred ──► queued  (quiet hours, frequency cap)
       │          └──► suppressed (the gate refused it at dispatch)
       ├──► suppressed (the gate refused it when planned)
       └──► cancelled (also from queued and deferred)

A delivery is ``sending`` only while its message is in flight: the mark is committed before the
channel is called, so a crash leaves ``sending`` rows whose outcome nobody knows. Marketing ones
become ``unknown`` and are never re-sent; service ones go back to ``queued`` and are re-sent with
the same Message-ID or provider idempotency key.

Delivery errors::

    ConsentryError
    └── DeliveryError                    (raised by channel adapters; recorded per delivery)
        ├── PermanentDeliveryError       not retried; may carry a signal (hard bounce, opt-out)
        └── TransientDeliveryError       retried with backoff until the attempts run out
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from consentry.domain.errors import Conflict, ConsentryError
from consentry.domain.model import Channel


class DeliveryStatus(StrEnum):
    PLANNED = "planned"
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    FAILED = "failed"
    SUPPRESSED = "suppressed"
    DEFERRED = "deferred"
    UNKNOWN = "unknown"
    CANCELLED = "cancelled"


S = DeliveryStatus
TRANSITIONS: dict[DeliveryStatus, frozenset[DeliveryStatus]] = {
    S.PLANNED: frozenset({S.QUEUED, S.SUPPRESSED, S.DEFERRED, S.CANCELLED}),
    S.QUEUED: frozenset({S.SENDING, S.SUPPRESSED, S.DEFERRED, S.CANCELLED, S.FAILED}),
    S.DEFERRED: frozenset({S.QUEUED, S.SUPPRESSED, S.CANCELLED}),
    S.SENDING: frozenset({S.SENT, S.FAILED, S.QUEUED, S.UNKNOWN, S.BOUNCED}),
    S.SENT: frozenset({S.DELIVERED, S.BOUNCED, S.COMPLAINED, S.FAILED}),
    S.DELIVERED: frozenset({S.COMPLAINED, S.BOUNCED}),
    S.BOUNCED: frozenset(),
    S.COMPLAINED: frozenset(),
    S.FAILED: frozenset(),
    S.SUPPRESSED: frozenset(),
    S.UNKNOWN: frozenset({S.DELIVERED, S.BOUNCED, S.COMPLAINED}),
    S.CANCELLED: frozenset(),
}
# States a delivery no longer leaves by itself (provider reports may still refine sent/unknown).
FINAL = frozenset({S.SENT, S.DELIVERED, S.BOUNCED, S.COMPLAINED, S.FAILED, S.SUPPRESSED,
                   S.UNKNOWN, S.CANCELLED})  # fmt: skip
# Waiting for a worker.
PENDING = frozenset({S.PLANNED, S.QUEUED, S.DEFERRED})


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"


def transition(current: DeliveryStatus, target: DeliveryStatus) -> DeliveryStatus:
    """``target`` if the state machine allows ``current -> target``, else InvalidTransition."""
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(f"a delivery cannot go from {current} to {target}")
    return target


class CampaignStatus(StrEnum):
    DRAFT = "draft"  # created, not planned
    SCHEDULED = "scheduled"  # planned, waits for its start time
    RUNNING = "running"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


CAMPAIGN_TRANSITIONS: dict[CampaignStatus, frozenset[CampaignStatus]] = {
    CampaignStatus.DRAFT: frozenset(
        {CampaignStatus.SCHEDULED, CampaignStatus.RUNNING, CampaignStatus.CANCELLED}
    ),
    CampaignStatus.SCHEDULED: frozenset(
        {CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.CANCELLED}
    ),
    CampaignStatus.RUNNING: frozenset(
        {CampaignStatus.PAUSED, CampaignStatus.CANCELLED, CampaignStatus.COMPLETED}
    ),
    CampaignStatus.PAUSED: frozenset({CampaignStatus.RUNNING, CampaignStatus.CANCELLED}),
    CampaignStatus.CANCELLED: frozenset(),
    CampaignStatus.COMPLETED: frozenset(),
}


class InvalidCampaignTransition(Conflict):
    code = "CAMPAIGN_STATE_CONFLICT"


def campaign_transition(current: CampaignStatus, target: CampaignStatus) -> CampaignStatus:
    if target not in CAMPAIGN_TRANSITIONS[current]:
        raise InvalidCampaignTransition(f"a {current} campaign cannot become {target}")
    return target


# -- what a channel adapter is handed ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmailMessage:
    """A complete RFC 5322 message (compliance headers and DKIM signature included)."""

    delivery_id: int
    tenant_id: uuid.UUID
    mail_from: str  # envelope sender (bounces return here)
    rcpt_to: str
    data: bytes
    message_id: str  # the Message-ID header's value, without angle brackets

    channel = Channel.EMAIL


@dataclass(frozen=True, slots=True)
class SmsMessage:
    delivery_id: int
    tenant_id: uuid.UUID
    to: str  # E.164
    sender: str  # a number in E.164, a short code or an alphanumeric sender id
    body: str
    idempotency_key: str  # stable across retries of the same delivery

    channel = Channel.SMS


@dataclass(frozen=True, slots=True)
class WhatsAppMessage:
    """A business-initiated template message, or free text inside the 24-hour service window."""

    delivery_id: int
    tenant_id: uuid.UUID
    to: str  # E.164
    phone_number_id: str  # the sending business number's id at the provider
    idempotency_key: str
    template_name: str | None = None
    language: str = "en"
    parameters: tuple[str, ...] = ()
    text: str | None = None

    channel = Channel.WHATSAPP


OutboundMessage = EmailMessage | SmsMessage | WhatsAppMessage


@dataclass(frozen=True, slots=True)
class SendResult:
    """A channel accepted the message for delivery."""

    provider_message_id: str | None
    detail: str = ""


class ProviderSignal(StrEnum):
    """What a permanent failure says about the address, beyond this one delivery."""

    HARD_BOUNCE = "hard_bounce"  # the address does not exist: suppress it for all email
    OPT_OUT = "opt_out"  # the person opted out at the provider (Twilio 21610, WhatsApp 131050)


class DeliveryError(ConsentryError):
    code = "DELIVERY_FAILED"

    def __init__(
        self,
        message: str,
        *,
        provider_code: str | None = None,
        retry_after: timedelta | None = None,
        signal: ProviderSignal | None = None,
    ) -> None:
        super().__init__(message)
        self.provider_code = provider_code
        self.retry_after = retry_after
        self.signal = signal


class PermanentDeliveryError(DeliveryError):
    code = "DELIVERY_REJECTED"


class TransientDeliveryError(DeliveryError):
    code = "DELIVERY_DEFERRED"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A delivery status a provider reported later (webhook): delivered, failed, read ..."""

    provider_message_id: str
    status: DeliveryStatus
    occurred_at: datetime
    event_id: str  # the provider's id for this report, for de-duplication
    error_code: str | None = None
    signal: ProviderSignal | None = None
    raw: dict[str, object] = field(default_factory=dict)


# -- retries -------------------------------------------------------------------------------------

MAX_ATTEMPTS = 5
BACKOFF_BASE = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)


def backoff(attempts: int, retry_after: timedelta | None = None) -> timedelta:
    """The wait before attempt ``attempts + 1``: exponential, capped, never before the
    provider's own Retry-After."""
    wait: timedelta = min(BACKOFF_BASE * (2 ** max(attempts - 1, 0)), BACKOFF_MAX)
    return max(wait, retry_after) if retry_after is not None else wait
