"""Which consent states a new policy version concerns, as SQL (the twin of domain/notices.py).

Active, unexpired, on the contact's current address, of a contact not erased; for a disclosure
or WhatsApp opt-in, also given on an older version of that kind in the same language. The
version a state was given on is its authorising event's, or for a confirmation (which cites no
words of its own) the confirmed request's: a correlated subquery picks the latest request or
grant on the same address before it, as ``domain.notices.seen_document`` does.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, func, or_, select

from consentry.domain.consent import ConsentAction, ConsentStatus
from consentry.domain.model import Channel, PolicyDocument
from consentry.domain.notices import CONSENT_KINDS
from consentry.persistence.contacts import key_column
from consentry.persistence.tables import consent_events, consent_states, contacts, policy_documents

S = consent_states.c


def concerned_states_query(
    tenant_id: uuid.UUID, document: PolicyDocument, channel: Channel, now: datetime
) -> Any:
    """(from, where) of the consent states the new version ``document`` concerns on ``channel``
    (the channel whose consents the notice is about)."""
    joined: Any = consent_states.join(contacts, contacts.c.id == S.contact_id)
    where = [
        S.tenant_id == tenant_id,
        S.channel == channel.value,
        S.status == ConsentStatus.ACTIVE.value,
        or_(S.expires_at.is_(None), S.expires_at > now),
        S.point_key == key_column(channel),
        contacts.c.erased_at.is_(None),
    ]
    if document.kind not in CONSENT_KINDS:
        return joined, where
    authorising = consent_events.alias("authorising")
    request = consent_events.alias("request")
    confirmed_request = (
        select(request.c.policy_document_id)
        .where(
            request.c.tenant_id == S.tenant_id,
            request.c.contact_id == S.contact_id,
            request.c.topic_id == S.topic_id,
            request.c.channel == S.channel,
            request.c.point_key == S.point_key,
            request.c.action.in_([ConsentAction.REQUESTED.value, ConsentAction.GRANTED.value]),
            request.c.seq < authorising.c.seq,
        )
        .order_by(request.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    seen = func.coalesce(
        authorising.c.policy_document_id,
        case((authorising.c.action == ConsentAction.CONFIRMED.value, confirmed_request)),
    )
    seen_doc = policy_documents.alias("seen")
    joined = joined.join(authorising, authorising.c.id == S.event_id).join(
        seen_doc,
        and_(
            seen_doc.c.id == seen,
            seen_doc.c.tenant_id == tenant_id,
            seen_doc.c.kind == document.kind.value,
            seen_doc.c.locale == document.locale,
            seen_doc.c.version < document.version,
        ),
    )
    return joined, where
