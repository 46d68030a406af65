"""Policy notices and their recipients: chosen set-based, sent in leased batches.

Recipients are written by one INSERT ... SELECT over the consent states the new version
concerns (persistence/concerned.py), one per contact, with the blind index of the contact's
address on the notice's channel. Contact points a notice about the same version and channel
has reached already are left out.

Sending claims due recipients with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL) like the
deliveries do; a lease that runs out in ``sending`` puts the recipient back in the queue.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.types import Boolean, Integer, String

from consentry.domain.consent import ConsentState
from consentry.domain.model import Channel, PolicyDocument
from consentry.domain.notices import (
    REACHED,
    NoticeNotFound,
    NoticeRecipient,
    NoticeStatus,
    PolicyNotice,
    RecipientStatus,
    consent_channel,
)
from consentry.domain.suppression import SuppressionReason, reason_code
from consentry.persistence.concerned import concerned_states_query
from consentry.persistence.contacts import key_column
from consentry.persistence.ledger import state_from_row
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import (
    consent_states,
    policy_notice_recipients,
    policy_notices,
)
from consentry.persistence.types import UTCDateTime

N = policy_notices.c
R = policy_notice_recipients.c
S = consent_states.c
_ACCEPTANCE = "policy_notice_recipients.acceptance"


def _notice(row: Any) -> PolicyNotice:
    return PolicyNotice(
        id=row.id,
        tenant_id=row.tenant_id,
        document_id=row.document_id,
        channel=Channel(row.channel),
        ask_acceptance=row.ask_acceptance,
        status=NoticeStatus(row.status),
        created_by=row.created_by,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _recipient(row: Any) -> NoticeRecipient:
    return NoticeRecipient(
        notice_id=row.notice_id,
        tenant_id=row.tenant_id,
        contact_id=row.contact_id,
        point_key=None if row.point_key is None else bytes(row.point_key),
        status=RecipientStatus(row.status),
        reason=row.reason,
        sent_at=row.sent_at,
        accepted_at=row.accepted_at,
        attempts=row.attempts,
    )


class SqlPolicyNotices:
    def __init__(self, conn: Connection, crypto: FieldCrypto) -> None:
        self._conn = conn
        self._crypto = crypto
        self._postgres = conn.dialect.name == "postgresql"

    def forget_contact(self, tenant_id: uuid.UUID, contact_id: uuid.UUID, now: datetime) -> None:
        """Erasure: notices not yet sent to the contact are refused (``SUPPRESSED_ERASED``, as the
        gate would refuse them), and
        the sealed evidence of an acceptance (page, IP address, user agent) goes; that and when
        the notice was sent or accepted stay."""
        mine = (R.tenant_id == tenant_id, R.contact_id == contact_id)
        self._conn.execute(
            update(policy_notice_recipients)
            .where(*mine, R.status == RecipientStatus.QUEUED.value)
            .values(
                status=RecipientStatus.REFUSED.value,
                reason=reason_code(SuppressionReason.ERASED),
                lease_owner=None,
                lease_until=None,
                next_attempt_at=None,
                updated_at=now,
            )
        )
        self._conn.execute(
            update(policy_notice_recipients)
            .where(*mine, R.acceptance_enc.is_not(None))
            .values(acceptance_enc=None, updated_at=now)
        )

    def add(self, notice: PolicyNotice) -> None:
        self._conn.execute(
            insert(policy_notices).values(
                id=notice.id,
                tenant_id=notice.tenant_id,
                document_id=notice.document_id,
                channel=notice.channel.value,
                ask_acceptance=notice.ask_acceptance,
                status=notice.status.value,
                created_by=notice.created_by,
                created_at=notice.created_at,
                finished_at=notice.finished_at,
            )
        )

    def add_recipients(self, notice: PolicyNotice, document: PolicyDocument, now: datetime) -> int:
        """One recipient per contact point the new version concerns that no notice about it on
        this channel has reached yet; the number added."""
        concerned = consent_channel(document.kind, notice.channel)
        joined, where = concerned_states_query(notice.tenant_id, document, concerned, now)
        earlier = policy_notice_recipients.alias("earlier")
        earlier_notice = policy_notices.alias("earlier_notice")
        reached = exists().where(
            earlier.c.tenant_id == notice.tenant_id,
            earlier.c.contact_id == S.contact_id,
            earlier.c.status.in_([s.value for s in REACHED]),
            earlier_notice.c.id == earlier.c.notice_id,
            earlier_notice.c.document_id == notice.document_id,
            earlier_notice.c.channel == notice.channel.value,
        )
        chosen = (
            select(
                literal(notice.id, R.notice_id.type),
                S.contact_id,
                literal(notice.tenant_id, R.tenant_id.type),
                key_column(notice.channel),
                literal(RecipientStatus.QUEUED.value),
                literal(0),
                literal(now, R.updated_at.type),
            )
            .select_from(joined)
            .where(*where, ~reached)
            .distinct()
        )
        columns = ["notice_id", "contact_id", "tenant_id", "point_key", "status", "attempts",
                   "updated_at"]  # fmt: skip
        self._conn.execute(insert(policy_notice_recipients).from_select(columns, chosen))
        return int(
            self._conn.execute(select(func.count()).where(R.notice_id == notice.id)).scalar_one()
        )

    def concerned_states(
        self,
        tenant_id: uuid.UUID,
        contact_id: uuid.UUID,
        document: PolicyDocument,
        channel: Channel,
        now: datetime,
    ) -> list[ConsentState]:
        """One contact's active consent states on ``channel`` that ``document`` concerns."""
        joined, where = concerned_states_query(tenant_id, document, channel, now)
        rows = self._conn.execute(
            select(consent_states).select_from(joined).where(*where, S.contact_id == contact_id)
        )
        return [state_from_row(r) for r in rows]

    def get(self, tenant_id: uuid.UUID, notice_id: uuid.UUID) -> PolicyNotice:
        row = self._conn.execute(
            select(policy_notices).where(N.tenant_id == tenant_id, N.id == notice_id)
        ).one_or_none()
        if row is None:
            raise NoticeNotFound(f"policy notice {notice_id} not found", field="notice")
        return _notice(row)

    def of_document(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> list[PolicyNotice]:
        rows = self._conn.execute(
            select(policy_notices)
            .where(N.tenant_id == tenant_id, N.document_id == document_id)
            .order_by(N.created_at.desc(), N.id)
        )
        return [_notice(r) for r in rows]

    def recipient(self, notice_id: uuid.UUID, contact_id: uuid.UUID) -> NoticeRecipient | None:
        row = self._conn.execute(
            select(policy_notice_recipients).where(
                R.notice_id == notice_id, R.contact_id == contact_id
            )
        ).one_or_none()
        return None if row is None else _recipient(row)

    def counts(self, notice_id: uuid.UUID) -> list[tuple[RecipientStatus, str | None, int]]:
        rows = self._conn.execute(
            select(R.status, R.reason, func.count())
            .where(R.notice_id == notice_id)
            .group_by(R.status, R.reason)
        )
        return [(RecipientStatus(s), reason, int(n)) for s, reason, n in rows]

    # -- sending -------------------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        notice_id: uuid.UUID | None = None,
    ) -> list[NoticeRecipient]:
        """Lease up to ``limit`` due recipients, ordered by notice."""
        due = (
            select(R.notice_id, R.contact_id)
            .where(
                R.status == RecipientStatus.QUEUED.value,
                or_(R.next_attempt_at.is_(None), R.next_attempt_at <= now),
                or_(R.lease_until.is_(None), R.lease_until < now),
            )
            .order_by(R.notice_id, R.contact_id)
            .limit(limit)
        )
        if notice_id is not None:
            due = due.where(R.notice_id == notice_id)
        if self._postgres:
            due = due.with_for_update(skip_locked=True)
        found = [(r.notice_id, r.contact_id) for r in self._conn.execute(due)]
        if not found:
            return []
        free = or_(R.lease_until.is_(None), R.lease_until < now)  # SQLite: not taken meanwhile
        self._conn.execute(
            update(policy_notice_recipients)
            .where(
                R.notice_id == bindparam("b_notice"),
                R.contact_id == bindparam("b_contact"),
                R.status == RecipientStatus.QUEUED.value,
                free,
            )
            .values(lease_owner=owner, lease_until=lease_until),
            [{"b_notice": n, "b_contact": c} for n, c in found],
        )
        rows = self._conn.execute(
            select(policy_notice_recipients).where(
                tuple_(R.notice_id, R.contact_id).in_(found),
                R.lease_owner == owner,
                R.lease_until == lease_until,
            )
        )
        return sorted((_recipient(r) for r in rows), key=lambda r: (r.notice_id, r.contact_id))

    def settle(
        self,
        owner: str,
        notice_id: uuid.UUID,
        outcomes: Mapping[uuid.UUID, tuple[RecipientStatus, str | None, datetime | None]],
        now: datetime,
    ) -> None:
        """Write each leased recipient's outcome: (status, reason, retry at) by contact; the
        lease is released, a send counted, a time of sending kept."""
        if not outcomes:
            return
        self._conn.execute(
            update(policy_notice_recipients)
            .where(
                R.notice_id == notice_id,
                R.contact_id == bindparam("b_contact"),
                R.lease_owner == owner,
            )
            .values(
                status=bindparam("b_status", type_=String),
                reason=bindparam("b_reason", type_=String),
                next_attempt_at=bindparam("b_retry", type_=UTCDateTime()),
                attempts=R.attempts + bindparam("b_attempt", type_=Integer),
                sent_at=case(
                    (bindparam("b_sent", type_=Boolean), literal(now, R.sent_at.type)),
                    else_=R.sent_at,
                ),
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            ),
            [
                {
                    "b_contact": contact,
                    "b_status": status.value,
                    "b_reason": reason,
                    "b_retry": retry,
                    "b_attempt": 0 if status is RecipientStatus.REFUSED else 1,
                    "b_sent": status is RecipientStatus.SENT,
                }
                for contact, (status, reason, retry) in outcomes.items()
            ],
        )

    def mark_sending(
        self,
        owner: str,
        notice_id: uuid.UUID,
        message_ids: Mapping[uuid.UUID, str],
        now: datetime,
        lease_until: datetime,
    ) -> None:
        """In flight: committed before any channel is called."""
        if not message_ids:
            return
        self._conn.execute(
            update(policy_notice_recipients)
            .where(
                R.notice_id == notice_id,
                R.contact_id == bindparam("b_contact"),
                R.lease_owner == owner,
            )
            .values(
                status=RecipientStatus.SENDING.value,
                message_id=func.coalesce(R.message_id, bindparam("b_message")),
                lease_until=lease_until,
                updated_at=now,
            ),
            [{"b_contact": c, "b_message": m} for c, m in message_ids.items()],
        )

    def reap(self, now: datetime) -> int:
        """Recipients whose sender died in flight go back to the queue (re-sent with the same
        Message-ID: a notice is a service message); the number re-queued."""
        result = self._conn.execute(
            update(policy_notice_recipients)
            .where(R.status == RecipientStatus.SENDING.value, R.lease_until < now)
            .values(
                status=RecipientStatus.QUEUED.value,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        )
        return int(result.rowcount)

    def finish_done(self, now: datetime) -> int:
        """Notices with nobody left to send to are done; the number finished."""
        waiting = exists().where(
            R.notice_id == N.id,
            R.status.in_([RecipientStatus.QUEUED.value, RecipientStatus.SENDING.value]),
        )
        result = self._conn.execute(
            update(policy_notices)
            .where(N.status == NoticeStatus.SENDING.value, ~waiting)
            .values(status=NoticeStatus.DONE.value, finished_at=now)
        )
        return int(result.rowcount)

    # -- accepting -----------------------------------------------------------------------------

    def record_acceptance(
        self,
        tenant_id: uuid.UUID,
        notice_id: uuid.UUID,
        contact_id: uuid.UUID,
        evidence: str,
        at: datetime,
    ) -> bool:
        """Compare-and-set: False if the recipient accepted already (or was never sent to)."""
        result = self._conn.execute(
            update(policy_notice_recipients)
            .where(
                R.notice_id == notice_id,
                R.contact_id == contact_id,
                R.accepted_at.is_(None),
                R.status.in_([RecipientStatus.SENT.value, RecipientStatus.SENDING.value]),
            )
            .values(
                status=RecipientStatus.ACCEPTED.value,
                accepted_at=at,
                acceptance_enc=self._crypto.seal(tenant_id, _ACCEPTANCE, evidence),
                updated_at=at,
            )
        )
        return result.rowcount == 1

    def acceptance(
        self, tenant_id: uuid.UUID, notice_id: uuid.UUID, contact_id: uuid.UUID
    ) -> str | None:
        """The sealed acceptance evidence (JSON), opened."""
        value = self._conn.execute(
            select(R.acceptance_enc).where(
                R.tenant_id == tenant_id, R.notice_id == notice_id, R.contact_id == contact_id
            )
        ).scalar_one_or_none()
        return self._crypto.open(tenant_id, _ACCEPTANCE, value)
