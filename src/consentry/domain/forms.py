"""Public subscription forms: what a form offers, what a person ticked, and what that records.

A form offers topics on channels, each as its own unticked box (no bundled consent). A submission
names exactly the boxes that were ticked; each ticked box becomes one consent event whose
evidence names the form, its public URL, the referrer, the disclosure version shown and every box
that was ticked. Which event depends on what already stands for that contact point::

    active (confirmed where the topic needs it) -> nothing is written (already subscribed),
                                                   except an implied basis on a form that does
                                                   not confirm: ``granted`` (express) over it
    pending, still confirmable                  -> nothing written; the confirmation is sent again
    withdrawn by the person, no confirmation due -> ``requested`` where the channel can confirm,
                                                   else nothing: a stranger cannot undo a "no"
    otherwise, confirmed opt-in needed          -> ``requested`` (a confirmation request is sent)
    otherwise                                   -> ``granted`` (basis express)

A form never puts a subscription that stands back to pending: anyone can type anyone's address,
and a ``requested`` event would stop the messages and, unconfirmed, lapse the consent.

Errors::

    ConsentryError
    ├── InvalidInput
    │   ├── FormInvalid            FORM_INVALID            a field is missing or wrong
    │   ├── AgeBelowThreshold      AGE_BELOW_THRESHOLD     the person is under the age threshold
    │   ├── FormRejected           FORM_REJECTED           a bot: honeypot filled, sent too fast
    │   └── FormExpired            FORM_EXPIRED            the form's token is too old or forged
    ├── NotFound
    │   └── FormNotFound           FORM_NOT_FOUND
    └── Conflict
        ├── FormArchived           FORM_ARCHIVED           the form no longer takes submissions
        └── FormAlreadySent        FORM_ALREADY_SENT       this very submission was already taken
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from consentry.domain.consent import ConsentAction, ConsentStatus
from consentry.domain.errors import Conflict, InvalidInput, NotFound
from consentry.domain.model import Category, Channel

FORM_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP)
# Channels whose consent a public form takes only once the address's owner has confirmed it.
CONFIRMABLE = frozenset({Channel.EMAIL, Channel.SMS})
FORM_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
MAX_CHOICES = 20
MAX_TITLE = 200
MAX_INTRO = 2_000


class FormInvalid(InvalidInput):
    code = "FORM_INVALID"


class AgeBelowThreshold(InvalidInput):
    code = "AGE_BELOW_THRESHOLD"


class FormRejected(InvalidInput):
    code = "FORM_REJECTED"


class FormExpired(InvalidInput):
    code = "FORM_EXPIRED"


class FormNotFound(NotFound):
    code = "FORM_NOT_FOUND"


class FormArchived(Conflict):
    code = "FORM_ARCHIVED"


class FormAlreadySent(Conflict):
    code = "FORM_ALREADY_SENT"


class FormStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


@dataclass(frozen=True, slots=True)
class FormChoice:
    """One box on the form: a topic on a channel."""

    topic_id: uuid.UUID
    topic_key: str
    channel: Channel

    @property
    def value(self) -> str:
        """The box's value in the HTML form."""
        return f"{self.topic_key}:{self.channel.value}"


@dataclass(frozen=True, slots=True)
class SubscriptionForm:
    id: uuid.UUID
    tenant_id: uuid.UUID
    key: str
    title: str
    intro: str
    choices: tuple[FormChoice, ...]
    disclosure_kind: str  # the policy-document kind whose latest published version is shown
    privacy_url: str | None  # None: link the tenant's latest published privacy policy
    confirm: bool  # email and SMS choices need the address's owner to confirm
    status: FormStatus
    revision: int  # bumped on every change; embedded snippets name the revision they show
    created_at: datetime
    updated_at: datetime

    def channels(self) -> frozenset[Channel]:
        return frozenset(c.channel for c in self.choices)


def check_form_fields(key: str, title: str, intro: str, choices: Sequence[FormChoice]) -> None:
    """Raise FormInvalid naming the first field a form definition gets wrong."""
    if not FORM_KEY.fullmatch(key):
        raise FormInvalid("a form key is 1-63 lower-case letters, digits and hyphens", field="key")
    if not title.strip() or len(title) > MAX_TITLE:
        raise FormInvalid(f"a form needs a title of at most {MAX_TITLE} characters", field="title")
    if len(intro) > MAX_INTRO:
        raise FormInvalid(f"the introduction is limited to {MAX_INTRO} characters", field="intro")
    if not choices or len(choices) > MAX_CHOICES:
        raise FormInvalid(f"a form offers 1 to {MAX_CHOICES} choices", field="choices")
    seen: set[str] = set()
    for choice in choices:
        if choice.channel not in FORM_CHANNELS:
            raise FormInvalid("forms offer email, SMS and WhatsApp only", field="choices")
        if choice.value in seen:
            raise FormInvalid(f"{choice.value} is offered twice", field="choices")
        seen.add(choice.value)


@dataclass(frozen=True, slots=True)
class Ticked:
    """What a person sent: the boxes ticked and the addresses given (raw, not yet normalised)."""

    choices: tuple[FormChoice, ...]
    email: str | None
    phone: str | None
    whatsapp: str | None
    name: str | None
    adult: bool | None  # the answer to the age question; None when not asked or not answered


_ADDRESS_FIELD = {Channel.EMAIL: "email", Channel.SMS: "phone", Channel.WHATSAPP: "whatsapp"}


def address_field(channel: Channel) -> str:
    return _ADDRESS_FIELD[channel]


