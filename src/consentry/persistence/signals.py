"""Signals in: the inbound event log, complaint cases, soft-bounce streaks, tenant alerts.

``record`` is the de-duplication: an ``INSERT ... ON CONFLICT DO NOTHING`` on the unique
(source, event_id), so two copies of one webhook arriving at once are told apart by the database.
Raw payloads are sealed with AES-GCM under a key derived from the platform's index key: they hold
addresses, and the tenant a payload belongs to is often known only after it has been parsed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import (
    ColumnElement,
    Connection,
    and_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from consentry.domain.delivery import DeliveryStatus
from consentry.domain.model import Category, Channel
from consentry.domain.signals import (
    ComplaintCase,
    CourtesyMessage,
    FeedbackType,
    InboundRecord,
    SentDelivery,
    SignalSource,
)
from consentry.persistence.driver import DriverStatement, insert_of
from consentry.persistence.tables import (
    bounce_streaks,
    complaint_cases,
    contacts,
    courtesy_messages,
    deliveries,
    inbound_event_points,
    inbound_events,
    tenant_alerts,
)
from consentry.services.ports import KeyRing

PAYLOAD_PURPOSE = "inbound payload"
_AAD = b"consentry inbound payload"
_POINT_COLUMN = {
    Channel.EMAIL: contacts.c.email_key,
    Channel.SMS: contacts.c.phone_key,
    Channel.VOICE: contacts.c.phone_key,
    Channel.WHATSAPP: contacts.c.whatsapp_key,
}
# Run for every inbound event (a Twilio keyword is one event a request), so built once.
_RECORD_COLUMNS = ("source", "event_id", "status", "kinds", "outcome", "content_type",
                   "payload_enc", "received_at")  # fmt: skip
_RECORD_PG = DriverStatement(
    postgresql.insert(inbound_events)
    .values({n: bindparam(n, type_=inbound_events.c[n].type) for n in _RECORD_COLUMNS})
    .on_conflict_do_nothing(index_elements=["source", "event_id"])
    .returning(inbound_events.c.id),
    columns=(inbound_events.c.id,),
)
_SETTLE = DriverStatement(
    update(inbound_events)
    .where(inbound_events.c.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        tenant_id=bindparam("b_tenant"),
        kinds=bindparam("b_kinds"),
        outcome=bindparam("b_outcome"),
    )
)
_LINK_POINT = DriverStatement(insert_of(inbound_event_points, ("point_key", "inbound_id")))
_WITH_POINT = {
    channel: DriverStatement(
        select(contacts.c.tenant_id, contacts.c.id).where(
            column == bindparam("point_key"), contacts.c.erased_at.is_(None)
        )
    )
    for channel, column in _POINT_COLUMN.items()
}

# A report may move a sent message on; it never moves one back.
_REPORTABLE = {
    DeliveryStatus.DELIVERED: ("sent", "unknown"),
    DeliveryStatus.BOUNCED: ("sent", "delivered", "unknown"),
    DeliveryStatus.COMPLAINED: ("sent", "delivered", "unknown", "bounced"),
    DeliveryStatus.FAILED: ("sent", "unknown"),
}


@dataclass(frozen=True, slots=True)
class _Sealer:
    aead: AESGCM

    def seal(self, payload: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self.aead.encrypt(nonce, payload, _AAD)

    def open(self, sealed: bytes) -> bytes:
        return self.aead.decrypt(sealed[:12], sealed[12:], _AAD)


class SqlSignals:
    def __init__(self, conn: Connection, keys: KeyRing) -> None:
        self._conn = conn
        self._keys = keys
        self._sealer: _Sealer | None = None

    def _payloads(self) -> _Sealer:
        if self._sealer is None:
            self._sealer = _Sealer(AESGCM(self._keys.derive(PAYLOAD_PURPOSE)))
        return self._sealer

    # -- the inbound event log ------------------------------------------------------------------

    def record(
        self,
        source: SignalSource,
        event_id: str,
        content_type: str,
        payload: bytes,
        received_at: datetime,
    ) -> int | None:
        """The new event's id, or None when this (source, event_id) was recorded before."""
        values = {
            "source": source.value,
            "event_id": event_id[:255],
            "status": "received",
            "kinds": "",
            "outcome": "",
            "content_type": content_type[:100],
            "payload_enc": self._payloads().seal(payload),
            "received_at": received_at,
        }
        if self._conn.dialect.name == "postgresql":
            found = _RECORD_PG.rows(self._conn, values)
            return int(found[0].id) if found else None
        row = self._conn.execute(
            sqlite.insert(inbound_events)
            .values(values)
            .on_conflict_do_nothing(index_elements=["source", "event_id"])
            .returning(inbound_events.c.id)
        ).first()
        return None if row is None else int(row[0])

    def settle(
        self,
        inbound_id: int,
        *,
        status: str,
        tenant_id: uuid.UUID | None,
        kinds: str,
        outcome: str,
    ) -> None:
        _SETTLE.execute(
            self._conn,
            {
                "b_id": inbound_id,
                "b_status": status,
                "b_tenant": tenant_id,
                "b_kinds": kinds[:200],
                "b_outcome": outcome[:500],
            },
        )

    def inbound(
        self, *, status: str | None = None, tenant_id: uuid.UUID | None = None, limit: int = 100
    ) -> list[InboundRecord]:
        query = select(inbound_events).order_by(inbound_events.c.id.desc()).limit(limit)
        if status is not None:
            query = query.where(inbound_events.c.status == status)
        if tenant_id is not None:
            query = query.where(inbound_events.c.tenant_id == tenant_id)
        return [
            InboundRecord(
                id=r.id,
                source=SignalSource(r.source),
                event_id=r.event_id,
                tenant_id=r.tenant_id,
                status=r.status,
                kinds=r.kinds,
                outcome=r.outcome,
                content_type=r.content_type,
                received_at=r.received_at,
            )
            for r in self._conn.execute(query)
        ]

    def payload(self, inbound_id: int) -> bytes | None:
        """The event's payload; None when there is no such event or its payload was erased."""
        sealed = self._conn.execute(
            select(inbound_events.c.payload_enc).where(inbound_events.c.id == inbound_id)
        ).scalar_one_or_none()
        return None if not sealed else self._payloads().open(sealed)

    def link_points(self, inbound_id: int, point_keys: Iterable[bytes]) -> None:
        """Record which addresses (blind indexes) this event was about."""
        for key in set(point_keys):
            _LINK_POINT.execute(self._conn, {"point_key": key, "inbound_id": inbound_id})

    def forget_payloads(self, tenant_id: uuid.UUID, point_keys: Sequence[bytes]) -> int:
        """Empty the sealed payloads of the tenant's events about these addresses (the person
        was erased); each event's row stays: when, from which provider, what was applied."""
        if not point_keys:
            return 0
        about = select(inbound_event_points.c.inbound_id).where(
            inbound_event_points.c.point_key.in_(list(point_keys))
        )
        return int(
            self._conn.execute(
                update(inbound_events)
                .where(
                    inbound_events.c.id.in_(about),
                    inbound_events.c.tenant_id == tenant_id,
                    inbound_events.c.payload_enc != b"",
                )
                .values(payload_enc=b"")
            ).rowcount
        )

    # -- email sent outside campaigns -----------------------------------------------------------

    def record_courtesy(
        self, message_id: str, tenant_id: uuid.UUID, point_key: bytes, at: datetime
    ) -> None:
        """Keep a message sent outside campaigns for its bounces (once: a resend of the same
        message keeps the first record).

        On PostgreSQL the transaction commits without waiting for its WAL to reach the disk
        (``synchronous_commit = off``, this transaction only): a crash in the next moment could
        lose the record, leaving a bounce of that one message unattributed as before, where
        waiting would double the cost of sending a policy notice to a whole audience."""
        if self._conn.dialect.name == "postgresql":
            self._conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        dialect = self._conn.dialect.name
        stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(courtesy_messages)
        self._conn.execute(
            stmt.values(
                message_id=message_id, tenant_id=tenant_id, point_key=point_key, sent_at=at
            ).on_conflict_do_nothing(index_elements=["message_id"])
        )

    def forget_courtesy(self, before: datetime) -> int:
        """Records of messages sent before ``before`` go (services/courtesy_signing.py keeps
        them 30 days)."""
        c = courtesy_messages.c
        return int(self._conn.execute(delete(courtesy_messages).where(c.sent_at < before)).rowcount)

    def forget_courtesy_to(self, tenant_id: uuid.UUID, point_keys: Sequence[bytes]) -> int:
        """A tenant's records of messages sent to these addresses go (the person was erased)."""
        if not point_keys:
            return 0
        c = courtesy_messages.c
        return int(
            self._conn.execute(
                delete(courtesy_messages).where(
                    c.tenant_id == tenant_id, c.point_key.in_(list(point_keys))
                )
            ).rowcount
        )

    def courtesy_by_message_id(self, message_id: str) -> CourtesyMessage | None:
        c = courtesy_messages.c
        row = self._conn.execute(
            select(c.message_id, c.tenant_id, c.point_key, c.sent_at).where(
                c.message_id == message_id
            )
        ).first()
        return None if row is None else CourtesyMessage(*row)

    # -- what a report is about -----------------------------------------------------------------

    def delivery_by_message_id(self, message_id: str) -> SentDelivery | None:
        return self._sent(deliveries.c.message_id == message_id)

    def delivery_by_provider_id(self, provider_message_id: str) -> SentDelivery | None:
        return self._sent(deliveries.c.provider_message_id == provider_message_id)

    def latest_sent_to(
        self, contact_ids: Sequence[uuid.UUID], channel: Channel
    ) -> SentDelivery | None:
        """The last message on ``channel`` that left for any of these contacts."""
        if not contact_ids:
            return None
        d = deliveries.c
        return self._sent(
            d.contact_id.in_(list(contact_ids)),
            d.channel == channel.value,
            d.sent_at.is_not(None),
            order=d.sent_at.desc(),
        )

    def _sent(self, *where: ColumnElement[bool], order: Any = None) -> SentDelivery | None:
        d = deliveries.c
        query = select(
            d.id, d.tenant_id, d.campaign_id, d.contact_id, d.channel, d.category, d.status
        ).where(*where)
        if order is not None:
            query = query.order_by(order)
        row = self._conn.execute(query.limit(1)).first()
        if row is None:
            return None
        return SentDelivery(
            id=row.id,
            tenant_id=row.tenant_id,
            campaign_id=row.campaign_id,
            contact_id=row.contact_id,
            channel=Channel(row.channel),
            category=Category(row.category),
            status=DeliveryStatus(row.status),
        )

    def report_delivery(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        now: datetime,
        error_code: str | None = None,
    ) -> bool:
        """Move a sent delivery to what a later report says (delivered, bounced, complained,
        failed); False when its state does not allow it (a report never moves one back)."""
        allowed = _REPORTABLE.get(status)
        if allowed is None:
            raise ValueError(f"a report cannot set {status.value}")
        values: dict[str, object] = {"status": status.value, "updated_at": now}
        if error_code is not None:
            values["error_code"] = error_code[:64]
        result = self._conn.execute(
            update(deliveries)
            .where(and_(deliveries.c.id == delivery_id, deliveries.c.status.in_(allowed)))
            .values(values)
        )
        return bool(result.rowcount)

    def contacts_with_point(
        self, channel: Channel, point_key: bytes
    ) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(tenant id, contact id) of every contact, in any tenant, with this address."""
        rows = _WITH_POINT[channel].rows(self._conn, {"point_key": point_key})
        return [(r.tenant_id, r.id) for r in rows]

    def open_service_window(self, point_key: bytes, at: datetime) -> int:
        """Every contact with this WhatsApp number: the person wrote at ``at``."""
        c = contacts.c
        result = self._conn.execute(
            update(contacts)
            .where(
                c.whatsapp_key == point_key,
                (c.whatsapp_last_inbound_at.is_(None)) | (c.whatsapp_last_inbound_at < at),
            )
            .values(whatsapp_last_inbound_at=at)
        )
        return int(result.rowcount)

    # -- consequences ----------------------------------------------------------------------------

    def open_case(self, case: ComplaintCase, contact_id: uuid.UUID | None, inbound_id: int) -> None:
        self._conn.execute(
            insert(complaint_cases).values(
                id=case.id,
                tenant_id=case.tenant_id,
                campaign_id=case.campaign_id,
                delivery_id=case.delivery_id,
                contact_id=contact_id,
                channel=case.channel.value,
                feedback_type=case.feedback_type.value,
                source=case.source.value,
                inbound_event_id=inbound_id,
                status=case.status,
                opened_at=case.opened_at,
            )
        )

    def cases(self, tenant_id: uuid.UUID, limit: int = 100) -> list[ComplaintCase]:
        c = complaint_cases.c
        query = (
            select(complaint_cases)
            .where(c.tenant_id == tenant_id)
            .order_by(c.opened_at.desc())
            .limit(limit)
        )
        return [
            ComplaintCase(
                id=r.id,
                tenant_id=r.tenant_id,
                campaign_id=r.campaign_id,
                delivery_id=r.delivery_id,
                channel=Channel(r.channel),
                feedback_type=FeedbackType(r.feedback_type),
                source=SignalSource(r.source),
                status=r.status,
                opened_at=r.opened_at,
            )
            for r in self._conn.execute(query)
        ]

    def soft_bounce(self, point_key: bytes, status: str, now: datetime) -> int:
        """Count one more soft bounce in a row for this address; the new count."""
        b = bounce_streaks.c
        current = self._conn.execute(
            select(b.soft_bounces).where(b.point_key == point_key)
        ).scalar_one_or_none()
        if current is None:
            dialect = self._conn.dialect.name
            stmt = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(bounce_streaks)
            self._conn.execute(
                stmt.values(
                    point_key=point_key, soft_bounces=0, last_status="", updated_at=now
                ).on_conflict_do_nothing(index_elements=["point_key"])
            )
        self._conn.execute(
            update(bounce_streaks)
            .where(b.point_key == point_key)
            .values(soft_bounces=b.soft_bounces + 1, last_status=status[:16], updated_at=now)
        )
        return int(
            self._conn.execute(select(b.soft_bounces).where(b.point_key == point_key)).scalar_one()
        )

    def reset_bounces(self, point_key: bytes) -> None:
        self._conn.execute(bounce_streaks.delete().where(bounce_streaks.c.point_key == point_key))

    def contact_point_key(self, contact_id: uuid.UUID, channel: Channel) -> bytes | None:
        column = _POINT_COLUMN.get(channel)
        if column is None:
            return None
        found = self._conn.execute(select(column).where(contacts.c.id == contact_id))
        value = found.scalar_one_or_none()
        return bytes(value) if value is not None else None

    def alert(
        self,
        tenant_id: uuid.UUID,
        kind: str,
        detail: str,
        inbound_id: int | None,
        now: datetime,
    ) -> None:
        self._conn.execute(
            insert(tenant_alerts).values(
                tenant_id=tenant_id,
                kind=kind[:32],
                detail=detail[:500],
                inbound_event_id=inbound_id,
                created_at=now,
            )
        )

    def alerts(self, tenant_id: uuid.UUID, limit: int = 100) -> list[tuple[str, str, datetime]]:
        a = tenant_alerts.c
        query = (
            select(a.kind, a.detail, a.created_at)
            .where(a.tenant_id == tenant_id)
            .order_by(a.id.desc())
            .limit(limit)
        )
        return [(r.kind, r.detail, r.created_at) for r in self._conn.execute(query)]

    def count_cases(self, tenant_id: uuid.UUID) -> int:
        return int(
            self._conn.execute(
                select(func.count()).where(complaint_cases.c.tenant_id == tenant_id)
            ).scalar_one()
        )
