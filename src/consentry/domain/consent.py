"""The consent ledger: append-only events with evidence, and the state folded from them.

State machine of one contact point x topic x channel (the fold)::

    (none) --requested--> pending --confirmed--> active(confirmed)
    (none) --granted----> active                 (confirmed when the basis is double opt-in)
    any    --confirmed--> active(confirmed)      (a confirmation is itself an affirmative act)
    any    --withdrawn--> withdrawn
    any    --lapsed-----> lapsed                 (expired implied consent, permission pass deadline)
    any    --voided-----> void                   (the number was reassigned to someone else)
    withdrawn/lapsed/void --granted|requested--> active|pending  (needs a new affirmative act)

A new contact point (the address changed) starts a fresh state: consent belongs to the address the
person gave, not to the contact record.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from json.encoder import encode_basestring_ascii

from consentry.domain.chain import Canonical
from consentry.domain.errors import EvidenceIncomplete
from consentry.domain.model import Channel


class ConsentAction(StrEnum):
    REQUESTED = "requested"
    GRANTED = "granted"
    CONFIRMED = "confirmed"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"
    VOIDED = "voided"


AFFIRMATIVE = frozenset({ConsentAction.REQUESTED, ConsentAction.GRANTED, ConsentAction.CONFIRMED})


class ConsentBasis(StrEnum):
    EXPRESS = "express"
    DOUBLE_OPT_IN = "double_opt_in"
    IMPLIED_RELATIONSHIP = "implied_relationship"
    SOFT_OPT_IN = "soft_opt_in"
    SERVICE_NECESSITY = "service_necessity"


EXPRESS_BASES = frozenset({ConsentBasis.EXPRESS, ConsentBasis.DOUBLE_OPT_IN})


class ConsentMethod(StrEnum):
    WEB_FORM = "web_form"
    API = "api"
    KEYWORD = "keyword"
    IMPORT = "import"
    PAPER = "paper"
    VERBAL = "verbal"


class Relationship(StrEnum):
    """The existing business relationship an implied consent rests on (CASL s.10(10))."""

    PURCHASE = "purchase"
    INQUIRY = "inquiry"


class ConsentStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    LAPSED = "lapsed"
    VOID = "void"


@dataclass(frozen=True, slots=True)
class Evidence:
    """How a consent event came about. IP, user agent, source and note are personal data."""

    method: ConsentMethod
    source: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    policy_document_id: uuid.UUID | None = None
    disclosure_hash: str | None = None
    actor: str | None = None
    import_batch_id: uuid.UUID | None = None
    inbound_message_id: str | None = None
    relationship: Relationship | None = None
    note: str | None = None


# Fields each method must carry for an affirmative act to be provable afterwards.
_REQUIRED_BY_METHOD: dict[ConsentMethod, tuple[str, ...]] = {
    ConsentMethod.WEB_FORM: ("source", "ip_address", "user_agent"),
    ConsentMethod.API: ("actor",),
    ConsentMethod.KEYWORD: ("inbound_message_id",),
    ConsentMethod.IMPORT: ("import_batch_id", "source"),
    ConsentMethod.PAPER: ("actor", "note"),
    ConsentMethod.VERBAL: ("actor", "note"),
}
# Methods where the person saw a written disclosure we must be able to quote.
_DISCLOSURE_METHODS = frozenset({ConsentMethod.WEB_FORM, ConsentMethod.API, ConsentMethod.IMPORT})


def validate_evidence(action: ConsentAction, basis: ConsentBasis, evidence: Evidence) -> None:
    """Raise EvidenceIncomplete naming the first missing field; withdrawals need only a method."""
    if action not in AFFIRMATIVE:
        if evidence.method is ConsentMethod.KEYWORD and not evidence.inbound_message_id:
            raise EvidenceIncomplete(
                "a keyword opt-out needs the inbound message id", field="inbound_message_id"
            )
        return
    for name in _REQUIRED_BY_METHOD[evidence.method]:
        if not getattr(evidence, name):
            raise EvidenceIncomplete(
                f"{evidence.method.value} consent evidence needs {name}", field=name
            )
    if (
        basis in EXPRESS_BASES
        and action is not ConsentAction.CONFIRMED
        and evidence.method in _DISCLOSURE_METHODS
        and evidence.policy_document_id is None
    ):
        raise EvidenceIncomplete(
            "express consent needs the disclosure shown (a published policy document version)",
            field="policy_document_id",
        )
    if basis is ConsentBasis.IMPLIED_RELATIONSHIP and evidence.relationship is None:
        raise EvidenceIncomplete(
            "implied consent needs the relationship it rests on (purchase or inquiry)",
            field="relationship",
        )


@dataclass(frozen=True, slots=True)
class ConsentEvent:
    """One ledger entry. ``seq``, ``prev_hash`` and ``hash`` are assigned on append."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    contact_id: uuid.UUID
    point_key: bytes
    topic_id: uuid.UUID
    channel: Channel
    action: ConsentAction
    basis: ConsentBasis
    evidence: Evidence
    occurred_at: datetime
    recorded_at: datetime
    expires_at: datetime | None = None
    seq: int = 0
    prev_hash: str = ""
    hash: str = ""


