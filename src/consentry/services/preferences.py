"""The preference centre: every topic on every channel of one person, changed topic by topic.

Reached through the link in a message (its token names the tenant and contact) or through a
one-time link sent on request (services/preference_links.py). Each change is a ledger event with
the page's evidence. Re-subscribing is a new affirmative act: ``granted`` on an express basis,
citing the tenant's published consent disclosure shown on the page, and it lifts the tenant's
"unsubscribed from marketing" block on that channel. "Stop all marketing" withdraws every
marketing topic on every channel and blocks marketing there. Service topics are not switched off
here: they are listed with the channels they still arrive on.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentState,
    ConsentStatus,
    Evidence,
)
from consentry.domain.errors import ConsentForMinor, DisclosureMismatch
from consentry.domain.model import (
    Category,
    Channel,
    PolicyDocument,
    PolicyKind,
    PolicyStatus,
    Topic,
)
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.services.clock import utcnow
from consentry.services.compose.tokens import UnsubscribeTokens
from consentry.services.optouts import (
    LinkView,
    OptOutEvidence,
    append_event,
    resolve,
    stop_marketing,
    withdraw,
)
from consentry.services.ports import UnitOfWork

PAGE_CHANNELS = (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP)


class Status(StrEnum):
    SUBSCRIBED = "subscribed"
    PENDING = "pending"  # waiting for a double opt-in confirmation
    NOT_SUBSCRIBED = "not subscribed"
    UNSUBSCRIBED = "unsubscribed"


@dataclass(frozen=True, slots=True)
class Preference:
    topic: Topic
    channel: Channel
    status: Status

    @property
    def field(self) -> str:
        return f"{self.topic.key}:{self.channel.value}"

    @property
    def on(self) -> bool:
        return self.status in (Status.SUBSCRIBED, Status.PENDING)


@dataclass(frozen=True, slots=True)
class Preferences:
    view: LinkView
    channels: tuple[Channel, ...]  # those the person has an address for
    marketing: tuple[Preference, ...]
    service: tuple[Preference, ...]
    stopped: tuple[Channel, ...]  # channels with the "unsubscribed from marketing" block
    disclosure: PolicyDocument | None  # what a new subscription agrees to

    @property
    def all_stopped(self) -> bool:
        return bool(self.channels) and set(self.stopped) == set(self.channels)


@dataclass(frozen=True, slots=True)
class Changes:
    granted: tuple[str, ...]
    withdrawn: tuple[str, ...]
    lifted: tuple[Channel, ...]
    stopped: tuple[Channel, ...]


def _disclosure(uow: UnitOfWork, tenant_id: uuid.UUID) -> PolicyDocument | None:
    published = [
        d
        for d in uow.policies.list(tenant_id, PolicyKind.CONSENT_DISCLOSURE)
        if d.status is PolicyStatus.PUBLISHED
    ]
    return max(published, key=lambda d: d.version) if published else None


def _status(state: ConsentState | None, point_key: bytes, topic: Topic, now: datetime) -> Status:
    if state is None or state.point_key != point_key:
        return Status.NOT_SUBSCRIBED
    if state.status is ConsentStatus.WITHDRAWN:
        return Status.UNSUBSCRIBED
    if state.status is ConsentStatus.PENDING:
        return Status.PENDING
    if state.status is ConsentStatus.ACTIVE and (
        state.expires_at is None or state.expires_at > now
    ):
        return (
            Status.PENDING
            if topic.requires_double_opt_in and not state.confirmed
            else (Status.SUBSCRIBED)
        )
    return Status.NOT_SUBSCRIBED


def _stopped(
    uow: UnitOfWork, tenant_id: uuid.UUID, channel: Channel, point_key: bytes
) -> list[Suppression]:
    return [
        s
        for s in uow.suppressions.active_for(tenant_id, point_key, channel)
        if s.tenant_id == tenant_id
        and s.reason is SuppressionReason.UNSUBSCRIBED
        and s.scope is SuppressionScope.MARKETING
    ]


def _load(
    uow: UnitOfWork, view: LinkView, now: datetime
) -> tuple[Preferences, dict[Channel, bytes]]:
    tenant, contact = view.tenant, view.contact
    keys = {
        ch: key for ch in PAGE_CHANNELS if (key := uow.contacts.point_key(contact, ch)) is not None
    }
    states = {
        (s.topic_id, s.channel): s for s in uow.consent_states.for_contact(tenant.id, contact.id)
    }
    topics = [t for t in uow.topics.list(tenant.id) if not t.umbrella]
    stopped = tuple(ch for ch, key in keys.items() if _stopped(uow, tenant.id, ch, key))
    rows = [
        Preference(t, ch, _status(states.get((t.id, ch)), key, t, now))
        for t in topics
        for ch, key in keys.items()
    ]
    found = Preferences(
        view=view,
        channels=tuple(keys),
        marketing=tuple(
            (
                Preference(p.topic, p.channel, Status.UNSUBSCRIBED)
                if p.channel in stopped and not p.on
                else p
            )
            for p in rows
            if p.topic.category is Category.MARKETING
        ),
        service=tuple(p for p in rows if p.topic.category is Category.SERVICE),
        stopped=stopped,
        disclosure=_disclosure(uow, tenant.id),
    )
    return found, keys


def preferences(
    uow: UnitOfWork, tokens: UnsubscribeTokens, token: str, *, now: datetime | None = None
) -> Preferences:
    """The person's topics and channels with their state; writes nothing."""
    now = now or utcnow()
    claims = tokens.read(token, now)
    with uow:
        return _load(uow, resolve(uow, claims), now)[0]


