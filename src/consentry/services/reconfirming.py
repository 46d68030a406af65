"""Renewing consent from a permission pass's link (``/r/{token}``).

A link renews only the member it was minted for, only while the pass runs and before its
deadline, only while that member's consent is still active on the address the message went to,
and only once. Renewing appends a ``granted`` event with the page's evidence (URL without the
token, IP address, user agent), the disclosure the page showed, and the pass as its actor; the
member records the event. Reading a link writes nothing: mail scanners fetch links first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from consentry.domain.consent import (
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Evidence,
    validate_evidence,
)
from consentry.domain.errors import NotFound
from consentry.domain.ids import new_id
from consentry.domain.model import Category, Channel, PolicyDocument, Tenant, Topic
from consentry.domain.passes import ACTOR_PREFIX, PassStatus, PermissionPass, renewal_basis
from consentry.services.clock import utcnow
from consentry.services.compose.reconfirmation import (
    NOT_VALID,
    ReconfirmationClaims,
    ReconfirmationTokens,
)
from consentry.services.compose.tokens import InvalidToken
from consentry.services.consent import append_about
from consentry.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class ReconfirmationView:
    """What a reconfirmation link is about: the business, the topic, the deadline, the words."""

    claims: ReconfirmationClaims
    tenant: Tenant
    topic: Topic
    permission_pass: PermissionPass
    disclosure: PolicyDocument

    @property
    def business_name(self) -> str:
        return self.tenant.profile.legal_name or self.tenant.name

    @property
    def channel(self) -> Channel:
        return self.claims.channel

    @property
    def deadline(self) -> datetime:
        return self.permission_pass.deadline


def _view(
    uow: UnitOfWork, claims: ReconfirmationClaims, now: datetime
) -> tuple[ReconfirmationView, ConsentState]:
    """The view and the consent state a link would renew; InvalidToken if it renews nothing."""
    try:
        tenant = uow.tenants.get(claims.tenant_id)
        found = uow.passes.get(tenant.id, claims.pass_id)
        topic = uow.topics.get(tenant.id, claims.topic_id)
        contact = uow.contacts.get(tenant.id, claims.contact_id)
        disclosure = uow.policies.get(tenant.id, found.disclosure_document_id)
    except NotFound:
        raise InvalidToken(NOT_VALID) from None
    member = uow.passes.member(found.id, claims.contact_id)
    state = uow.consent_states.get(tenant.id, contact.id, topic.id, claims.channel)
    minor = (
        topic.category is Category.MARKETING
        and contact.adult_on is not None
        and now.date() < contact.adult_on
    )
    if (
        found.status is not PassStatus.RUNNING
        or now >= found.deadline
        or found.topic_id != topic.id
        or found.channel is not claims.channel
        or member is None
        or member.point_key != claims.point_key
        or member.renewed_event_id is not None
        or state is None
        or state.status is not ConsentStatus.ACTIVE
        or state.point_key != claims.point_key
        or minor
    ):
        raise InvalidToken(NOT_VALID)
    return ReconfirmationView(claims, tenant, topic, found, disclosure), state


def read_reconfirmation(
    uow: UnitOfWork, tokens: ReconfirmationTokens, token: str, *, now: datetime | None = None
) -> ReconfirmationView:
    """What a link would renew; InvalidToken if it renews nothing. Writes nothing."""
    now = now or utcnow()
    claims = tokens.read(token, now)
    with uow:
        return _view(uow, claims, now)[0]


def _renew(
    uow: UnitOfWork, claims: ReconfirmationClaims, evidence: Evidence, now: datetime
) -> tuple[ReconfirmationView, ConsentEvent]:
    """Renew one member inside the caller's transaction; InvalidToken, with nothing written,
    when there is nothing (any more) to renew."""
    # Held until commit: the pass cannot end between this check and the renewal.
    if not uow.passes.hold_running(claims.pass_id):
        raise InvalidToken(NOT_VALID)
    view, state = _view(uow, claims, now)
    evidence = replace(
        evidence,
        policy_document_id=view.disclosure.id,
        disclosure_hash=view.disclosure.content_hash,
        actor=f"{ACTOR_PREFIX}{claims.pass_id}",
    )
    basis = renewal_basis(state.basis)
    validate_evidence(ConsentAction.GRANTED, basis, evidence)
    event_id = new_id()
    # Claimed first (compare-and-set): of a link and a YES at once, one renews, the other
    # writes nothing.
    if not uow.passes.record_renewal(claims.pass_id, claims.contact_id, event_id, now):
        raise InvalidToken(NOT_VALID)
    event = append_about(uow, state, ConsentAction.GRANTED, basis, evidence, now, event_id=event_id)
    return view, event


def renew(
    uow: UnitOfWork,
    tokens: ReconfirmationTokens,
    token: str,
    page: Evidence,
    *,
    now: datetime | None = None,
) -> tuple[ReconfirmationView, ConsentEvent]:
    """Renew the member's consent: append a ``granted`` event with ``page``'s evidence, the
    disclosure shown and the pass as actor, and record it on the member; commits. InvalidToken
    (nothing written) if the link renews nothing, including a second time."""
    now = now or utcnow()
    claims = tokens.read(token, now)
    with uow:
        view, event = _renew(uow, claims, page, now)
        uow.commit()
    return view, event


def renew_by_reply(
    uow: UnitOfWork, point_key: bytes, inbound_message_id: str, now: datetime
) -> list[ReconfirmationView]:
    """A YES text renews the number's membership of every running SMS pass still waiting for
    it (evidence: the keyword and the inbound message id), inside the caller's transaction;
    the views of the passes renewed."""
    evidence = Evidence(method=ConsentMethod.KEYWORD, inbound_message_id=inbound_message_id)
    renewed = []
    for tenant_id, pass_id, contact_id in uow.passes.asking(point_key, Channel.SMS, now):
        found = uow.passes.get(tenant_id, pass_id)
        claims = ReconfirmationClaims(
            tenant_id, pass_id, contact_id, found.topic_id, Channel.SMS, point_key, now
        )
        try:
            view, _event = _renew(uow, claims, evidence, now)
        except InvalidToken:
            continue  # not active any more, a minor, or renewed meanwhile: nothing written
        renewed.append(view)
    return renewed
