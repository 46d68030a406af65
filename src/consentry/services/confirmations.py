"""Confirmed opt-in: sending the confirmation request, and sending it again.

A ``requested`` consent on email or SMS leaves the contact point pending (the gate refuses every
message on the topic with CONSENT_PENDING) and sends one confirmation request, a service message:
by email a link to ``/c/{token}``, by SMS a text asking to reply YES that names the brand, the
program, the frequency, "Msg&data rates may apply", HELP and STOP. Confirming appends a
``confirmed`` event (basis double_opt_in) with its own evidence: the page's URL without the token,
IP address, user agent and time, or the keyword and the inbound message id of the YES reply.

Confirming and lapsing live in services/confirming.py. Sending happens after commit, through
``send``; a request whose message could not be handed to the channel stays pending and can be
sent again.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from consentry.domain.confirmation import RateLimited, confirmation_refusal
from consentry.domain.consent import (
    ConsentAction,
    ConsentState,
)
from consentry.domain.delivery import DeliveryError, EmailMessage, OutboundMessage, SmsMessage
from consentry.domain.errors import Conflict
from consentry.domain.gate import SuppressionFact
from consentry.domain.model import Channel, Contact, Tenant, Topic
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.compose.confirmation import (
    ConfirmationClaims,
    ConfirmationTokens,
    sms_confirmation_text,
)
from consentry.services.compose.mime import plain_text_email
from consentry.services.consent import ConsentRequest, Recorded, record_consent
from consentry.services.contacts import resolve_contact
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

log = logging.getLogger(__name__)
NOT_A_DELIVERY = 0  # a confirmation request belongs to no campaign or send
CONFIRMING_CHANNELS = frozenset({Channel.EMAIL, Channel.SMS})
Send = Callable[[OutboundMessage], None]


class NotPending(Conflict):
    """There is no pending request to (re)send a confirmation for."""

    code = "CONSENT_NOT_PENDING"


@dataclass(frozen=True, slots=True)
class ConfirmationConfig:
    public_base_url: str
    sms_sender: str
    sms_frequency: str = "Message frequency varies."
    sms_help_contact: str = ""
    resend_interval: timedelta = timedelta(minutes=5)


_PRUNE_AT = 10_000


class ResendLimits:
    """One confirmation request per contact point, topic and channel per ``interval``.

    Kept in the process (like the preference centre's entry limits): replicas each apply it.
    """

    def __init__(self, interval: timedelta) -> None:
        self._interval = interval
        self._last: dict[bytes, datetime] = {}
        self._lock = threading.Lock()

    def take(self, key: bytes, now: datetime) -> None:
        """Record a send now, or raise RateLimited with the seconds left to wait."""
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self._interval:
                wait = math.ceil((last + self._interval - now).total_seconds())
                raise RateLimited(
                    f"a confirmation was sent recently; try again in {wait} seconds",
                    retry_after=max(wait, 1),
                )
            if len(self._last) >= _PRUNE_AT:  # keep memory bounded: forget what has expired
                self._last = {k: t for k, t in self._last.items() if now - t < self._interval}
            self._last[key] = now


@dataclass(frozen=True, slots=True)
class Confirmers:
    """What sending confirmation requests needs."""

    tokens: ConfirmationTokens
    config: ConfirmationConfig
    limits: ResendLimits
    send: Send


@dataclass(frozen=True, slots=True)
class Requested:
    recorded: Recorded
    sent: bool  # a confirmation request went out


def _suppression_facts(
    uow: UnitOfWork, tenant_id: uuid.UUID, state: ConsentState
) -> tuple[SuppressionFact, ...]:
    found = uow.suppressions.active_for(tenant_id, state.point_key, state.channel)
    return tuple(SuppressionFact(s.reason, s.scope, s.tenant_id is None) for s in found)


def confirmation_message(  # noqa: PLR0917  (one request: who, to what, under which settings)
    uow: UnitOfWork,
    tokens: ConfirmationTokens,
    config: ConfirmationConfig,
    tenant: Tenant,
    contact: Contact,
    topic: Topic,
    state: ConsentState,
    now: datetime,
) -> OutboundMessage | None:
    """The confirmation request for a pending state, or None when it may not go."""
    refused = confirmation_refusal(
        state.status,
        state.granted_at,
        tokens.lifetime,
        tenant.status,
        _suppression_facts(uow, tenant.id, state),
        now,
    )
    address = contact.address_for(state.channel)
    if refused is not None or address is None or state.channel not in CONFIRMING_CHANNELS:
        return None
    if uow.contacts.point_key(contact, state.channel) != state.point_key:
        # The contact's address changed since the request: the request (and its suppression
        # check above) is for the old address, and the new one never asked for anything.
        return None
    if state.channel is Channel.SMS:
        text = sms_confirmation_text(
            tenant.name, topic.name, config.sms_frequency, config.sms_help_contact
        )
        return SmsMessage(
            NOT_A_DELIVERY, tenant.id, address, config.sms_sender, text, uuid.uuid4().hex
        )
    claims = ConfirmationClaims(
        tenant.id, contact.id, topic.id, state.channel, state.point_key, state.event_id, now
    )
    url = f"{config.public_base_url.rstrip('/')}/c/{tokens.mint(claims)}"
    domains = uow.sender_domains.list(tenant.id)
    domain = (
        domains[0].domain if domains else (urlsplit(config.public_base_url).hostname or "local")
    )
    return _email(tenant, topic, address, domain, url, now, tokens.lifetime)


def _email(  # noqa: PLR0917  (the parts of one message)
    tenant: Tenant,
    topic: Topic,
    to: str,
    domain: str,
    url: str,
    now: datetime,
    lifetime: timedelta,
) -> EmailMessage:
    business = tenant.profile.legal_name or tenant.name
    message_id = make_msgid(domain=domain).strip("<>")
    days = max(1, lifetime.days)
    text = (
        f"You asked to receive {topic.name} from {business} by email.\n\n"
        f"Please confirm by opening this link and pressing Confirm:\n{url}\n\n"
        f"The link works once and for {days} day{'s' if days != 1 else ''}. "
        "If you did not ask for this, ignore this message: you will get nothing more.\n"
    )
    subject = f"Please confirm: {topic.name} from {tenant.name}"
    sender = f"{tenant.slug}@{domain}"
    return EmailMessage(
        delivery_id=NOT_A_DELIVERY,
        tenant_id=tenant.id,
        mail_from=f"bounces@{domain}",
        rcpt_to=to,
        data=plain_text_email(tenant.name, sender, to, subject, text, now, message_id),
        message_id=message_id,
    )


def resend_key(
    tenant_id: uuid.UUID, topic_id: uuid.UUID, channel: Channel, point_key: bytes
) -> bytes:
    parts = (tenant_id.bytes, topic_id.bytes, channel.value.encode(), point_key)
    return hashlib.sha256(b"\x00".join(parts)).digest()


def sends_confirmation(request: ConsentRequest) -> bool:
    """Whether ``request_consent`` sends a confirmation request for ``request`` (after its
    commit): a ``requested`` event on a channel that confirms. Otherwise it is exactly
    ``record_consent``."""
    return request.action is ConsentAction.REQUESTED and request.channel in CONFIRMING_CHANNELS


def request_consent(
    uow: UnitOfWork,
    confirmers: Confirmers,
    tenant_ref: TenantRef,
    request: ConsentRequest,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> Requested:
    """Record a consent event (``record_consent``: commits); when it is a ``requested`` event
    on email or SMS, send the confirmation request after the commit."""
    now = now or utcnow()
    confirming = sends_confirmation(request)
    if confirming:
        # Checked before anything is written: a refused request changes nothing.
        confirmers.limits.take(_request_key(uow, tenant_ref, request), now)
    recorded = record_consent(uow, tenant_ref, request, now, context)
    state = recorded.state
    if not confirming:
        return Requested(recorded, sent=False)
    with uow:
        tenant = uow.tenants.get(state.tenant_id)
        topic = uow.topics.get(tenant.id, state.topic_id)
        contact = uow.contacts.get(tenant.id, state.contact_id)
        message = confirmation_message(
            uow, confirmers.tokens, confirmers.config, tenant, contact, topic, state, now
        )
    if message is None:
        return Requested(recorded, sent=False)
    try:
        confirmers.send(message)
    except DeliveryError as exc:
        # The request stands (committed); the caller sees sent=False and may resend.
        log.warning(
            "confirmation request not sent",
            extra={"event_id": str(recorded.event.id), "code": exc.code},
        )
        return Requested(recorded, sent=False)
    return Requested(recorded, sent=True)


def _request_key(uow: UnitOfWork, tenant_ref: TenantRef, request: ConsentRequest) -> bytes:
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        topic = uow.topics.by_key(tenant.id, request.topic)
        contact = resolve_contact(uow, tenant, request.contact)
        point_key = uow.contacts.point_key(contact, request.channel) or b""
    return resend_key(tenant.id, topic.id, request.channel, point_key)


def resend_confirmation(  # noqa: PLR0917  (a use case with its collaborators)
    uow: UnitOfWork,
    confirmers: Confirmers,
    tenant_ref: TenantRef,
    contact_ref: str,
    topic_key: str,
    channel: Channel,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> None:
    """Send the confirmation request of a pending consent again. NotPending if there is none
    that may be confirmed; RateLimited if one went out less than the resend interval ago.
    Writes only an audit entry (through the API)."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        topic = uow.topics.by_key(tenant.id, topic_key)
        contact = resolve_contact(uow, tenant, contact_ref)
        state = uow.consent_states.get(tenant.id, contact.id, topic.id, channel)
        message = (
            None
            if state is None
            else confirmation_message(
                uow, confirmers.tokens, confirmers.config, tenant, contact, topic, state, now
            )
        )
        if state is None or message is None:
            raise NotPending(
                "there is no pending request to confirm for this topic and channel",
                field="topic",
            )
        confirmers.limits.take(resend_key(tenant.id, topic.id, channel, state.point_key), now)
        audit(uow, context, tenant.id, "consent.confirmation_resent", "contact", contact.id)
        uow.commit()
    confirmers.send(message)
