"""Permission passes: ask the people of a list or an import to reconfirm, lapse the rest.

A pass targets the contact points of a list or an import batch whose consent for one topic and
channel is active when it starts (its *members*, each with the event that made the consent
active then). Each member is sent a reconfirmation message with a link; pressing "Keep me
subscribed" appends a new ``granted`` event (the renewal). At the deadline the pass ends::

    running --deadline passed--> ended

and each member's outcome is decided by the consent state at that moment:

    still active, on the event it started with   -> lapsed   (a ``lapsed`` event is appended)
    active through a newer affirmative act       -> renewed  (the link, or a new sign-up)
    anything else (withdrawn, lapsed, void, ...) -> other    (never touched by the pass)

Errors::

    ConsentryError
    ├── InvalidInput
    │   ├── PassDeadlineInvalid   PASS_DEADLINE_INVALID   in the past, or too far ahead
    │   ├── PassSourceInvalid     PASS_SOURCE_INVALID     not exactly one list or import
    │   ├── PassTopicInvalid      PASS_TOPIC_INVALID      an umbrella topic
    │   └── PassMessageInvalid    PASS_MESSAGE_INVALID    a text without the reconfirmation link
    ├── NotFound
    │   └── PassNotFound          PASS_NOT_FOUND
    └── Conflict
        └── PassNotDue            PASS_NOT_DUE            ended before its deadline, or twice
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from consentry.domain.consent import ConsentBasis, ConsentStatus
from consentry.domain.errors import Conflict, InvalidInput, NotFound
from consentry.domain.model import Channel

# A reconfirmation link lives until the deadline; links (and passes) longer than this would
# ask people about a message they no longer remember.
MAX_PASS_DURATION = timedelta(days=90)
PASS_CHANNELS = frozenset({Channel.EMAIL, Channel.SMS})
LINK_VARIABLE = "data.reconfirm_url"
ACTOR_PREFIX = "permission_pass:"


class PassDeadlineInvalid(InvalidInput):
    code = "PASS_DEADLINE_INVALID"


class PassSourceInvalid(InvalidInput):
    code = "PASS_SOURCE_INVALID"


class PassTopicInvalid(InvalidInput):
    code = "PASS_TOPIC_INVALID"


class PassMessageInvalid(InvalidInput):
    code = "PASS_MESSAGE_INVALID"


class PassNotFound(NotFound):
    code = "PASS_NOT_FOUND"


class PassNotDue(Conflict):
    code = "PASS_NOT_DUE"


class PassStatus(StrEnum):
    RUNNING = "running"
    ENDED = "ended"


class SourceKind(StrEnum):
    LIST = "list"
    IMPORT = "import"


class MemberOutcome(StrEnum):
    RENEWED = "renewed"
    LAPSED = "lapsed"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class PermissionPass:
    id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    topic_id: uuid.UUID
    channel: Channel
    source_kind: SourceKind
    source_id: uuid.UUID  # the list or the import record
    campaign_id: uuid.UUID  # the reconfirmation messages
    disclosure_document_id: uuid.UUID  # shown on the page and cited by renewals
    deadline: datetime
    status: PassStatus
    created_by: str
    created_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PassMember:
    contact_id: uuid.UUID
    point_key: bytes
    start_event_id: uuid.UUID  # the event the consent was active on when the pass started
    renewed_event_id: uuid.UUID | None = None
    outcome: MemberOutcome | None = None


@dataclass(frozen=True, slots=True)
class PassReport:
    """Who the pass reached and what each did; counts of members unless said otherwise."""

    targeted: int
    sent: int  # reconfirmation messages that left
    waiting: int  # messages not yet sent (planned, queued, deferred, in flight)
    failed: int  # messages that failed, bounced or whose outcome is unknown
    refused: dict[str, int]  # messages the gate refused, by primary reason
    cancelled: int  # messages not sent because the pass ended first
    renewed: int
    lapsed: int
    other: int  # no longer active for another reason (withdrew meanwhile, ...)
    awaiting: int  # running passes: members who have not answered yet


def validate_deadline(deadline: datetime, now: datetime) -> None:
    if deadline.tzinfo is None:
        raise PassDeadlineInvalid("the deadline needs a time zone", field="deadline")
    if deadline <= now:
        raise PassDeadlineInvalid("the deadline is in the past", field="deadline")
    if deadline - now > MAX_PASS_DURATION:
        raise PassDeadlineInvalid(
            f"the deadline is at most {MAX_PASS_DURATION.days} days ahead", field="deadline"
        )


def renewal_basis(current: ConsentBasis) -> ConsentBasis:
    """The basis a renewal is recorded on: confirmed (double opt-in) consent stays confirmed;
    anything else becomes express, since pressing the button is an express, informed act."""
    return (
        ConsentBasis.DOUBLE_OPT_IN
        if current is ConsentBasis.DOUBLE_OPT_IN
        else ConsentBasis.EXPRESS
    )


def outcome_of(status: ConsentStatus | None, on_start_event: bool) -> MemberOutcome:
    """A member's outcome from its consent state when the pass ends (while it runs: LAPSED
    means "has not answered yet")."""
    if status is not ConsentStatus.ACTIVE:
        return MemberOutcome.OTHER
    if on_start_event:
        return MemberOutcome.LAPSED
    # Only granted and confirmed leave a state active on a newer event.
    return MemberOutcome.RENEWED


def outcome_at_end(
    start_event_id: uuid.UUID, status: ConsentStatus | None, event_id: uuid.UUID | None
) -> MemberOutcome:
    return outcome_of(status, event_id == start_event_id)


def default_text(channel: Channel, topic_name: str, business: str, deadline: datetime) -> str:
    """The reconfirmation message when the pass gives none (a template of its channel)."""
    day = deadline.strftime("%d %B %Y")
    if channel is Channel.SMS:
        return (
            f"{business}: do you still want {topic_name} texts? Reply YES by {day} to keep "
            "them, or open {{ data.reconfirm_url }}"
        )
    return (
        "Hello {{ contact.first_name }},\n\n"
        f"You receive {topic_name} from {business}. Do you still want them?\n\n"
        f'To keep receiving them, open this link and press "Keep me subscribed" by {day}:\n'
        "{{ data.reconfirm_url }}\n\n"
        f"If you do nothing, {business} will stop sending you {topic_name} after {day}.\n"
    )


def default_subject(topic_name: str, business: str) -> str:
    return f"Do you still want {topic_name} from {business}?"


def check_text(text: str) -> None:
    if "reconfirm_url" not in text:
        raise PassMessageInvalid(
            "the message must contain the reconfirmation link {{ " + LINK_VARIABLE + " }}",
            field="text",
        )