@dataclass(frozen=True, slots=True)
class ConsentState:
    """Current consent of one contact point for one topic on one channel (a projection)."""

    tenant_id: uuid.UUID
    contact_id: uuid.UUID
    topic_id: uuid.UUID
    channel: Channel
    point_key: bytes
    status: ConsentStatus
    basis: ConsentBasis
    confirmed: bool
    event_id: uuid.UUID
    seq: int
    updated_at: datetime
    granted_at: datetime | None = None
    expires_at: datetime | None = None


_STATUS_AFTER: dict[ConsentAction, ConsentStatus] = {
    ConsentAction.REQUESTED: ConsentStatus.PENDING,
    ConsentAction.GRANTED: ConsentStatus.ACTIVE,
    ConsentAction.CONFIRMED: ConsentStatus.ACTIVE,
    ConsentAction.WITHDRAWN: ConsentStatus.WITHDRAWN,
    ConsentAction.LAPSED: ConsentStatus.LAPSED,
    ConsentAction.VOIDED: ConsentStatus.VOID,
}


def apply_event(state: ConsentState | None, event: ConsentEvent) -> ConsentState:
    """Fold one event into the state of its contact point x topic x channel."""
    status = _STATUS_AFTER[event.action]
    fresh = state is None or state.point_key != event.point_key
    if event.action in (ConsentAction.REQUESTED, ConsentAction.GRANTED):
        return ConsentState(
            tenant_id=event.tenant_id,
            contact_id=event.contact_id,
            topic_id=event.topic_id,
            channel=event.channel,
            point_key=event.point_key,
            status=status,
            basis=event.basis,
            confirmed=event.action is ConsentAction.GRANTED
            and event.basis is ConsentBasis.DOUBLE_OPT_IN,
            event_id=event.id,
            seq=event.seq,
            updated_at=event.occurred_at,
            granted_at=event.occurred_at,
            expires_at=event.expires_at,
        )
    if event.action is ConsentAction.CONFIRMED:
        granted_at = event.occurred_at if fresh or state is None else state.granted_at
        return ConsentState(
            tenant_id=event.tenant_id,
            contact_id=event.contact_id,
            topic_id=event.topic_id,
            channel=event.channel,
            point_key=event.point_key,
            status=status,
            basis=ConsentBasis.DOUBLE_OPT_IN,
            confirmed=True,
            event_id=event.id,
            seq=event.seq,
            updated_at=event.occurred_at,
            granted_at=granted_at,
            expires_at=event.expires_at,
        )
    if state is None or fresh:
        return ConsentState(
            tenant_id=event.tenant_id,
            contact_id=event.contact_id,
            topic_id=event.topic_id,
            channel=event.channel,
            point_key=event.point_key,
            status=status,
            basis=event.basis,
            confirmed=False,
            event_id=event.id,
            seq=event.seq,
            updated_at=event.occurred_at,
        )
    return replace(
        state, status=status, event_id=event.id, seq=event.seq, updated_at=event.occurred_at
    )


StateKey = tuple[uuid.UUID, uuid.UUID, Channel]


