"""Confirming a confirmed opt-in request, and letting unconfirmed ones lapse.

A link's token (services/compose/confirmation.py) names the ``requested`` event it confirms; it
confirms only that request, while it is still pending and within its lifetime, so it is single
use with nothing stored. A YES reply confirms the pending SMS requests of the number it came
from. ``lapse_pending`` appends ``lapsed`` for requests left unconfirmed past the lifetime.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from consentry.domain.confirmation import request_expired
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Evidence,
)
from consentry.domain.errors import NotFound
from consentry.domain.model import Category, Channel, Contact, Tenant, Topic
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.services.clock import utcnow
from consentry.services.compose.confirmation import (
    NOT_VALID,
    ConfirmationClaims,
    ConfirmationTokens,
)
from consentry.services.compose.tokens import InvalidToken
from consentry.services.consent import append_about
from consentry.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class ConfirmationView:
    """What a confirmation link is about: the business, the topic, the channel."""

    claims: ConfirmationClaims
    tenant: Tenant
    contact: Contact
    topic: Topic

    @property
    def business_name(self) -> str:
        return self.tenant.profile.legal_name or self.tenant.name

    @property
    def channel(self) -> Channel:
        return self.claims.channel


def _resolve(uow: UnitOfWork, claims: ConfirmationClaims) -> ConfirmationView:
    try:
        tenant = uow.tenants.get(claims.tenant_id)
        topic = uow.topics.get(tenant.id, claims.topic_id)
        contact = uow.contacts.get(tenant.id, claims.contact_id)
    except NotFound:
        raise InvalidToken(NOT_VALID) from None
    return ConfirmationView(claims, tenant, contact, topic)


def _confirmable(
    state: ConsentState | None, claims: ConfirmationClaims, lifetime: timedelta, now: datetime
) -> bool:
    return (
        state is not None
        and state.status is ConsentStatus.PENDING
        and state.event_id == claims.request_event_id
        and state.point_key == claims.point_key
        and state.granted_at is not None
        and not request_expired(state.granted_at, lifetime, now)
    )


def read_confirmation(
    uow: UnitOfWork, tokens: ConfirmationTokens, token: str, *, now: datetime | None = None
) -> ConfirmationView:
    """What a link would confirm; InvalidToken if it confirms nothing. Writes nothing: link
    scanners fetch pages before people do."""
    now = now or utcnow()
    claims = tokens.read(token, now)
    with uow:
        view = _resolve(uow, claims)
        state = uow.consent_states.get(
            claims.tenant_id, claims.contact_id, claims.topic_id, claims.channel
        )
        if not _confirmable(state, claims, tokens.lifetime, now):
            raise InvalidToken(NOT_VALID)
        return view


def confirm(
    uow: UnitOfWork,
    tokens: ConfirmationTokens,
    token: str,
    evidence: Evidence,
    *,
    now: datetime | None = None,
) -> tuple[ConfirmationView, ConsentEvent]:
    """Confirm the pending request a link names: appends a ``confirmed`` event (basis
    double_opt_in) with ``evidence``; commits. InvalidToken, with nothing written, for a forged,
    expired or used link, or one whose request was superseded or has lapsed."""
    now = now or utcnow()
    claims = tokens.read(token, now)
    with uow:
        view = _resolve(uow, claims)
        # Two clicks at once: the second waits here, then finds the request confirmed.
        uow.fences.exclusive([claims.point_key])
        state = uow.consent_states.get(
            claims.tenant_id, claims.contact_id, claims.topic_id, claims.channel
        )
        if state is None or not _confirmable(state, claims, tokens.lifetime, now):
            raise InvalidToken(NOT_VALID)
        event = _confirm(uow, state, view.topic, evidence, now, by="signal:confirmation_page")
        uow.commit()
    return view, event


def _confirm(  # noqa: PLR0917  (the confirmation and who lifts what)
    uow: UnitOfWork,
    state: ConsentState,
    topic: Topic,
    evidence: Evidence,
    now: datetime,
    by: str,
) -> ConsentEvent:
    """Append ``confirmed`` and, for a marketing topic, lift the tenant's "unsubscribed from
    marketing" block on that channel: confirming is a new affirmative act, as re-subscribing in
    the preference centre is. Other marketing topics stay withdrawn in the ledger."""
    event = append_about(
        uow, state, ConsentAction.CONFIRMED, ConsentBasis.DOUBLE_OPT_IN, evidence, now
    )
    lift_marketing_unsubscribe(uow, topic, state.tenant_id, state.point_key, state.channel, now, by)
    return event


def lift_marketing_unsubscribe(  # noqa: PLR0917  (who lifts which block, when)
    uow: UnitOfWork,
    topic: Topic,
    tenant_id: uuid.UUID,
    point_key: bytes,
    channel: Channel,
    now: datetime,
    by: str,
) -> None:
    """A new affirmative act for a marketing topic lifts the tenant's own "unsubscribed from
    marketing" block on that channel; nothing else (bounces, complaints, platform blocks)."""
    if topic.category is not Category.MARKETING:
        return
    for block in uow.suppressions.active_for(tenant_id, point_key, channel):
        if (
            block.tenant_id == tenant_id
            and block.reason is SuppressionReason.UNSUBSCRIBED
            and block.scope is SuppressionScope.MARKETING
        ):
            uow.suppressions.lift(block.id, now, by)


