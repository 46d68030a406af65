"""The consent ledger (append-only, hash-chained per tenant) and its state projection."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Sequence
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy import (
    Connection,
    Text,
    bindparam,
    case,
    cast,
    exists,
    func,
    insert,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from consentry.domain.chain import ChainLink, link_hash, link_hash_of
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    ConsentState,
    ConsentStatus,
    Evidence,
    EvidenceDigests,
    Relationship,
    canonical_event,
    canonical_event_json,
)
from consentry.domain.errors import NotFound
from consentry.domain.model import Channel
from consentry.persistence import copy_binary
from consentry.persistence.bulk import bulk_insert, copy_raw
from consentry.persistence.driver import DriverStatement, on_driver
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import (
    chain_heads,
    consent_events,
    consent_states,
    contacts,
    policy_documents,
    tenants,
    topics,
)
from consentry.persistence.tenancy import CONSENT_CHAIN
from consentry.services.ports import UNREAD, SealedEvent, Unread


def _event(row: Any, evidence: Evidence) -> ConsentEvent:
    return ConsentEvent(
        id=row.id,
        tenant_id=row.tenant_id,
        contact_id=row.contact_id,
        point_key=bytes(row.point_key),
        topic_id=row.topic_id,
        channel=Channel(row.channel),
        action=ConsentAction(row.action),
        basis=ConsentBasis(row.basis),
        evidence=evidence,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        expires_at=row.expires_at,
        seq=row.seq,
        prev_hash=row.prev_hash,
        hash=row.hash,
    )


def _bare_evidence(row: Any) -> Evidence:
    """Evidence without its personal data: what the chain covers besides the digests."""
    return Evidence(
        method=ConsentMethod(row.method),
        policy_document_id=row.policy_document_id,
        disclosure_hash=row.disclosure_hash,
        actor=row.actor,
        import_batch_id=row.import_batch_id,
        inbound_message_id=row.inbound_message_id,
        relationship=None if row.relationship is None else Relationship(row.relationship),
    )


EVENT_COLUMNS = (
    "id", "tenant_id", "seq", "contact_id", "point_key", "topic_id", "channel", "action", "basis",
    "method", "source_enc", "source_digest", "ip_enc", "ip_digest", "user_agent_enc",
    "user_agent_digest", "note_enc", "note_digest", "policy_document_id", "disclosure_hash",
    "actor", "import_batch_id", "inbound_message_id", "relationship", "occurred_at",
    "recorded_at", "expires_at", "prev_hash", "hash",
)  # fmt: skip

STATE_COLUMNS = (
    "tenant_id", "topic_id", "channel", "contact_id", "point_key", "status", "basis",
    "confirmed", "event_id", "seq", "granted_at", "expires_at", "updated_at",
)  # fmt: skip


_SEQ = ',"seq":0,'  # where the sequence number sits in an unchained event's canonical JSON

Seal = Callable[[str, str | None], bytes | None]  # (purpose, value) -> ciphertext


def seal_event(seal: Seal, event: ConsentEvent, digests: EvidenceDigests) -> SealedEvent:
    """An unchained event (``seq`` 0) with its evidence sealed, as ``append_sealed`` takes it.
    The canonical JSON is split at the sequence number: a string value cannot contain the
    marker, since its quotes are escaped."""
    if event.seq != 0:
        raise ValueError("only an unchained event is sealed for appending")
    before, _, after = canonical_event_json(event, digests).partition(_SEQ)
    columns = _evidence_columns(seal, event.evidence, digests)
    return SealedEvent(event, columns, before + ',"seq":', "," + after)


def _evidence_columns(seal: Seal, ev: Evidence, digests: EvidenceDigests) -> tuple[Any, ...]:
    """The sealed evidence and its digests, in the order of ``EVENT_COLUMNS``."""
    return (
        seal("consent_events.source_enc", ev.source), digests.source,
        seal("consent_events.ip_enc", ev.ip_address), digests.ip_address,
        seal("consent_events.user_agent_enc", ev.user_agent), digests.user_agent,
        seal("consent_events.note_enc", ev.note), digests.note,
    )  # fmt: skip


Fold = Callable[[ConsentState | None, ConsentEvent], ConsentState]


def event_values(event: ConsentEvent, evidence_columns: Sequence[Any]) -> tuple[Any, ...]:
    """A chained event's row, in the order of ``EVENT_COLUMNS``."""
    ev = event.evidence
    return (
        event.id, event.tenant_id, event.seq, event.contact_id, event.point_key, event.topic_id,
        event.channel.value, event.action.value, event.basis.value, ev.method.value,
        *evidence_columns, ev.policy_document_id, ev.disclosure_hash, ev.actor,
        ev.import_batch_id, ev.inbound_message_id,
        None if ev.relationship is None else ev.relationship.value,
        event.occurred_at, event.recorded_at, event.expires_at, event.prev_hash, event.hash,
    )  # fmt: skip


