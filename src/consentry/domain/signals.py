"""Signals: what arrives from people and providers that says "no", "yes again" or "dead address".

Every inbound path (one-click unsubscribe, preference centre, SMS keyword, WhatsApp message, stop
button or block, bounce report, complaint report, provider delivery report) is parsed into these
values before anything is applied, so that one pipeline (verify, de-duplicate, parse, apply, keep
the raw payload) serves them all. The values name contact points by their raw address as the
provider gave it; resolving an address to a tenant and contact is the pipeline's work.

Parsers never raise for content they merely do not understand: an unknown report is
``Unrecognised`` and is kept for inspection, not an error.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from consentry.domain.delivery import DeliveryStatus
from consentry.domain.model import Category, Channel


class SignalSource(StrEnum):
    """Where a signal came from; recorded with the raw payload and as consent evidence."""

    UNSUBSCRIBE_PAGE = "unsubscribe_page"
    ONE_CLICK = "one_click"  # RFC 8058 POST
    MAILTO = "mailto"  # the List-Unsubscribe mailto URI
    PREFERENCE_CENTRE = "preference_centre"
    TWILIO = "twilio"  # inbound SMS and status callbacks
    WHATSAPP = "whatsapp"  # Cloud API webhooks
    INBOUND_SMTP = "inbound_smtp"  # DSN and ARF reports received by mail
    PROVIDER = "provider"  # an email provider's bounce or complaint webhook


class KeywordKind(StrEnum):
    OPT_OUT = "opt_out"  # STOP and its variants
    OPT_IN = "opt_in"  # START, YES, UNSTOP
    HELP = "help"  # HELP, INFO
    REFUSAL_LIKE = "refusal_like"  # looks like a "no" but matches no keyword: human review
    OTHER = "other"  # an ordinary message


class BounceKind(StrEnum):
    HARD = "hard"  # 5.x.x except 5.2.2 and 5.7.x: the address is dead
    SOFT = "soft"  # 4.x.x, and 5.2.2 (mailbox full): counts, suppresses after a run
    POLICY = "policy"  # 5.7.x: authentication or policy; alert the tenant, suppress no one
    DELAYED = "delayed"  # Action: delayed; not a bounce


class FeedbackType(StrEnum):
    """RFC 5965 Feedback-Type values (and those of provider webhooks mapped onto them)."""

    ABUSE = "abuse"
    FRAUD = "fraud"
    VIRUS = "virus"
    NOT_SPAM = "not-spam"
    AUTH_FAILURE = "auth-failure"
    OTHER = "other"


SUPPRESSING_FEEDBACK = frozenset({FeedbackType.ABUSE, FeedbackType.FRAUD})


@dataclass(frozen=True, slots=True)
class Keyword:
    """An SMS (or WhatsApp text) whose words were classified."""

    channel: Channel
    sender: str  # the person's number, E.164 as the provider gave it
    recipient: str  # the business number it was sent to
    kind: KeywordKind
    text: str
    language: str | None = None  # the language whose list matched
    by_provider: bool = False  # the provider's own reading (Twilio's OptOutType), not ours


@dataclass(frozen=True, slots=True)
class ChatOptIn:
    """A click-to-chat opt-in message: the person asks a named business for a topic on
    WhatsApp (domain/chat_opt_in.py)."""

    sender: str
    recipient: str
    tenant_slug: str
    topic_key: str
    text: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """Any message a person sent (it opens or extends the WhatsApp 24-hour service window)."""

    channel: Channel
    sender: str
    recipient: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ButtonOptOut:
    """The WhatsApp marketing opt-out button ("Stop promotions")."""

    sender: str
    recipient: str
    payload: str


@dataclass(frozen=True, slots=True)
class Block:
    """The person blocked or reported the business on WhatsApp."""

    sender: str
    recipient: str
    reported: bool  # a report, not only a block


@dataclass(frozen=True, slots=True)
class Bounce:
    recipient: str | None  # the final recipient, if the report names it
    kind: BounceKind
    status: str  # the enhanced status code, "5.1.1"
    diagnostic: str = ""
    original_message_id: str | None = None  # the Message-ID of the message that bounced
    original_envelope_id: str | None = None
    reporting_mta: str = ""
    # The envelope address the report was delivered to: the VERP return path of the message
    # that bounced (``bounces+<Message-ID left part>@<domain>``), when it was one.
    return_path: str | None = None


@dataclass(frozen=True, slots=True)
class Complaint:
    recipient: str | None  # None when the report redacted it
    feedback_type: FeedbackType
    original_message_id: str | None = None
    original_mail_from: str | None = None  # VERP return path, when it carries an id
    user_agent: str = ""
    arrival_date: datetime | None = None


@dataclass(frozen=True, slots=True)
class MailtoUnsubscribe:
    """A message to the List-Unsubscribe mailto address; the token is in the local part."""

    token: str
    sender: str | None  # the From address, kept as evidence only


@dataclass(frozen=True, slots=True)
class Unrecognised:
    """Authentic input that parses into nothing we act on; kept for inspection."""

    why: str


Signal = (
    Keyword
    | ChatOptIn
    | InboundMessage
    | ButtonOptOut
    | Block
    | Bounce
    | Complaint
    | MailtoUnsubscribe
    | Unrecognised
)


@dataclass(frozen=True, slots=True)
class ParsedInput:
    """One authentic inbound payload: its de-duplication key and the signals it carries."""

    source: SignalSource
    event_id: str  # the provider's id for this event, unique per source
    signals: tuple[Signal, ...] = ()
    received_at: datetime | None = None
    meta: dict[str, str] = field(default_factory=dict)


def classify_status(status: str, action: str = "failed") -> BounceKind:
    """What an RFC 3464 per-recipient ``Action`` and enhanced ``Status`` mean for the address.

    ``delayed`` (or a ``delivered``/``relayed``/``expanded`` action) is never a bounce; 5.7.x is a
    policy or authentication failure of the sender, not of the address; 5.2.2 (mailbox full) is
    transient whatever its class; any other 5.x.x is hard, and 4.x.x (or anything unreadable
    in a failure) is soft.
    """
    act = action.strip().lower()
    if act in ("delayed", "delivered", "relayed", "expanded"):
        return BounceKind.DELAYED
    parts = status.strip().split(".")
    klass = parts[0] if parts else ""
    subject = parts[1] if len(parts) > 1 else ""
    detail = parts[2] if len(parts) > 2 else ""
    if klass == "5":
        if subject == "7":
            return BounceKind.POLICY
        if subject == "2" and detail == "2":
            return BounceKind.SOFT
        return BounceKind.HARD
    return BounceKind.SOFT


@dataclass(frozen=True, slots=True)
class ComplaintCase:
    """A complaint against a tenant (and campaign), opened by an abuse or fraud report."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    campaign_id: uuid.UUID | None
    delivery_id: int | None
    channel: Channel
    feedback_type: FeedbackType
    source: SignalSource
    status: str  # open, investigating, closed
    opened_at: datetime


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One entry of the inbound event log (the raw payload is read separately)."""

    id: int
    source: SignalSource
    event_id: str
    tenant_id: uuid.UUID | None
    status: str  # applied, ignored, review, unattributed, rejected
    kinds: str
    outcome: str
    content_type: str
    received_at: datetime


@dataclass(frozen=True, slots=True)
class CourtesyMessage:
    """An email sent outside campaigns (a confirmation request, a preference link, a policy
    notice), found by its Message-ID when a report about it comes back."""

    message_id: str
    tenant_id: uuid.UUID
    point_key: bytes  # the recipient's blind index
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class SentDelivery:
    """The delivery a report is about, found by its Message-ID or provider message id."""

    id: int
    tenant_id: uuid.UUID
    campaign_id: uuid.UUID | None
    contact_id: uuid.UUID
    channel: Channel
    category: Category
    status: DeliveryStatus
