"""Accepting a new policy version from a notice's link (``/n/{token}``).

A link accepts only for the recipient it was minted for, only while that recipient was sent
the notice and has not accepted yet, and only while the contact still has the address the
notice went to. Accepting records, in one transaction, the acceptance on the recipient (time,
and the page's evidence sealed under the tenant's key) and, for a consent disclosure or a
WhatsApp opt-in, a ``granted`` event per consent the new version concerns, citing the *new*
version with the page's evidence (method web_form, the page URL without the token, IP address,
user agent): from then on the consent points at the words accepted. Reading a link writes
nothing: mail scanners fetch links first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime

from consentry.domain.consent import (
    ConsentAction,
    ConsentEvent,
    Evidence,
)
from consentry.domain.errors import NotFound
from consentry.domain.model import Category, Contact, PolicyDocument, Tenant
from consentry.domain.notices import (
    ACTOR_PREFIX,
    CONSENT_KINDS,
    PolicyNotice,
    RecipientStatus,
    consent_channel,
)
from consentry.domain.passes import renewal_basis
from consentry.services.clock import utcnow
from consentry.services.compose.notice import NOT_VALID, NoticeClaims, NoticeTokens
from consentry.services.compose.tokens import InvalidToken
from consentry.services.consent import append_about
from consentry.services.ports import UnitOfWork

_OPEN = frozenset({RecipientStatus.SENT, RecipientStatus.SENDING})


@dataclass(frozen=True, slots=True)
class AcceptanceView:
    """What an acceptance link is about: the business and the new version, words included."""

    claims: NoticeClaims
    tenant: Tenant
    notice: PolicyNotice
    document: PolicyDocument

    @property
    def business_name(self) -> str:
        return self.tenant.profile.legal_name or self.tenant.name


def _view(uow: UnitOfWork, claims: NoticeClaims) -> tuple[AcceptanceView, Contact]:
    """The view of a link that may accept now; InvalidToken if it accepts nothing."""
    try:
        tenant = uow.tenants.get(claims.tenant_id)
        notice = uow.notices.get(tenant.id, claims.notice_id)
        document = uow.policies.get(tenant.id, notice.document_id)
        contact = uow.contacts.get(tenant.id, claims.contact_id)
    except NotFound:
        raise InvalidToken(NOT_VALID) from None
    recipient = uow.notices.recipient(notice.id, contact.id)
    if (
        not notice.ask_acceptance
        or recipient is None
        or recipient.status not in _OPEN
        or recipient.point_key != claims.point_key
        or uow.contacts.point_key(contact, notice.channel) != claims.point_key
    ):
        raise InvalidToken(NOT_VALID)
    return AcceptanceView(claims, tenant, notice, document), contact


def read_acceptance(
    uow: UnitOfWork, tokens: NoticeTokens, token: str, *, now: datetime | None = None
) -> AcceptanceView:
    """What a link would accept; InvalidToken if it accepts nothing. Writes nothing."""
    claims = tokens.read(token, now or utcnow())
    with uow:
        return _view(uow, claims)[0]


def accept(
    uow: UnitOfWork,
    tokens: NoticeTokens,
    token: str,
    page: Evidence,
    *,
    now: datetime | None = None,
) -> tuple[AcceptanceView, list[ConsentEvent]]:
    """Record the acceptance (and the consents now given on the new version); commits once.
    InvalidToken, with nothing written, if the link accepts nothing, a second time included."""
    now = now or utcnow()
    claims = tokens.read(token, now)
    with uow:
        view, contact = _view(uow, claims)
        evidence = json.dumps(
            {"source": page.source, "ip_address": page.ip_address, "user_agent": page.user_agent}
        )
        # The compare-and-set comes first: of two presses at once, one writes and one is refused.
        if not uow.notices.record_acceptance(view.tenant.id, view.notice.id, contact.id,
                                             evidence, now):  # fmt: skip
            raise InvalidToken(NOT_VALID)
        events = _consents(uow, view, contact, page, now)
        uow.commit()
    return view, events


def _consents(
    uow: UnitOfWork, view: AcceptanceView, contact: Contact, page: Evidence, now: datetime
) -> list[ConsentEvent]:
    """A ``granted`` event, citing the new version, per consent it concerns."""
    document = view.document
    if document.kind not in CONSENT_KINDS:
        return []
    evidence = replace(
        page,
        policy_document_id=document.id,
        disclosure_hash=document.content_hash,
        actor=f"{ACTOR_PREFIX}{view.notice.id}",
    )
    minor = contact.adult_on is not None and now.date() < contact.adult_on
    channel = consent_channel(document.kind, view.notice.channel)
    events = []
    for state in uow.notices.concerned_states(view.tenant.id, contact.id, document, channel, now):
        if minor and uow.topics.get(view.tenant.id, state.topic_id).category is Category.MARKETING:
            continue  # the gate refuses marketing to minors; an acceptance does not change that
        basis = renewal_basis(state.basis)
        event = append_about(uow, state, ConsentAction.GRANTED, basis, evidence, now)
        events.append(event)
    return events
