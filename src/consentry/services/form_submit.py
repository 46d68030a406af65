"""A public subscription form sent back (the page itself is services/form_page.py).

``submit_form`` takes a submission: bot checks (honeypot, token age), the boxes and addresses,
the age answer, then in one transaction the contacts, the submission record (a form posted
twice writes once) and one consent event per ticked box that changes something (domain/forms.py),
with the form's evidence. Confirmation requests go out after the commit.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.confirmation import RateLimited
from consentry.domain.consent import (
    EXPRESS_BASES,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    Evidence,
)
from consentry.domain.delivery import DeliveryError, OutboundMessage
from consentry.domain.errors import AlreadyExists, NotFound
from consentry.domain.forms import (
    CONFIRMABLE,
    FORM_CHANNELS,
    FormAlreadySent,
    FormChoice,
    FormExpired,
    FormRejected,
    Outcome,
    SubscriptionForm,
    Ticked,
    action_for,
    check_age,
    evidence_note,
    outcome_for,
    read_ticked,
)
from consentry.domain.ids import new_id
from consentry.domain.model import (
    Channel,
    Contact,
    PolicyDocument,
    PolicyStatus,
    Tenant,
    Topic,
)
from consentry.domain.rules import pack_for
from consentry.services.clock import utcnow
from consentry.services.confirmations import Confirmers, confirmation_message, resend_key
from consentry.services.consent import append_and_fold
from consentry.services.contacts import ContactInput, build_contact
from consentry.services.form_page import open_form
from consentry.services.form_tokens import FormClaims, FormTokens, TokenKind
from consentry.services.ports import UnitOfWork

log = logging.getLogger(__name__)
EMBED_DEDUPE_WINDOW = 600  # seconds: an embedded form sent again within it writes once


@dataclass(frozen=True, slots=True)
class Submission:
    """A form as posted, raw."""

    tenant_slug: str
    form_key: str
    token: str
    choices: Sequence[str]
    email: str | None
    phone: str | None
    whatsapp: str | None
    name: str | None
    adult: str | None
    honeypot: str | None
    page_url: str  # the form's public URL
    referrer: str | None
    ip_address: str
    user_agent: str


@dataclass(frozen=True, slots=True)
class BoxResult:
    choice: FormChoice
    topic_name: str
    outcome: Outcome
    confirming: bool  # the box subscribes once confirmed, whatever stood before


@dataclass(frozen=True, slots=True)
class Submitted:
    tenant: Tenant
    form: SubscriptionForm
    results: tuple[BoxResult, ...]
    confirmations: tuple[OutboundMessage, ...]  # to send after the answer (send_confirmations)

    def awaiting_confirmation(self) -> frozenset[Channel]:
        """The channels the answer asks to confirm: those of boxes that need it, whether or
        not the address was subscribed already (the answer does not tell a stranger)."""
        return frozenset(r.choice.channel for r in self.results if r.confirming)


def _check_bot(submission: Submission, tokens: FormTokens, now: datetime) -> FormClaims:
    if (submission.honeypot or "").strip():
        # The field is hidden from people (and labelled "leave empty" for screen readers).
        raise FormRejected(
            "the form could not be accepted; if you are a person, reload the page and try again",
            field="website",
        )
    return tokens.read(submission.token, now)


def _candidate(tenant: Tenant, ticked: Ticked, now: datetime) -> tuple[Contact, ContactInput]:
    """A new contact with the addresses of the ticked channels, validated (InvalidEmail,
    InvalidPhone name the field); not stored."""
    channels = {c.channel for c in ticked.choices}
    data = ContactInput(
        name=ticked.name,
        email=ticked.email if Channel.EMAIL in channels else None,
        phone=ticked.phone if Channel.SMS in channels else None,
        whatsapp=ticked.whatsapp if Channel.WHATSAPP in channels else None,
        age_attested=ticked.adult is True,
    )
    return build_contact(tenant, data, now, new_id()), data


def _known(
    uow: UnitOfWork, tenant: Tenant, candidate: Contact, channels: Sequence[Channel]
) -> tuple[dict[Channel, Contact], list[Channel]]:
    found: dict[Channel, Contact] = {}
    unknown: list[Channel] = []
    for channel in channels:
        address = candidate.address_for(channel) or ""  # read_ticked made sure it was given
        contact = uow.contacts.find_by_address(tenant.id, channel, address)
        if contact is None:
            unknown.append(channel)
        else:
            found[channel] = contact
    return found, unknown


def _contacts(
    uow: UnitOfWork, tenant: Tenant, candidate: Contact, data: ContactInput, now: datetime
) -> dict[Channel, Contact]:
    """The contact each ticked channel's address belongs to. An address we know keeps its
    contact; addresses we do not know go together on one new contact. A form never changes a
    contact we already had: anyone can type anyone's address."""
    channels = sorted(ch for ch in FORM_CHANNELS if candidate.address_for(ch))
    found, unknown = _known(uow, tenant, candidate, channels)
    if not unknown:
        return found
    if found:  # keep only the unknown addresses on the new contact
        candidate = build_contact(
            tenant,
            ContactInput(
                name=data.name,
                email=data.email if Channel.EMAIL in unknown else None,
                phone=data.phone if Channel.SMS in unknown else None,
                whatsapp=data.whatsapp if Channel.WHATSAPP in unknown else None,
                age_attested=data.age_attested,
            ),
            now,
            candidate.id,
        )
    try:
        uow.contacts.add(candidate)
    except AlreadyExists:
        # Someone else's submission with the same new address committed first: take theirs.
        return found | _known(uow, tenant, candidate, unknown)[0]
    return found | dict.fromkeys(unknown, candidate)