def update_preferences(
    uow: UnitOfWork,
    tokens: UnsubscribeTokens,
    token: str,
    *,
    wanted: frozenset[str],
    stop_all: bool,
    evidence: OptOutEvidence,
    now: datetime | None = None,
) -> Changes:
    """Apply the submitted form: ``wanted`` holds "topic:channel" for every ticked marketing box.

    Takes the opt-out fence on every address of the person first; commits. A subscription needs
    the tenant's published consent disclosure (DisclosureMismatch without one) and an adult
    (ConsentForMinor). Nothing already in the wanted state gets another ledger event.
    """
    now = now or utcnow()
    claims = tokens.read(token, now)
    granted: list[str] = []
    withdrawn: list[str] = []
    lifted: list[Channel] = []
    stopped: list[Channel] = []
    with uow:
        view = resolve(uow, claims)
        current, keys = _load(uow, view, now)
        uow.fences.exclusive(keys.values())
        if stop_all:
            for channel, key in keys.items():
                topics, added = stop_marketing(uow, view, channel, key, evidence=evidence, now=now)
                withdrawn += [f"{t}:{channel.value}" for t in topics]
                if added:
                    stopped.append(channel)
            uow.commit()
            return Changes((), tuple(withdrawn), (), tuple(stopped))
        for channel in current.stopped:  # the switch was on and is now off
            for block in _stopped(uow, view.tenant.id, channel, keys[channel]):
                uow.suppressions.lift(block.id, now, f"signal:{evidence.signal.value}")
            lifted.append(channel)
        for pref in current.marketing:
            want = pref.field in wanted
            key = keys[pref.channel]
            if want and not pref.on:
                _grant(uow, view, current.disclosure, pref, key, evidence, now)
                granted.append(pref.field)
            elif not want and pref.on:
                withdraw(uow, view, pref.topic, pref.channel, key, evidence.evidence(), now)
                withdrawn.append(pref.field)
        uow.commit()
    return Changes(tuple(granted), tuple(withdrawn), tuple(lifted), ())


def _grant(  # noqa: PLR0917  (one subscription: where, what, and the act's evidence)
    uow: UnitOfWork,
    view: LinkView,
    disclosure: PolicyDocument | None,
    pref: Preference,
    point_key: bytes,
    evidence: OptOutEvidence,
    now: datetime,
) -> None:
    if disclosure is None:
        raise DisclosureMismatch(
            f"{view.business_name} has published no consent disclosure to subscribe under",
            field="policy_document_id",
        )
    if view.contact.adult_on is not None and now.date() < view.contact.adult_on:
        raise ConsentForMinor("marketing consent cannot be taken from a person under age")
    base = evidence.evidence()
    act = Evidence(
        method=base.method,
        source=base.source,
        ip_address=base.ip_address,
        user_agent=base.user_agent,
        actor=base.actor,
        policy_document_id=disclosure.id,
        disclosure_hash=disclosure.content_hash,
    )
    # The link was delivered to this very address: following it proves the person controls it,
    # which is what a double opt-in confirmation proves.
    proven = point_key == view.claims.point_key
    basis = ConsentBasis.DOUBLE_OPT_IN if proven else ConsentBasis.EXPRESS
    append_event(
        uow, view, pref.topic, pref.channel, point_key, ConsentAction.GRANTED, basis, act, now
    )
