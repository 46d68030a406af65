"""The captured outbox: what the embedded ``capture`` channel "sent", sealed at rest."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy

from sqlalchemy import Engine, and_, select, true

from consentry.domain.delivery import EmailMessage, OutboundMessage, SmsMessage
from consentry.domain.errors import NotFound
from consentry.domain.model import POINT_KIND, Channel, point_index_value
from consentry.persistence.driver import DriverStatement, insert_of
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import captured_messages
from consentry.services.ports import CapturedMessage, KeyRing

C = captured_messages.c
# Every message the embedded channel "sends" (a form's confirmation request, for one), so built
# once.
_CAPTURE = DriverStatement(
    insert_of(
        captured_messages,
        ("tenant_id", "delivery_id", "channel", "recipient_enc", "recipient_key",
         "summary_enc", "raw_enc", "captured_at"),
    ).returning(C.id),
    columns=(C.id,),
)  # fmt: skip


class CapturedMessageNotFound(NotFound):
    code = "CAPTURED_MESSAGE_NOT_FOUND"


def _default_raw(message: OutboundMessage) -> bytes:
    if isinstance(message, EmailMessage):
        return message.data
    fields = {k: getattr(message, k) for k in message.__slots__}
    fields["tenant_id"] = str(fields["tenant_id"])
    return json.dumps(fields, sort_keys=True, default=list).encode()


def _summary(message: OutboundMessage) -> str:
    if isinstance(message, EmailMessage):
        headers = BytesHeaderParser(policy=default_policy).parsebytes(message.data)
        return str(headers.get("Subject", ""))
    if isinstance(message, SmsMessage):
        return message.body[:80]
    return message.template_name or (message.text or "")[:80]


def _recipient(message: OutboundMessage) -> str:
    return message.rcpt_to if isinstance(message, EmailMessage) else message.to


class SqlOutbox:
    """``OutboxStore`` on the database; each call is its own transaction."""

    def __init__(self, engine: Engine, keys: KeyRing) -> None:
        self._engine = engine
        self._keys = keys

    def capture(
        self, message: OutboundMessage, captured_at: datetime, raw: bytes | None = None
    ) -> int:
        raw = _default_raw(message) if raw is None else raw
        tid = message.tenant_id
        recipient = _recipient(message)
        kind = POINT_KIND[message.channel]
        recipient_key = self._keys.blind_index(kind, point_index_value(kind, recipient))
        with self._engine.begin() as conn:
            crypto = FieldCrypto(conn, self._keys)
            # The raw message is sealed as text: base64 keeps arbitrary bytes exact.
            (row,) = _CAPTURE.rows(
                conn,
                {
                    "tenant_id": tid,
                    "delivery_id": message.delivery_id,
                    "channel": message.channel.value,
                    "recipient_enc": crypto.seal(tid, "outbox.recipient", recipient),
                    "recipient_key": recipient_key,
                    "summary_enc": crypto.seal(tid, "outbox.summary", _summary(message)),
                    "raw_enc": crypto.seal(tid, "outbox.raw", base64.b64encode(raw).decode()),
                    "captured_at": captured_at,
                },
            )
        return int(row.id)

    def _load(self, where: object, limit: int, *, with_raw: bool) -> list[CapturedMessage]:
        with self._engine.connect() as conn:
            crypto = FieldCrypto(conn, self._keys)
            query = select(captured_messages).order_by(C.id.desc()).limit(limit)
            if where is not None:
                query = query.where(where)  # type: ignore[arg-type]
            found = []
            for r in conn.execute(query):
                tid = r.tenant_id
                raw = crypto.open(tid, "outbox.raw", r.raw_enc) if with_raw else None
                found.append(
                    CapturedMessage(
                        id=r.id,
                        tenant_id=tid,
                        delivery_id=r.delivery_id,
                        channel=Channel(r.channel),
                        recipient=crypto.open(tid, "outbox.recipient", r.recipient_enc) or "",
                        summary=crypto.open(tid, "outbox.summary", r.summary_enc) or "",
                        captured_at=r.captured_at,
                        raw=base64.b64decode(raw) if raw else b"",
                    )
                )
            return found

    def list(
        self, tenant_id: uuid.UUID | None, limit: int = 50, before: int | None = None
    ) -> list[CapturedMessage]:
        """Newest first (ids below ``before``, for paging), without the raw bytes."""
        where = and_(
            true() if tenant_id is None else C.tenant_id == tenant_id,
            true() if before is None else C.id < before,
        )
        return self._load(where, limit, with_raw=False)

    def get(self, capture_id: int, tenant_id: uuid.UUID | None = None) -> CapturedMessage:
        """One message; with ``tenant_id``, another tenant's message is not found either."""
        where = C.id == capture_id
        if tenant_id is not None:
            where = and_(where, C.tenant_id == tenant_id)
        found = self._load(where, 1, with_raw=True)
        if not found:
            raise CapturedMessageNotFound(f"captured message {capture_id} not found")
        return found[0]
