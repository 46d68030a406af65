"""Opt-outs through the links in a message: the unsubscribe page, RFC 8058 one-click, mailto.

A link's token names the tenant, contact, topic, channel and the address the message went to
(services/compose/tokens.py). ``unsubscribe`` withdraws consent for that topic, or for every
marketing topic on that channel plus a tenant suppression ("all marketing"), under the opt-out
fence: once it commits, no message to that address that the withdrawal forbids can still leave
(guarantee 1). It is idempotent: a second request finds nothing left to withdraw and appends no
ledger event. A forged, expired or unknown token (tenant, topic or contact gone) raises
``InvalidToken`` (TOKEN_INVALID) and changes nothing; callers answer every bad token alike.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

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
from consentry.domain.ids import new_id
from consentry.domain.model import ALL_MARKETING_KEY, Category, Channel, Contact, Tenant, Topic
from consentry.domain.signals import SignalSource
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.services.clock import utcnow
from consentry.services.compose.tokens import InvalidToken, TokenClaims, UnsubscribeTokens
from consentry.services.consent import append_and_fold
from consentry.services.ports import UNREAD, UnitOfWork, Unread

What = Literal["topic", "all_marketing"]
_OPEN = frozenset({ConsentStatus.ACTIVE, ConsentStatus.PENDING})


@dataclass(frozen=True, slots=True)
class OptOutEvidence:
    """Where a "no" came from: the signal, the page URL, and the browser that sent it."""

    signal: SignalSource
    source: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None

    def evidence(self) -> Evidence:
        # The ledger has no method for a mail sent to an unsubscribe address; "api" is the
        # machine-to-machine method, and the actor names the signal.
        method = ConsentMethod.API if self.signal is SignalSource.MAILTO else ConsentMethod.WEB_FORM
        return Evidence(
            method=method,
            source=self.source,
            ip_address=self.ip_address,
            user_agent=self.user_agent,
            actor=f"signal:{self.signal.value}",
        )


@dataclass(frozen=True, slots=True)
class LinkView:
    """What a valid link is about: the business (by its legal name), the person, the topic."""

    claims: TokenClaims
    tenant: Tenant
    contact: Contact
    topic: Topic

    @property
    def business_name(self) -> str:
        return self.tenant.profile.legal_name or self.tenant.name

    @property
    def channel(self) -> Channel:
        return self.claims.channel


@dataclass(frozen=True, slots=True)
class Unsubscribed:
    view: LinkView
    what: What
    withdrawn: tuple[str, ...]  # topic keys withdrawn by this request (empty when repeated)
    suppressed: bool  # a new "unsubscribed" suppression was added


def resolve(uow: UnitOfWork, claims: TokenClaims) -> LinkView:
    """The link's tenant, contact and topic inside an open unit of work; InvalidToken if any is
    gone (an erased contact included), with the same words as a forged token."""
    try:
        tenant = uow.tenants.get(claims.tenant_id)
        topic = uow.topics.get(tenant.id, claims.topic_id)
        contact = uow.contacts.get(tenant.id, claims.contact_id)
    except NotFound:
        raise InvalidToken("the link is not valid") from None
    return LinkView(claims, tenant, contact, topic)


def read_token(
    uow: UnitOfWork, tokens: UnsubscribeTokens, token: str, *, now: datetime | None = None
) -> LinkView:
    """What a link is about; writes nothing (link scanners fetch pages before people do)."""
    claims = tokens.read(token, now or utcnow())
    with uow:
        return resolve(uow, claims)


def append_event(  # noqa: PLR0917  (the ledger's coordinates, in their usual order)
    uow: UnitOfWork,
    view: LinkView,
    topic: Topic,
    channel: Channel,
    point_key: bytes,
    action: ConsentAction,
    basis: ConsentBasis,
    evidence: Evidence,
    now: datetime,
    *,
    previous: ConsentState | Unread | None = UNREAD,
    commit: bool = False,
) -> ConsentEvent:
    """Append one event and fold it into the state projection (the caller's transaction);
    ``previous`` and ``commit`` as ``append_and_fold`` takes them."""
    event = ConsentEvent(
        id=new_id(),
        tenant_id=view.tenant.id,
        contact_id=view.contact.id,
        point_key=point_key,
        topic_id=topic.id,
        channel=channel,
        action=action,
        basis=basis,
        evidence=evidence,
        occurred_at=now,
        recorded_at=now,
    )
    return append_and_fold(uow, event, previous, commit=commit)[0]


def withdraw(  # noqa: PLR0917  (see append_event)
    uow: UnitOfWork,
    view: LinkView,
    topic: Topic,
    channel: Channel,
    point_key: bytes,
    evidence: Evidence,
    now: datetime,
    *,
    commit: bool = False,
) -> bool:
    """Withdraw one topic on one channel unless it already is; True if an event was added.
    ``commit``: the withdrawal is the transaction's last write (``append_and_fold``)."""
    state = uow.consent_states.get(view.tenant.id, view.contact.id, topic.id, channel)
    if state is not None and state.point_key == point_key:
        if state.status is ConsentStatus.WITHDRAWN:
            return False
        basis = state.basis
    else:
        basis = ConsentBasis.EXPRESS
    append_event(
        uow, view, topic, channel, point_key, ConsentAction.WITHDRAWN, basis, evidence, now,
        previous=state, commit=commit,
    )  # fmt: skip
    return True


def marketing_topics(uow: UnitOfWork, tenant_id: uuid.UUID) -> list[Topic]:
    return [t for t in uow.topics.list(tenant_id) if t.category is Category.MARKETING]


def stop_marketing(
    uow: UnitOfWork,
    view: LinkView,
    channel: Channel,
    point_key: bytes,
    *,
    evidence: OptOutEvidence,
    now: datetime,
) -> tuple[list[str], bool]:
    """Withdraw every open marketing consent on ``channel`` and "all marketing" itself, and add
    the tenant's unsubscribed-from-marketing suppression; (topics withdrawn, suppression added).
    The caller holds the fence and commits."""
    states = {
        s.topic_id: s
        for s in uow.consent_states.for_contact(view.tenant.id, view.contact.id)
        if s.channel is channel and s.point_key == point_key
    }
    withdrawn = []
    for topic in marketing_topics(uow, view.tenant.id):
        state = states.get(topic.id)
        wanted = topic.key == ALL_MARKETING_KEY or (state is not None and state.status in _OPEN)
        if wanted and withdraw(uow, view, topic, channel, point_key, evidence.evidence(), now):
            withdrawn.append(topic.key)
    return withdrawn, suppress_marketing(
        uow, view.tenant.id, channel, point_key, evidence=evidence, now=now
    )


def suppress_marketing(
    uow: UnitOfWork,
    tenant_id: uuid.UUID,
    channel: Channel,
    point_key: bytes,
    *,
    evidence: OptOutEvidence,
    now: datetime,
) -> bool:
    """Add the tenant's "unsubscribed from marketing" block on one channel unless it stands;
    True if added. The caller holds the fence and commits."""
    standing = [
        s
        for s in uow.suppressions.active_for(tenant_id, point_key, channel)
        if s.tenant_id == tenant_id
        and s.reason is SuppressionReason.UNSUBSCRIBED
        and s.scope is SuppressionScope.MARKETING
    ]
    if standing:
        return False
    uow.suppressions.add(
        Suppression(
            id=new_id(),
            tenant_id=tenant_id,
            point_key=point_key,
            channel=channel,
            scope=SuppressionScope.MARKETING,
            reason=SuppressionReason.UNSUBSCRIBED,
            created_at=now,
            source=evidence.signal.value,
            actor=f"signal:{evidence.signal.value}",
        )
    )
    return True


def unsubscribe(
    uow: UnitOfWork,
    tokens: UnsubscribeTokens,
    token: str,
    *,
    what: What,
    evidence: OptOutEvidence,
    now: datetime | None = None,
) -> Unsubscribed:
    """Withdraw the link's topic (``what="topic"``), or all marketing on the link's channel.

    Takes the opt-out fence on the address before writing; commits. Repeating it appends
    nothing. InvalidToken for a bad link, with nothing written.
    """
    now = now or utcnow()
    claims = tokens.read(token, now)
    with uow:
        view = resolve(uow, claims)
        uow.fences.exclusive([claims.point_key])
        if what == "topic":
            added = withdraw(
                uow, view, view.topic, claims.channel, claims.point_key, evidence.evidence(), now,
                commit=True,
            )  # fmt: skip
            withdrawn, suppressed = [view.topic.key] if added else [], False
        else:
            withdrawn, suppressed = stop_marketing(
                uow, view, claims.channel, claims.point_key, evidence=evidence, now=now
            )
        uow.commit()
    return Unsubscribed(view, what, tuple(withdrawn), suppressed)


def unsubscribe_by_mail(
    uow: UnitOfWork, tokens: UnsubscribeTokens, token: str, *, now: datetime | None = None
) -> Unsubscribed:
    """The ``mailto:`` List-Unsubscribe variant: a mail to unsubscribe+<token>@<domain>
    withdraws the link's topic, like a one-click POST. Commits; InvalidToken for a bad token."""
    evidence = OptOutEvidence(SignalSource.MAILTO, source="mailto")
    return unsubscribe(uow, tokens, token, what="topic", evidence=evidence, now=now)
