"""Permission passes and their members: chosen set-based, ended set-based.

Members are written by one INSERT ... SELECT over the consent states of the pass's topic and
channel (active, unexpired, on the contact's current address, of a contact not erased) narrowed
to the list's members or to the contacts the import batch recorded consent for. Ending a pass
reads the members still active on the event they started with, joined to their states, after
the pass row is locked: a renewal holds a shared lock on the same row while it writes, so it
either commits before the pass ends (and is seen) or finds the pass ended.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)

from consentry.domain.consent import ConsentState, ConsentStatus
from consentry.domain.model import Channel
from consentry.domain.passes import (
    MemberOutcome,
    PassMember,
    PassNotFound,
    PassStatus,
    PermissionPass,
    SourceKind,
)
from consentry.persistence.contacts import key_column
from consentry.persistence.driver import DriverStatement
from consentry.persistence.ledger import state_from_row
from consentry.persistence.tables import (
    consent_events,
    consent_states,
    contact_list_members,
    contacts,
    deliveries,
    permission_pass_members,
    permission_passes,
)

P = permission_passes.c
M = permission_pass_members.c
S = consent_states.c

# Every YES (or START) by text asks whether a permission pass waits for the number.
_ASKING = DriverStatement(
    select(M.tenant_id, M.pass_id, M.contact_id)
    .join(permission_passes, P.id == M.pass_id)
    .where(
        M.point_key == bindparam("point_key"),
        M.renewed_event_id.is_(None),
        P.channel == bindparam("channel"),
        P.status == PassStatus.RUNNING.value,
        P.deadline > bindparam("now", type_=P.deadline.type),
    )
)


def _pass(row: Any) -> PermissionPass:
    kind = SourceKind(row.source_kind)
    return PermissionPass(
        id=row.id,
        tenant_id=row.tenant_id,
        name=row.name,
        topic_id=row.topic_id,
        channel=Channel(row.channel),
        source_kind=kind,
        source_id=row.list_id if kind is SourceKind.LIST else row.import_id,
        campaign_id=row.campaign_id,
        disclosure_document_id=row.disclosure_document_id,
        deadline=row.deadline,
        status=PassStatus(row.status),
        created_by=row.created_by,
        created_at=row.created_at,
        ended_at=row.ended_at,
    )


def _state_of_member() -> Any:
    return and_(
        S.tenant_id == M.tenant_id,
        S.contact_id == M.contact_id,
        S.topic_id == P.topic_id,
        S.channel == P.channel,
    )


class SqlPermissionPasses:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    def add(self, p: PermissionPass) -> None:
        is_list = p.source_kind is SourceKind.LIST
        self._conn.execute(
            insert(permission_passes).values(
                id=p.id,
                tenant_id=p.tenant_id,
                name=p.name,
                topic_id=p.topic_id,
                channel=p.channel.value,
                source_kind=p.source_kind.value,
                list_id=p.source_id if is_list else None,
                import_id=None if is_list else p.source_id,
                campaign_id=p.campaign_id,
                disclosure_document_id=p.disclosure_document_id,
                deadline=p.deadline,
                status=p.status.value,
                created_by=p.created_by,
                created_at=p.created_at,
            )
        )

    def add_members(self, p: PermissionPass, now: datetime) -> int:
        """Every contact point of the source whose consent is active now; the number added."""
        if p.source_kind is SourceKind.LIST:
            source = exists().where(
                contact_list_members.c.list_id == p.source_id,
                contact_list_members.c.contact_id == S.contact_id,
            )
        else:
            e = consent_events.c
            source = exists().where(
                e.tenant_id == p.tenant_id,
                e.contact_id == S.contact_id,
                e.import_batch_id == p.source_id,
                e.topic_id == p.topic_id,
                e.channel == p.channel.value,
            )
        chosen = (
            select(
                literal(p.id, M.pass_id.type),
                S.contact_id,
                literal(p.tenant_id, M.tenant_id.type),
                S.point_key,
                S.event_id,
            )
            .select_from(consent_states.join(contacts, contacts.c.id == S.contact_id))
            .where(
                S.tenant_id == p.tenant_id,
                S.topic_id == p.topic_id,
                S.channel == p.channel.value,
                S.status == ConsentStatus.ACTIVE.value,
                or_(S.expires_at.is_(None), S.expires_at > now),
                S.point_key == key_column(p.channel),
                contacts.c.erased_at.is_(None),
                source,
            )
        )
        columns = ["pass_id", "contact_id", "tenant_id", "point_key", "start_event_id"]
        self._conn.execute(insert(permission_pass_members).from_select(columns, chosen))
        return self.size(p.id)

    def size(self, pass_id: uuid.UUID) -> int:
        return int(
            self._conn.execute(select(func.count()).where(M.pass_id == pass_id)).scalar_one()
        )

    def fill_list(self, pass_id: uuid.UUID, list_id: uuid.UUID) -> None:
        """Make the members the audience list of the pass's campaign."""
        chosen = select(literal(list_id, contact_list_members.c.list_id.type), M.contact_id).where(
            M.pass_id == pass_id
        )
        self._conn.execute(
            insert(contact_list_members).from_select(["list_id", "contact_id"], chosen)
        )

    def get(self, tenant_id: uuid.UUID, pass_id: uuid.UUID) -> PermissionPass:
        row = self._conn.execute(
            select(permission_passes).where(P.tenant_id == tenant_id, P.id == pass_id)
        ).one_or_none()
        if row is None:
            raise PassNotFound(f"permission pass {pass_id} not found", field="pass")
        return _pass(row)

    def for_campaign(self, campaign_id: uuid.UUID) -> PermissionPass | None:
        row = self._conn.execute(
            select(permission_passes).where(P.campaign_id == campaign_id)
        ).one_or_none()
        return None if row is None else _pass(row)

    def of_tenant(self, tenant_id: uuid.UUID) -> list[PermissionPass]:
        rows = self._conn.execute(
            select(permission_passes)
            .where(P.tenant_id == tenant_id)
            .order_by(P.created_at.desc(), P.id)
        )
        return [_pass(r) for r in rows]

    def due(self, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(tenant, pass) of running passes whose deadline has passed."""
        rows = self._conn.execute(
            select(P.tenant_id, P.id).where(P.status == PassStatus.RUNNING.value, P.deadline <= now)
        )
        return [(r.tenant_id, r.id) for r in rows]

    # -- renewing ------------------------------------------------------------------------------

    def hold_running(self, pass_id: uuid.UUID) -> bool:
        """Whether the pass still runs, holding a shared lock on it until the transaction ends
        (the end of the pass waits for a renewal in progress)."""
        query = select(P.id).where(P.id == pass_id, P.status == PassStatus.RUNNING.value)
        if self._postgres:
            query = query.with_for_update(read=True)
        return self._conn.execute(query).one_or_none() is not None

    def member(self, pass_id: uuid.UUID, contact_id: uuid.UUID) -> PassMember | None:
        row = self._conn.execute(
            select(permission_pass_members).where(M.pass_id == pass_id, M.contact_id == contact_id)
        ).one_or_none()
        if row is None:
            return None
        return PassMember(
            contact_id=row.contact_id,
            point_key=bytes(row.point_key),
            start_event_id=row.start_event_id,
            renewed_event_id=row.renewed_event_id,
            outcome=None if row.outcome is None else MemberOutcome(row.outcome),
        )

    def asking(
        self, point_key: bytes, channel: Channel, now: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
        """(tenant, pass, contact) of every running pass on ``channel`` still waiting for this
        address to renew, before its deadline."""
        rows = _ASKING.rows(
            self._conn, {"point_key": point_key, "channel": channel.value, "now": now}
        )
        return [(r.tenant_id, r.pass_id, r.contact_id) for r in rows]

    def record_renewal(
        self, pass_id: uuid.UUID, contact_id: uuid.UUID, event_id: uuid.UUID, at: datetime
    ) -> bool:
        """Compare-and-set: False if the member renewed already."""
        result = self._conn.execute(
            update(permission_pass_members)
            .where(
                M.pass_id == pass_id,
                M.contact_id == contact_id,
                M.renewed_event_id.is_(None),
            )
            .values(renewed_event_id=event_id, renewed_at=at)
        )
        return result.rowcount == 1

    # -- ending --------------------------------------------------------------------------------

    def mark_ended(self, pass_id: uuid.UUID, at: datetime) -> bool:
        """Compare-and-set running -> ended (locks the pass row); False if it had ended."""
        result = self._conn.execute(
            update(permission_passes)
            .where(P.id == pass_id, P.status == PassStatus.RUNNING.value)
            .values(status=PassStatus.ENDED.value, ended_at=at)
        )
        return result.rowcount == 1

    def undecided(
        self, pass_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, uuid.UUID, ConsentState | None]]:
        """Members without an outcome: (contact, start event, current consent state)."""
        joined = permission_pass_members.join(permission_passes, P.id == M.pass_id).outerjoin(
            consent_states, _state_of_member()
        )
        rows = self._conn.execute(
            select(
                M.contact_id.label("member_contact"),
                M.start_event_id,
                M.point_key.label("member_point"),
                consent_states,
            )
            .select_from(joined)
            .where(M.pass_id == pass_id, M.outcome.is_(None))
            .order_by(M.contact_id)
        )
        found = []
        for r in rows:
            state = None if r.event_id is None else state_from_row(r)
            if state is not None and state.point_key != bytes(r.member_point):
                state = None  # consent of another address: not the one the pass asked about
            found.append((r.member_contact, r.start_event_id, state))
        return found

    def set_outcomes(self, pass_id: uuid.UUID, outcomes: Mapping[uuid.UUID, MemberOutcome]) -> None:
        if not outcomes:
            return
        self._conn.execute(
            update(permission_pass_members)
            .where(M.pass_id == pass_id, M.contact_id == bindparam("b_contact"))
            .values(outcome=bindparam("b_outcome")),
            [{"b_contact": c, "b_outcome": o.value} for c, o in outcomes.items()],
        )

    # -- reporting -----------------------------------------------------------------------------

    def member_counts(self, pass_id: uuid.UUID) -> list[tuple[str | None, str | None, bool, int]]:
        """(stored outcome, current status, still on its start event, members) groups."""
        joined = permission_pass_members.join(permission_passes, P.id == M.pass_id).outerjoin(
            consent_states, and_(_state_of_member(), S.point_key == M.point_key)
        )
        same = func.coalesce(S.event_id == M.start_event_id, False).label("same")
        rows = self._conn.execute(
            select(M.outcome, S.status, same, func.count())
            .select_from(joined)
            .where(M.pass_id == pass_id)
            .group_by(M.outcome, S.status, same)
        )
        return [(o, s, bool(same_), int(n)) for o, s, same_, n in rows]

    def delivery_counts(self, campaign_id: uuid.UUID) -> list[tuple[str, str, int]]:
        """(status, reasons, deliveries) of the pass's messages."""
        d = deliveries.c
        rows = self._conn.execute(
            select(d.status, d.reasons, func.count())
            .where(d.campaign_id == campaign_id)
            .group_by(d.status, d.reasons)
        )
        return [(status, reasons, int(n)) for status, reasons, n in rows]