# An unchained event in binary ``COPY`` form around its chain fields: the field count and the
# columns before ``seq``, the columns between ``seq`` and ``prev_hash``, and its canonical JSON
# before and after the sequence number (``seal_event``). A plain tuple: a bulk import passes a
# million of them between processes.
EncodedEvent = tuple[bytes, bytes, str, str]


def state_values(s: ConsentState) -> tuple[Any, ...]:
    """A state's row, in the order of ``STATE_COLUMNS``."""
    return (
        s.tenant_id, s.topic_id, s.channel.value, s.contact_id, s.point_key, s.status.value,
        s.basis.value, s.confirmed, s.event_id, s.seq, s.granted_at, s.expires_at, s.updated_at,
    )  # fmt: skip


def _event_row(event: ConsentEvent, evidence_columns: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(EVENT_COLUMNS, event_values(event, evidence_columns), strict=True))


def _state_values(state: ConsentState) -> dict[str, Any]:
    """The columns an upsert of ``state`` sets."""
    return {
        "tenant_id": state.tenant_id,
        "point_key": state.point_key,
        "status": state.status.value,
        "basis": state.basis.value,
        "confirmed": state.confirmed,
        "event_id": state.event_id,
        "seq": state.seq,
        "granted_at": state.granted_at,
        "expires_at": state.expires_at,
        "updated_at": state.updated_at,
    }


STATE_MOVED = "CS409"  # SQLSTATE of consentry_state_moved() (migration 0022)


def _chained_append_statement(*, refuse_moved: bool = False) -> Any:
    """One PostgreSQL statement that appends an event to its tenant's chain and folds it: lock
    the head, link the event to it (the SHA-256 of ``link_hash_of``, computed by the server over
    the canonical JSON with the next sequence number spliced in between ``before`` and
    ``after``), insert the event, move the head, and upsert the folded state, which it changes
    only if its ``seq`` still is ``expected`` (NULL, when no state was read, never matches). One
    row: the event's ``seq``, ``prev_hash`` and ``hash``, and whether the state was stored
    (``folded``). Parameters: ``tenant_id``, ``before``, ``after``, ``expected``, ``e_<column>``
    for the event and ``s_<column>`` for the state, chain columns and ``seq`` excepted. With
    ``refuse_moved``, a state that moved fails the statement (SQLSTATE ``STATE_MOVED``), which
    writes nothing then."""
    tenant = bindparam("tenant_id", type_=chain_heads.c.tenant_id.type)
    head = (
        select(chain_heads.c.seq, chain_heads.c.hash)
        .where(chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant)
        .with_for_update()
        .cte("head")
    )
    seq = head.c.seq + 1
    canonical = func.convert_to(
        head.c.hash
        + func.chr(10)
        + bindparam("before", type_=Text)
        + cast(seq, Text)
        + bindparam("after", type_=Text),
        literal_column("'UTF8'"),
    )
    link = select(
        seq.label("seq"),
        head.c.hash.label("prev_hash"),
        func.encode(func.sha256(canonical), literal_column("'hex'")).label("hash"),
    ).cte("link")
    new_seq, new_prev, new_hash = (
        select(link.c.seq).scalar_subquery(),
        select(link.c.prev_hash).scalar_subquery(),
        select(link.c.hash).scalar_subquery(),
    )
    chained = {"seq": new_seq, "prev_hash": new_prev, "hash": new_hash}
    appended = (
        insert(consent_events)
        .values(
            {
                name: chained.get(name)
                if name in chained
                else bindparam(f"e_{name}", type_=consent_events.c[name].type)
                for name in EVENT_COLUMNS
            }
        )
        .cte("appended")
    )
    moved = (
        update(chain_heads)
        .where(chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant)
        .values(seq=new_seq, hash=new_hash)
        .cte("moved")
    )
    upsert = pg_insert(consent_states).values(
        {
            name: new_seq
            if name == "seq"
            else bindparam(f"s_{name}", type_=consent_states.c[name].type)
            for name in STATE_COLUMNS
        }
    )
    keys = ("topic_id", "channel", "contact_id")
    folded = (
        upsert.on_conflict_do_update(
            index_elements=[consent_states.c[k] for k in keys],
            set_={name: upsert.excluded[name] for name in STATE_COLUMNS if name not in keys},
            where=consent_states.c.seq == bindparam("expected", type_=consent_states.c.seq.type),
        )
        .returning(consent_states.c.seq)
        .cte("folded")
    )
    was_folded: Any = exists(select(folded.c.seq))
    if refuse_moved:
        was_folded = case((was_folded, true()), else_=func.consentry_state_moved())
    return select(
        link.c.seq,
        link.c.prev_hash,
        link.c.hash,
        was_folded.label("folded"),
    ).add_cte(appended, moved)