def read_ticked(
    form: SubscriptionForm,
    values: Iterable[str],
    *,
    email: str | None,
    phone: str | None,
    whatsapp: str | None,
    name: str | None,
    adult: str | None,
) -> Ticked:
    """The boxes ticked among those the form offers, checked: at least one, the address each
    needs, and no value the form does not offer (a forged post). Raises FormInvalid."""
    offered = {c.value: c for c in form.choices}
    wanted = list(dict.fromkeys(v.strip() for v in values if v.strip()))
    unknown = [v for v in wanted if v not in offered]
    if unknown:
        raise FormInvalid("the form does not offer one of the choices sent", field="choice")
    if not wanted:
        raise FormInvalid("tick at least one box to subscribe", field="choice")
    ticked = tuple(offered[v] for v in wanted)
    given = {"email": email, "phone": phone, "whatsapp": whatsapp}
    for choice in ticked:
        field = _ADDRESS_FIELD[choice.channel]
        if not (given[field] or "").strip():
            raise FormInvalid(f"enter your {_LABEL[field]} for the boxes you ticked", field=field)
    answer = {"yes": True, "no": False}.get((adult or "").strip().lower())
    return Ticked(
        choices=ticked,
        email=(email or "").strip() or None,
        phone=(phone or "").strip() or None,
        whatsapp=(whatsapp or "").strip() or None,
        name=(name or "").strip()[:200] or None,
        adult=answer,
    )


_LABEL = {"email": "email address", "phone": "mobile number", "whatsapp": "WhatsApp number"}


def check_age(ticked: Ticked, categories: Mapping[uuid.UUID, Category], threshold: int) -> None:
    """Marketing choices need the person to state they are at least ``threshold`` years old:
    AgeBelowThreshold when they say they are not, FormInvalid when they did not answer."""
    if not any(categories[c.topic_id] is Category.MARKETING for c in ticked.choices):
        return
    if ticked.adult is None:
        raise FormInvalid(f"please say whether you are {threshold} or older", field="adult")
    if not ticked.adult:
        raise AgeBelowThreshold(
            f"you must be {threshold} or older to subscribe to these messages", field="adult"
        )


def asks_age(form: SubscriptionForm, categories: Mapping[uuid.UUID, Category]) -> bool:
    return any(categories[c.topic_id] is Category.MARKETING for c in form.choices)


class Outcome(StrEnum):
    REQUESTED = "requested"  # pending; a confirmation request goes out
    GRANTED = "granted"
    RESENT = "resent"  # already pending: the confirmation goes out again
    UNCHANGED = "unchanged"  # already subscribed


def outcome_for(
    status: ConsentStatus | None,
    confirmed: bool,
    confirmable: bool,
    needs_confirmation: bool,
    *,
    topic_needs_confirmation: bool,
    can_confirm: bool = True,
    express: bool = True,
    expired: bool = False,
) -> Outcome:
    """What a ticked box does, given the state of its contact point (module docstring).

    ``confirmable``: a pending state may still be confirmed (within its lifetime).
    ``needs_confirmation``: this box subscribes only once confirmed (the form or the topic
    asks it); ``topic_needs_confirmation``: the topic requires confirmed opt-in, so an active
    but unconfirmed consent does not count (the gate refuses it) and is asked again.
    ``can_confirm``: the channel has a confirmation (a link, a YES reply); WhatsApp has none.
    ``express``: the standing consent's basis is express (not implied or soft opt-in);
    ``expired``: it is active in name only, past its expiry (the gate calls it lapsed).

    A person who withdrew is subscribed again only by their own act: a box that would grant at
    once asks for confirmation instead, and one that cannot be confirmed changes nothing (the
    person can write to the business on WhatsApp themselves, click-to-chat)."""
    if status is ConsentStatus.WITHDRAWN and not needs_confirmation:
        return Outcome.REQUESTED if can_confirm else Outcome.UNCHANGED
    if status is ConsentStatus.ACTIVE and expired:
        status = None  # nothing stands: start afresh
    if status is ConsentStatus.ACTIVE and (
        confirmed or not needs_confirmation or not topic_needs_confirmation
    ):
        if not express and not needs_confirmation:
            return Outcome.GRANTED  # an implied consent becomes express: the person ticked it
        # Nothing to add; and a form never puts a standing consent back to pending.
        return Outcome.UNCHANGED
    if needs_confirmation:
        if status is ConsentStatus.PENDING and confirmable:
            return Outcome.RESENT
        return Outcome.REQUESTED
    return Outcome.GRANTED


def action_for(outcome: Outcome) -> ConsentAction | None:
    return {
        Outcome.REQUESTED: ConsentAction.REQUESTED,
        Outcome.GRANTED: ConsentAction.GRANTED,
    }.get(outcome)


def evidence_note(
    form: SubscriptionForm,
    submission_id: uuid.UUID,
    ticked: Ticked,
    *,
    page_url: str,
    referrer: str | None,
    embedded: bool,
) -> str:
    """The submission as the ledger keeps it (sealed): form, revision, where it was filled in,
    the boxes offered and exactly the boxes ticked, and the age statement."""
    parts = [
        f"form={form.key}",
        f"form_id={form.id}",
        f"revision={form.revision}",
        f"submission={submission_id}",
        f"page={page_url}",
        f"referrer={referrer or '-'}",
        f"embedded={'yes' if embedded else 'no'}",
        "offered=" + ",".join(c.value for c in form.choices),
        "ticked=" + ",".join(c.value for c in ticked.choices),
    ]
    if ticked.adult is not None:
        parts.append(f"adult={'yes' if ticked.adult else 'no'}")
    return "; ".join(parts)