def fold(events: list[ConsentEvent]) -> dict[StateKey, ConsentState]:
    """Fold events (any order; sorted by seq here) into states keyed by contact, topic, channel."""
    states: dict[StateKey, ConsentState] = {}
    for event in sorted(events, key=lambda e: e.seq):
        key = (event.contact_id, event.topic_id, event.channel)
        states[key] = apply_event(states.get(key), event)
    return states


@dataclass(frozen=True, slots=True)
class EvidenceDigests:
    """Keyed digests of the personal data in an event's evidence, as the chain records them."""

    source: str | None
    ip_address: str | None
    user_agent: str | None
    note: str | None


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="microseconds")


def canonical_event(event: ConsentEvent, digests: EvidenceDigests) -> Canonical:
    """The PII-free fields the ledger chain covers, in one canonical shape."""
    ev = event.evidence
    return {
        "id": str(event.id),
        "tenant_id": str(event.tenant_id),
        "seq": event.seq,
        "contact_id": str(event.contact_id),
        "point_key": event.point_key.hex(),
        "topic_id": str(event.topic_id),
        "channel": event.channel.value,
        "action": event.action.value,
        "basis": event.basis.value,
        "method": ev.method.value,
        "source": digests.source,
        "ip": digests.ip_address,
        "user_agent": digests.user_agent,
        "note": digests.note,
        "policy_document_id": None if ev.policy_document_id is None else str(ev.policy_document_id),
        "disclosure_hash": ev.disclosure_hash,
        "actor": ev.actor,
        "import_batch_id": None if ev.import_batch_id is None else str(ev.import_batch_id),
        "inbound_message_id": ev.inbound_message_id,
        "relationship": None if ev.relationship is None else ev.relationship.value,
        "occurred_at": _iso(event.occurred_at),
        "recorded_at": _iso(event.recorded_at),
        "expires_at": _iso(event.expires_at),
    }


def _json(value: str | None) -> str:
    return "null" if value is None else encode_basestring_ascii(value)


# The text of ids and instants that repeat from event to event (the tenant, the topic, the
# disclosure, an import's batch and its recording time): a bulk import renders them a million
# times, and a look-up costs a third of ``str(UUID)`` or ``isoformat``.
_id_text = lru_cache(maxsize=1024)(str)


@lru_cache(maxsize=64)
def _iso_utc(value: datetime) -> str:
    return value.isoformat(timespec="microseconds")


def _iso_repeated(value: datetime) -> str:
    # Only instants in UTC are looked up: equal instants in other offsets are equal keys whose
    # texts differ.
    if value.tzinfo is UTC:
        return _iso_utc(value)
    return value.isoformat(timespec="microseconds")


def _json_id(value: uuid.UUID | None) -> str:
    return "null" if value is None else f'"{_id_text(value)}"'


def canonical_event_json(event: ConsentEvent, digests: EvidenceDigests) -> str:
    """``canonical_json(canonical_event(event, digests))`` as text, written out directly in the
    same key order and escaping: a bulk import renders a million of these."""
    ev = event.evidence
    relationship = ev.relationship
    return (
        f'{{"action":{_json(event.action.value)},"actor":{_json(ev.actor)},'
        f'"basis":{_json(event.basis.value)},"channel":{_json(event.channel.value)},'
        f'"contact_id":"{event.contact_id}","disclosure_hash":{_json(ev.disclosure_hash)},'
        f'"expires_at":{_json(_iso(event.expires_at))},"id":"{event.id}",'
        f'"import_batch_id":{_json_id(ev.import_batch_id)},'
        f'"inbound_message_id":{_json(ev.inbound_message_id)},"ip":{_json(digests.ip_address)},'
        f'"method":{_json(ev.method.value)},"note":{_json(digests.note)},'
        f'"occurred_at":{_json(_iso(event.occurred_at))},"point_key":"{event.point_key.hex()}",'
        f'"policy_document_id":{_json_id(ev.policy_document_id)},'
        f'"recorded_at":"{_iso_repeated(event.recorded_at)}",'
        f'"relationship":{"null" if relationship is None else _json(relationship.value)},'
        f'"seq":{event.seq},"source":{_json(digests.source)},'
        f'"tenant_id":"{_id_text(event.tenant_id)}",'
        f'"topic_id":"{_id_text(event.topic_id)}","user_agent":{_json(digests.user_agent)}}}'
    )