def _dedupe_key(
    claims: FormClaims, form: SubscriptionForm, point_keys: Sequence[bytes], ticked: Ticked,
    now: datetime,
) -> bytes:  # fmt: skip
    if claims.kind is TokenKind.HOSTED:
        return hashlib.sha256(b"hosted\x00" + claims.nonce).digest()
    window = int(now.timestamp()) // EMBED_DEDUPE_WINDOW
    parts = [b"embedded", form.id.bytes, str(window).encode(), *sorted(point_keys)]
    parts += sorted(c.value.encode() for c in ticked.choices)
    return hashlib.sha256(b"\x00".join(parts)).digest()


def _disclosure(uow: UnitOfWork, tenant: Tenant, claims: FormClaims) -> PolicyDocument:
    """The disclosure the page showed, as the token names it: still a published version."""
    try:
        document = (
            uow.policies.get(tenant.id, claims.disclosure_id) if claims.disclosure_id else None
        )
    except NotFound:
        document = None
    if document is None or document.status is not PolicyStatus.PUBLISHED:
        raise FormExpired("this form has changed; please check it and send it again",
                          field="form_token")  # fmt: skip
    return document


def _as_first(
    form: SubscriptionForm, topics: dict[uuid.UUID, Topic], ticked: Ticked
) -> tuple[BoxResult, ...]:
    return tuple(
        BoxResult(
            c, topics[c.topic_id].name, Outcome.UNCHANGED, _confirming(form, topics[c.topic_id], c)
        )
        for c in ticked.choices
    )


def _confirming(form: SubscriptionForm, topic: Topic, choice: FormChoice) -> bool:
    return choice.channel in CONFIRMABLE and (form.confirm or topic.requires_double_opt_in)


def _outcome(  # noqa: PLR0917  (one box of one submission)
    uow: UnitOfWork, form: SubscriptionForm, topic: Topic, contact: Contact,
    choice: FormChoice, lifetime_ok: Callable[[ConsentState], bool],
) -> Outcome:  # fmt: skip
    state = uow.consent_states.get(form.tenant_id, contact.id, topic.id, choice.channel)
    return outcome_for(
        state.status if state else None,
        bool(state and state.confirmed),
        bool(state and lifetime_ok(state)),
        _confirming(form, topic, choice),
        topic_needs_confirmation=topic.requires_double_opt_in,
        can_confirm=choice.channel in CONFIRMABLE,
        express=state is None or state.basis in EXPRESS_BASES,
        expired=bool(state and state.expires_at and state.expires_at <= utcnow()),
    )