# Compiled once and run on the driver: it runs while the tenant's chain is held, and building
# it each time cost more than running it.
_CHAINED_APPEND = DriverStatement(_chained_append_statement())
_CHAINED_APPEND_COMMITTED = DriverStatement(_chained_append_statement(refuse_moved=True))


def _chained_append_params(
    event: ConsentEvent, sealed: SealedEvent, state: ConsentState, previous: ConsentState | None
) -> dict[str, Any]:
    params: dict[str, Any] = {
        "tenant_id": event.tenant_id,
        "before": sealed.before_seq,
        "after": sealed.after_seq,
        "expected": None if previous is None else previous.seq,
    }
    for name, value in _event_row(event, sealed.evidence_columns).items():
        params[f"e_{name}"] = value
    for name, value in _state_values(state).items():
        params[f"s_{name}"] = value
    params.update(
        s_contact_id=state.contact_id, s_topic_id=state.topic_id, s_channel=state.channel.value
    )
    return params


class SqlConsentLedger:
    def __init__(self, conn: Connection, crypto: FieldCrypto) -> None:
        self._conn = conn
        self._crypto = crypto

    def append(self, event: ConsentEvent, digests: EvidenceDigests) -> ConsentEvent:
        # FOR UPDATE serialises appends per tenant on PostgreSQL; SQLite writers already hold
        # the database lock from BEGIN IMMEDIATE.
        seq, prev = self._lock_head(event.tenant_id)
        event = replace(event, seq=seq + 1, prev_hash=prev)
        event = replace(event, hash=link_hash(event.prev_hash, canonical_event(event, digests)))
        tid = event.tenant_id
        columns = _evidence_columns(partial(self._crypto.seal, tid), event.evidence, digests)
        self._conn.execute(insert(consent_events).values(_event_row(event, columns)))
        self._move_head(tid, event.seq, event.hash)
        return event

    def append_folded(
        self,
        event: ConsentEvent,
        digests: EvidenceDigests,
        fold: Fold,
        previous: ConsentState | Unread | None = UNREAD,
        *,
        commit: bool = False,
    ) -> tuple[ConsentEvent, ConsentState]:
        """``append``, then fold the event into its state with ``fold(previous, event)`` and
        store it: the event as chained and the new state.

        The tenant's chain head is held from its lock to the commit, and every write of the
        tenant waits for it, so as little as possible happens in between. The state is read
        (unless the caller passes what it read in this transaction) and the evidence sealed
        before the lock; then, on PostgreSQL, one statement inserts the event, moves the head
        and stores the state, provided the state is still the one folded (a state only changes
        with an append, which this lock orders). If another append changed it in the meantime,
        the state is read again under the lock and folded afresh.

        With ``commit`` (the caller's last write; it calls ``commit`` on its unit of work next,
        which then only closes it), the transaction commits with the append on PostgreSQL, in
        the same round trip (``DriverStatement.rows_committed``): the chain is then held only
        while the server appends and commits, not while this process reads the answer and asks
        for the commit, which is where a busy machine kept everyone else waiting. A state that
        moved refuses that statement, and the append is made as without ``commit``."""
        tid = event.tenant_id
        states = SqlConsentStates(self._conn)
        if self._conn.dialect.name != "postgresql":
            # SQLite: the writer holds the whole database from BEGIN IMMEDIATE; the state is
            # read once, after the append, whatever the caller read.
            event = self.append(event, digests)
            state = fold(states.get(tid, event.contact_id, event.topic_id, event.channel), event)
            states.put(state)
            return event, state
        if isinstance(previous, Unread):
            previous = states.get(tid, event.contact_id, event.topic_id, event.channel)
        sealed = seal_event(partial(self._crypto.seal, tid), event, digests)
        state = fold(previous, event)
        params = _chained_append_params(event, sealed, state, previous)
        committed = (
            _CHAINED_APPEND_COMMITTED.rows_committed(self._conn, params, STATE_MOVED)
            if commit and on_driver(self._conn)
            else None
        )
        row = (committed or _CHAINED_APPEND.rows(self._conn, params))[0]
        event = replace(event, seq=row.seq, prev_hash=row.prev_hash, hash=row.hash)
        if row.folded:
            return event, replace(state, seq=row.seq)
        # The state moved since it was read: fold it again, under the lock now held.
        state = fold(states.get(tid, event.contact_id, event.topic_id, event.channel), event)
        states.put(state)
        return event, state

    def append_many(
        self, events: Sequence[tuple[ConsentEvent, EvidenceDigests]]
    ) -> list[ConsentEvent]:
        """Append events in order as one batch: the chain head is locked and moved once, each
        event chained to the one before it exactly as ``append`` would; inserted in bulk."""
        if not events:
            return []
        tid = events[0][0].tenant_id
        seq, prev = self._lock_head(tid)
        chained: list[ConsentEvent] = []
        rows: list[tuple[Any, ...]] = []
        seal = partial(self._crypto.seal, tid)
        for original, digests in events:
            if original.tenant_id != tid:
                raise ValueError("one batch appends to one tenant's chain")
            seq += 1
            fields = dict(canonical_event(original, digests))
            fields["seq"] = seq  # the only chained field the batch assigns
            digest = link_hash(prev, fields)
            event = replace(original, seq=seq, prev_hash=prev, hash=digest)
            prev = digest
            chained.append(event)
            rows.append(event_values(event, _evidence_columns(seal, event.evidence, digests)))
        bulk_insert(self._conn, consent_events, EVENT_COLUMNS, rows)
        self._move_head(tid, seq, prev)
        return chained

    def append_sealed(self, events: Sequence[SealedEvent]) -> list[ConsentEvent]:
        """``append_many`` for events sealed beforehand (``seal_event``): the head is locked
        while the events are chained (one SHA-256 each) and copied, and moved once."""
        if not events:
            return []
        tid = events[0].event.tenant_id
        seq, prev = self._lock_head(tid)
        chained: list[ConsentEvent] = []
        rows: list[tuple[Any, ...]] = []
        for sealed in events:
            e = sealed.event
            if e.tenant_id != tid:
                raise ValueError("one batch appends to one tenant's chain")
            seq += 1
            digest = link_hash_of(prev, f"{sealed.before_seq}{seq}{sealed.after_seq}".encode())
            event = ConsentEvent(
                e.id, tid, e.contact_id, e.point_key, e.topic_id, e.channel, e.action, e.basis,
                e.evidence, e.occurred_at, e.recorded_at, e.expires_at, seq, prev, digest,
            )  # fmt: skip
            chained.append(event)
            rows.append(event_values(event, sealed.evidence_columns))
            prev = digest
        bulk_insert(self._conn, consent_events, EVENT_COLUMNS, rows)
        self._move_head(tid, seq, prev)
        return chained

    def append_encoded(
        self, tenant_id: uuid.UUID, events: Sequence[Sequence[Any]]
    ) -> list[tuple[int, str, str]]:
        """``append_sealed`` for events already in binary ``COPY`` form but for their chain
        fields (PostgreSQL only), each an ``EncodedEvent`` (further items ignored): each is
        linked (one SHA-256), spliced and copied; returns each event's
        ``(seq, prev_hash, hash)``."""
        if not events:
            return []
        seq, prev = self._lock_head(tenant_id)
        links: list[tuple[int, str, str]] = []
        out = [copy_binary.HEADER]
        for head, middle, before, after, *_ in events:
            seq += 1
            digest = link_hash_of(prev, f"{before}{seq}{after}".encode())
            out += (head, copy_binary.int8_field(seq), middle,
                    copy_binary.text_field(prev), copy_binary.text_field(digest))  # fmt: skip
            links.append((seq, prev, digest))
            prev = digest
        out.append(copy_binary.TRAILER)
        copy_raw(self._conn, consent_events, EVENT_COLUMNS, b"".join(out))
        self._move_head(tenant_id, seq, prev)
        return links

    def _lock_head(self, tenant_id: uuid.UUID) -> tuple[int, str]:
        """The tenant's chain head (seq, hash), locked until the transaction ends: appends to
        one tenant's ledger wait for each other here."""
        head = self._conn.execute(
            select(chain_heads.c.seq, chain_heads.c.hash)
            .where(chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant_id)
            .with_for_update()
        ).one()
        return int(head.seq), str(head.hash)

    def _move_head(self, tenant_id: uuid.UUID, seq: int, hash_: str) -> None:
        self._conn.execute(
            update(chain_heads)
            .where(chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant_id)
            .values(seq=seq, hash=hash_)
        )

    def _full(self, row: Any) -> ConsentEvent:
        tid = row.tenant_id

        def open_(column: str) -> str | None:
            return self._crypto.open(tid, f"consent_events.{column}", getattr(row, column))

        evidence = replace(
            _bare_evidence(row),
            source=open_("source_enc"),
            ip_address=open_("ip_enc"),
            user_agent=open_("user_agent_enc"),
            note=open_("note_enc"),
        )
        return _event(row, evidence)

    def history(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> list[ConsentEvent]:
        rows = self._conn.execute(
            select(consent_events)
            .where(
                consent_events.c.tenant_id == tenant_id, consent_events.c.contact_id == contact_id
            )
            .order_by(consent_events.c.seq)
        )
        return [self._full(r) for r in rows]

    def get(self, tenant_id: uuid.UUID, event_id: uuid.UUID) -> ConsentEvent:
        row = _EVENT_BY_ID.one_or_none(self._conn, {"tenant": tenant_id, "id": event_id})
        if row is None:
            raise NotFound(f"consent event {event_id} not found")
        return self._full(row)

    def links(self, tenant_id: uuid.UUID) -> Generator[ChainLink, None, None]:
        """Every event of the tenant as a chain link, recomputed from stored columns only."""
        result = self._conn.execute(
            select(consent_events)
            .where(consent_events.c.tenant_id == tenant_id)
            .order_by(consent_events.c.seq),
            execution_options={"yield_per": 2000},
        )
        try:
            for row in result:
                event = _event(row, _bare_evidence(row))
                digests = EvidenceDigests(
                    source=row.source_digest,
                    ip_address=row.ip_digest,
                    user_agent=row.user_agent_digest,
                    note=row.note_digest,
                )
                yield ChainLink(
                    seq=row.seq,
                    record_id=str(row.id),
                    prev_hash=row.prev_hash,
                    hash=row.hash,
                    fields=canonical_event(event, digests),
                )
        finally:
            result.close()  # a caller that stops early must not leave a server cursor open

    def scrub_evidence(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> None:
        """Drop the sealed personal data of a contact's evidence; the digests (and so the
        chain) stay."""
        self._conn.execute(
            update(consent_events)
            .where(
                consent_events.c.tenant_id == tenant_id, consent_events.c.contact_id == contact_id
            )
            .values(source_enc=None, ip_enc=None, user_agent_enc=None, note_enc=None)
        )

    def events(self, tenant_id: uuid.UUID) -> Generator[ConsentEvent, None, None]:
        """Every event of the tenant in sequence order, without its personal data."""
        result = self._conn.execute(
            select(consent_events)
            .where(consent_events.c.tenant_id == tenant_id)
            .order_by(consent_events.c.seq),
            execution_options={"yield_per": 2000},
        )
        try:
            for row in result:
                yield _event(row, _bare_evidence(row))
        finally:
            result.close()

    def dangling_references(self, tenant_id: uuid.UUID) -> list[str]:
        """Events of the tenant whose contact, topic or disclosure is not a row of that tenant.

        The ledger has no foreign keys (see ``tables.py``); this is their check, made stricter:
        a parent that exists in another tenant counts as missing."""
        e = consent_events
        parents = (
            ("contact", e.c.contact_id, contacts),
            ("topic", e.c.topic_id, topics),
            ("disclosure", e.c.policy_document_id, policy_documents),
        )
        problems: list[str] = []
        for name, column, parent in parents:
            found = (
                select(parent.c.id)
                .where(parent.c.id == column, parent.c.tenant_id == e.c.tenant_id)
                .exists()
            )
            rows = self._conn.execute(
                select(e.c.seq, column)
                .where(e.c.tenant_id == tenant_id, column.is_not(None), ~found)
                .order_by(e.c.seq)
            )
            problems.extend(
                f"event at seq {row.seq} names {name} {row[1]}, which the tenant does not have"
                for row in rows
            )
        return problems

    def without_tenant(self) -> list[str]:
        """Events and states whose tenant does not exist (no tenant's verification sees them)."""
        problems: list[str] = []
        for name, table in (("events", consent_events), ("states", consent_states)):
            known = select(tenants.c.id).where(tenants.c.id == table.c.tenant_id).exists()
            rows = self._conn.execute(
                select(table.c.tenant_id, func.count())
                .where(~known)
                .group_by(table.c.tenant_id)
                .order_by(table.c.tenant_id)
            )
            problems.extend(
                f"{n} consent {name} name tenant {t}, which does not exist" for t, n in rows
            )
        return problems

    def head(self, tenant_id: uuid.UUID) -> tuple[int, str]:
        row = self._conn.execute(
            select(chain_heads.c.seq, chain_heads.c.hash).where(
                chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant_id
            )
        ).one()
        return int(row.seq), str(row.hash)

    def tenants_with_events(self) -> list[uuid.UUID]:
        rows = self._conn.execute(
            select(chain_heads.c.tenant_id).where(chain_heads.c.chain == CONSENT_CHAIN)
        )
        return [r.tenant_id for r in rows]


def state_from_row(row: Any) -> ConsentState:
    return ConsentState(
        tenant_id=row.tenant_id,
        contact_id=row.contact_id,
        topic_id=row.topic_id,
        channel=Channel(row.channel),
        point_key=bytes(row.point_key),
        status=ConsentStatus(row.status),
        basis=ConsentBasis(row.basis),
        confirmed=row.confirmed,
        event_id=row.event_id,
        seq=row.seq,
        updated_at=row.updated_at,
        granted_at=row.granted_at,
        expires_at=row.expires_at,
    )


# Hot reads are built once: building a statement costs about as much CPU as running it.
_STATE_BY_KEY = DriverStatement(
    select(consent_states).where(
        consent_states.c.tenant_id == bindparam("tenant"),
        consent_states.c.contact_id == bindparam("contact"),
        consent_states.c.topic_id == bindparam("topic"),
        consent_states.c.channel == bindparam("channel"),
    )
)
# A YES by text looks for the number's pending requests this way, for every keyword.
_STATES_OF_CONTACT = DriverStatement(
    select(consent_states)
    .where(
        consent_states.c.tenant_id == bindparam("tenant"),
        consent_states.c.contact_id == bindparam("contact"),
    )
    .order_by(consent_states.c.channel, consent_states.c.seq)
)
_EVENT_BY_ID = DriverStatement(
    select(consent_events).where(
        consent_events.c.tenant_id == bindparam("tenant"), consent_events.c.id == bindparam("id")
    )
)


class SqlConsentStates:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(
        self, tenant_id: uuid.UUID, contact_id: uuid.UUID, topic_id: uuid.UUID, channel: Channel
    ) -> ConsentState | None:
        row = _STATE_BY_KEY.one_or_none(
            self._conn,
            {
                "tenant": tenant_id,
                "contact": contact_id,
                "topic": topic_id,
                "channel": channel.value,
            },
        )
        return None if row is None else state_from_row(row)

    def put(self, state: ConsentState) -> None:
        values = _state_values(state)
        # One statement, whether the state is new or not (both dialects have ON CONFLICT).
        dialect_insert = pg_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        upsert = dialect_insert(consent_states).values(
            contact_id=state.contact_id,
            topic_id=state.topic_id,
            channel=state.channel.value,
            **values,
        )
        self._conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[
                    consent_states.c.topic_id,
                    consent_states.c.channel,
                    consent_states.c.contact_id,
                ],
                set_=values,
            )
        )

    def add_many(self, states: Sequence[ConsentState]) -> None:
        """Insert states known not to exist yet (contact points new to the tenant), in bulk."""
        bulk_insert(self._conn, consent_states, STATE_COLUMNS, [state_values(s) for s in states])

    def for_tenant(self, tenant_id: uuid.UUID) -> list[ConsentState]:
        rows = self._conn.execute(
            select(consent_states).where(consent_states.c.tenant_id == tenant_id)
        )
        return [state_from_row(r) for r in rows]

    def for_contact(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> list[ConsentState]:
        rows = _STATES_OF_CONTACT.rows(self._conn, {"tenant": tenant_id, "contact": contact_id})
        return [state_from_row(r) for r in rows]
