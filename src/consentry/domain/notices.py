"""Policy-change notices: telling the people a new policy version concerns, and who accepted it.

Who is concerned (the *affected* contact points) depends on the kind of document:

    consent_disclosure, whatsapp_opt_in   active consent given on an older version of that kind
                                          (same language): the words they agreed to changed
    privacy_policy, anti_spam_policy      every active consent on the notice's channel: the terms
                                          of the relationship changed

The version a consent was given on is the one its authorising event cites, or, for a consent
made active by a confirmation (which cites no words of its own), the one the confirmed request
cited (``seen_document``). A WhatsApp opt-in is about the WhatsApp number, but the notice goes
by email or SMS: business-initiated WhatsApp messages need pre-approved templates.

A notice is a service message about the relationship: an unsubscribe from marketing does not
stop it; an all-scope suppression (hard bounce, complaint, block, erasure, STOP), a suspended or
terminated tenant, or a missing address does (``notice_refusal``). One message per contact
point, each recipient moving through::

    queued --check at send time--> refused (reason)
    queued --handed over---------> sending --> sent --"I accept"--> accepted
                                           --> failed (permanent, or out of attempts)
                                           --> queued again (transient; backoff)

A worker that dies in ``sending`` leaves its lease to expire; the recipient is queued again and
re-sent with the same Message-ID (a service message is retried, never silently dropped).

Errors::

    ConsentryError
    ├── InvalidInput
    │   └── NoticeChannelInvalid   NOTICE_CHANNEL_INVALID   not email or SMS
    ├── NotFound
    │   └── NoticeNotFound         NOTICE_NOT_FOUND
    └── Conflict
        └── NoticeNotNeeded        NOTICE_NOT_NEEDED        version 1: nothing changed
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from consentry.domain.consent import ConsentAction, ConsentEvent
from consentry.domain.errors import Conflict, InvalidInput, NotFound
from consentry.domain.gate import SuppressionFact, tenant_blocks, weightiest_suppression
from consentry.domain.model import Category, Channel, PolicyDocument, PolicyKind, TenantStatus
from consentry.domain.suppression import reason_code

NOTICE_CHANNELS = frozenset({Channel.EMAIL, Channel.SMS})
CONSENT_KINDS = frozenset({PolicyKind.CONSENT_DISCLOSURE, PolicyKind.WHATSAPP_OPT_IN})
# An acceptance link lives this long after the notice was sent; people read such mail late,
# but an agreement pressed a year on would be about words they no longer remember receiving.
LINK_LIFETIME = timedelta(days=90)
ACTOR_PREFIX = "policy_notice:"
TENANT_NOT_ACTIVE = "TENANT_NOT_ACTIVE"
ADDRESS_MISSING = "ADDRESS_MISSING"


class NoticeChannelInvalid(InvalidInput):
    code = "NOTICE_CHANNEL_INVALID"


class NoticeNotFound(NotFound):
    code = "NOTICE_NOT_FOUND"


class NoticeNotNeeded(Conflict):
    code = "NOTICE_NOT_NEEDED"


class NoticeStatus(StrEnum):
    SENDING = "sending"  # recipients are still queued or in flight
    DONE = "done"  # every recipient was sent, refused or failed


class RecipientStatus(StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    REFUSED = "refused"
    FAILED = "failed"
    ACCEPTED = "accepted"


WAITING = frozenset({RecipientStatus.QUEUED, RecipientStatus.SENDING})
# Recipients a later notice of the same version and channel leaves out: told, or about to be.
REACHED = frozenset(
    {
        RecipientStatus.QUEUED,
        RecipientStatus.SENDING,
        RecipientStatus.SENT,
        RecipientStatus.ACCEPTED,
    }
)


@dataclass(frozen=True, slots=True)
class PolicyNotice:
    id: uuid.UUID
    tenant_id: uuid.UUID
    document_id: uuid.UUID  # the new version
    channel: Channel  # what the notice is sent by
    ask_acceptance: bool
    status: NoticeStatus
    created_by: str
    created_at: datetime
    finished_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NoticeRecipient:
    notice_id: uuid.UUID
    tenant_id: uuid.UUID
    contact_id: uuid.UUID
    point_key: bytes | None  # the address on the notice's channel when it was planned
    status: RecipientStatus
    reason: str | None = None  # refusal reason, or the channel's error code
    sent_at: datetime | None = None
    accepted_at: datetime | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class NoticeReport:
    targeted: int
    waiting: int  # queued or in flight
    sent: int  # messages that left (accepted ones included)
    refused: dict[str, int]  # by reason
    failed: dict[str, int]  # by the channel's error code
    accepted: int


def consent_channel(kind: PolicyKind, channel: Channel) -> Channel:
    """The channel whose consents a notice of ``kind`` sent by ``channel`` is about."""
    return Channel.WHATSAPP if kind is PolicyKind.WHATSAPP_OPT_IN else channel


def check_notice(document: PolicyDocument, channel: Channel) -> None:
    """Raise unless a notice about ``document`` may be sent by ``channel`` (the caller has
    checked the document is the tenant's and published)."""
    if channel not in NOTICE_CHANNELS:
        raise NoticeChannelInvalid("a policy notice is sent by email or SMS", field="channel")
    if document.version <= 1:
        raise NoticeNotNeeded(
            f"version {document.version} is the first {document.kind.value}: it changed "
            "nothing that people must be told about",
            field="document",
        )


def seen_document(events: Iterable[ConsentEvent], authorising: uuid.UUID) -> uuid.UUID | None:
    """The policy version a consent state was given on: what its authorising event cites, or
    for a confirmation citing nothing, what the request (or grant) it confirmed cited."""
    ordered = sorted(events, key=lambda e: e.seq)
    found = next((e for e in ordered if e.id == authorising), None)
    if found is None:
        return None
    if found.evidence.policy_document_id is not None or found.action is not ConsentAction.CONFIRMED:
        return found.evidence.policy_document_id
    earlier = [
        e
        for e in ordered
        if e.seq < found.seq
        and e.point_key == found.point_key
        and e.action in (ConsentAction.REQUESTED, ConsentAction.GRANTED)
    ]
    return earlier[-1].evidence.policy_document_id if earlier else None


def is_affected(new: PolicyDocument, seen: PolicyDocument | None) -> bool:
    """Whether an *active* consent given on ``seen`` is concerned by the new version ``new``."""
    if new.kind not in CONSENT_KINDS:
        return True  # a changed privacy or anti-spam policy concerns every relationship
    return (
        seen is not None
        and seen.kind is new.kind
        and seen.locale == new.locale
        and seen.version < new.version
    )


def notice_refusal(
    tenant_status: TenantStatus,
    suppressions: tuple[SuppressionFact, ...],
    *,
    address_present: bool,
) -> str | None:
    """None when a notice may go to one contact point now; otherwise why not. A service
    message: paused tenants still send it, marketing-scope suppressions do not stop it."""
    if tenant_blocks(tenant_status, Category.SERVICE):
        return TENANT_NOT_ACTIVE
    hit = weightiest_suppression(suppressions, Category.SERVICE)
    if hit is not None:
        return reason_code(hit.reason)
    return None if address_present else ADDRESS_MISSING


def subject(business: str, document: PolicyDocument) -> str:
    return f"{business} has changed its {document.title}"


def email_text(
    business: str, document: PolicyDocument, document_url: str, accept_url: str | None
) -> str:
    """The notice by email: what changed (the new version, at its public page) and, when asked,
    how to accept it."""
    published = document.published_at.date().isoformat() if document.published_at else ""
    lines = [
        f"{business} has changed its {document.title}.",
        "",
        f"The new version (version {document.version}"
        + (f", published {published}" if published else "")
        + ") is here:",
        document_url,
        "",
    ]
    if accept_url is not None:
        lines += [
            "Please read it and, if you agree, accept it by opening this link and pressing "
            '"I accept":',
            accept_url,
            "",
        ]
    lines.append(
        f"You receive this service message because you have a relationship with {business}; "
        "it is not marketing."
    )
    return "\n".join(lines) + "\n"


def sms_text(
    brand: str, document: PolicyDocument, document_url: str, accept_url: str | None
) -> str:
    text = f"{brand}: our {document.title} has changed. Read it: {document_url}"
    if accept_url is not None:
        text += f" Accept it: {accept_url}"
    return text + " Reply STOP to opt out."


def report_of(counts: Iterable[tuple[RecipientStatus, str | None, int]]) -> NoticeReport:
    """A report from (status, reason, recipients) groups."""
    targeted = waiting = sent = accepted = 0
    refused: dict[str, int] = {}
    failed: dict[str, int] = {}
    for status, reason, n in counts:
        targeted += n
        if status in WAITING:
            waiting += n
        elif status is RecipientStatus.REFUSED:
            refused[reason or "UNKNOWN"] = refused.get(reason or "UNKNOWN", 0) + n
        elif status is RecipientStatus.FAILED:
            failed[reason or "UNKNOWN"] = failed.get(reason or "UNKNOWN", 0) + n
        else:
            sent += n
            accepted += n if status is RecipientStatus.ACCEPTED else 0
    return NoticeReport(targeted, waiting, sent, dict(sorted(refused.items())),
                        dict(sorted(failed.items())), accepted)  # fmt: skip