def submit_form(
    uow: UnitOfWork,
    tokens: FormTokens,
    confirmers: Confirmers,
    submission: Submission,
    *,
    now: datetime | None = None,
) -> Submitted:
    """Take one submission (module docstring); commits. The confirmation requests it needs
    are returned for ``send_confirmations`` to send once the person has their answer.

    Raises, writing nothing: FormRejected (a bot), FormExpired (token too old, forged, or the
    form changed), FormNotFound, FormArchived, FormInvalid / InvalidEmail / InvalidPhone (a
    field, named), AgeBelowThreshold, FormAlreadySent (this very submission was taken)."""
    now = now or utcnow()
    claims = _check_bot(submission, tokens, now)
    lifetime = confirmers.tokens.lifetime
    with uow:
        tenant, form = open_form(uow, submission.tenant_slug, submission.form_key)
        if claims.form_id != form.id or claims.revision != form.revision:
            raise FormExpired("this form has changed; please check it and send it again",
                              field="form_token")  # fmt: skip
        document = _disclosure(uow, tenant, claims)
        ticked = read_ticked(
            form, submission.choices, email=submission.email, phone=submission.phone,
            whatsapp=submission.whatsapp, name=submission.name, adult=submission.adult,
        )  # fmt: skip
        topics = {c.topic_id: uow.topics.get(tenant.id, c.topic_id) for c in form.choices}
        check_age(ticked, {t.id: t.category for t in topics.values()},
                  pack_for(None, tenant.country).age_of_majority)  # fmt: skip
        candidate, data = _candidate(tenant, ticked, now)
        points = {
            c.channel: uow.contacts.point_key(candidate, c.channel) or b"" for c in ticked.choices
        }
        submission_id = new_id()
        try:
            # First, before any contact is made: a submission posted twice, both copies at
            # once, waits here for the first and then writes nothing.
            uow.forms.add_submission(
                submission_id, form, _dedupe_key(claims, form, list(points.values()), ticked, now),
                [c.value for c in ticked.choices], {}, document.id, now,
            )  # fmt: skip
        except FormAlreadySent:
            if claims.kind is TokenKind.HOSTED:
                raise
            # An embedded form cannot tell a reload from a stranger typing the same address:
            # both get the answer a first submission gets, so it reveals nothing.
            return Submitted(tenant, form, _as_first(form, topics, ticked), ())
        contacts = _contacts(uow, tenant, candidate, data, now)

        def confirmable(state: ConsentState) -> bool:
            return state.granted_at is not None and now - state.granted_at < lifetime

        results = tuple(
            BoxResult(
                c,
                topics[c.topic_id].name,
                _outcome(uow, form, topics[c.topic_id], contacts[c.channel], c, confirmable),
                _confirming(form, topics[c.topic_id], c),
            )
            for c in ticked.choices
        )
        uow.forms.record_outcomes(submission_id, {r.choice.value: r.outcome.value for r in results})
        evidence = Evidence(
            method=ConsentMethod.WEB_FORM,
            source=submission.page_url[:500],
            ip_address=submission.ip_address,
            user_agent=submission.user_agent,
            policy_document_id=document.id,
            disclosure_hash=document.content_hash,
            actor=f"form:{form.key}",
            note=evidence_note(
                form, submission_id, ticked, page_url=submission.page_url,
                referrer=submission.referrer, embedded=claims.kind is TokenKind.EMBEDDED,
            ),
        )  # fmt: skip
        states: list[tuple[Contact, Topic, ConsentState, bool]] = []
        # The last append is the transaction's last write: it commits with it.
        last = max(
            (i for i, r in enumerate(results) if action_for(r.outcome) is not None), default=-1
        )
        for i, result in enumerate(results):
            action = action_for(result.outcome)
            contact, topic = contacts[result.choice.channel], topics[result.choice.topic_id]
            if action is not None:
                _event, state = append_and_fold(
                    uow,
                    ConsentEvent(
                        id=new_id(), tenant_id=tenant.id, contact_id=contact.id,
                        point_key=points[result.choice.channel], topic_id=topic.id,
                        channel=result.choice.channel, action=action,
                        basis=ConsentBasis.EXPRESS, evidence=evidence, occurred_at=now,
                        recorded_at=now,
                    ),
                    commit=i == last,
                )  # fmt: skip
                if result.outcome is Outcome.REQUESTED:
                    states.append((contact, topic, state, True))
            elif result.outcome is Outcome.RESENT:
                found = uow.consent_states.get(tenant.id, contact.id, topic.id,
                                               result.choice.channel)  # fmt: skip
                if found is not None:
                    states.append((contact, topic, found, False))
        uow.commit()
    # Built after the commit: the tenant's ledger lock is held for the writes alone.
    with uow:
        messages = _confirmations(uow, confirmers, tenant, states, now) if states else []
    return Submitted(tenant, form, results, tuple(messages))


def _confirmations(
    uow: UnitOfWork,
    confirmers: Confirmers,
    tenant: Tenant,
    states: Sequence[tuple[Contact, Topic, ConsentState, bool]],
    now: datetime,
) -> list[OutboundMessage]:
    """The confirmation requests to send after commit. A new request always goes (and starts
    the resend interval); a repeat of a pending one goes only if the interval has passed."""
    messages = []
    for contact, topic, state, new in states:
        try:
            confirmers.limits.take(resend_key(tenant.id, topic.id, state.channel,
                                              state.point_key), now)  # fmt: skip
        except RateLimited:
            if not new:
                continue
        message = confirmation_message(
            uow, confirmers.tokens, confirmers.config, tenant, contact, topic, state, now
        )
        if message is not None:
            messages.append(message)
    return messages


def send_confirmations(confirmers: Confirmers, submitted: Submitted) -> int:
    """Send a submission's confirmation requests (after its commit); how many went out."""
    sent = 0
    for message in submitted.confirmations:
        try:
            confirmers.send(message)
        except DeliveryError as exc:
            # The request stands (committed) and may be sent again from the API, or by sending
            # the form again after the resend interval.
            log.warning("form confirmation request not sent", extra={"code": exc.code})
            continue
        sent += 1
    return sent