def confirm_by_reply(
    uow: UnitOfWork,
    point_key: bytes,
    inbound_message_id: str,
    *,
    lifetime: timedelta,
    now: datetime,
) -> list[tuple[Tenant, Topic]]:
    """A YES from a number confirms what it answers: the pending SMS requests of that number
    (within their lifetime) made together most recently, by one tenant; (tenant, topic) of each
    confirmed. Older requests, and other businesses' requests sharing the sender number, stay
    pending: a YES is consent to the message the person just read, not to every request ever
    sent to the number. Inside the caller's transaction."""
    evidence = Evidence(method=ConsentMethod.KEYWORD, inbound_message_id=inbound_message_id)
    pending: list[tuple[uuid.UUID, ConsentState]] = []
    for tenant_id, contact_id in uow.signals.contacts_with_point(Channel.SMS, point_key):
        pending.extend(
            (tenant_id, state)
            for state in uow.consent_states.for_contact(tenant_id, contact_id)
            if state.channel is Channel.SMS
            and state.point_key == point_key
            and state.status is ConsentStatus.PENDING
            and state.granted_at is not None
            and not request_expired(state.granted_at, lifetime, now)
        )
    if not pending:
        return []
    # The latest request, and any made with it (one form's boxes share their request time).
    tenant_id, latest = max(pending, key=lambda p: (p[1].granted_at, p[1].seq))
    answered = [
        state for t, state in pending if t == tenant_id and state.granted_at == latest.granted_at
    ]
    confirmed: list[tuple[Tenant, Topic]] = []
    for state in answered:
        topic = uow.topics.get(tenant_id, state.topic_id)
        _confirm(uow, state, topic, evidence, now, by=f"keyword:{inbound_message_id}")
        confirmed.append((uow.tenants.get(tenant_id), topic))
    return confirmed


# -- lapsing ------------------------------------------------------------------------------------


def lapse_pending(uow: UnitOfWork, *, lifetime: timedelta, now: datetime | None = None) -> int:
    """Append a ``lapsed`` event for every request pending for longer than ``lifetime``, in
    every tenant; the number lapsed. Commits once per tenant."""
    now = now or utcnow()
    evidence = Evidence(method=ConsentMethod.API, actor="system:lapse-pending")
    with uow:
        tenant_ids = [t.id for t in uow.tenants.list()]
    lapsed = 0
    for tenant_id in tenant_ids:
        with uow:
            for state in uow.consent_states.for_tenant(tenant_id):
                if (
                    state.status is ConsentStatus.PENDING
                    and state.granted_at is not None
                    and request_expired(state.granted_at, lifetime, now)
                ):
                    append_about(uow, state, ConsentAction.LAPSED, state.basis, evidence, now)
                    lapsed += 1
            uow.commit()
    return lapsed
