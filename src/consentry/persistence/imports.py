"""Import records with their attestation and report, and the set-based lookups of an import."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    LargeBinary,
    and_,
    any_,
    bindparam,
    cast,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import NullType

from consentry.domain.consent import ConsentEvent, ConsentState, ConsentStatus, apply_event
from consentry.domain.errors import InvalidInput
from consentry.domain.imports import (
    Acquisition,
    Attestation,
    ImportCounts,
    ImportNotFound,
    ImportRecord,
    ImportStatus,
    OptInMethod,
    RowIssue,
    Severity,
)
from consentry.domain.model import Channel, PointKind, point_index_value
from consentry.persistence import copy_binary
from consentry.persistence.bulk import bulk_insert, column_types, copy_raw
from consentry.persistence.contacts import CONTACT_COLUMNS, key_column
from consentry.persistence.import_prep import (
    CONTACT,
    EVENT_HEAD,
    MAX_HELPERS,
    STATE_HEAD,
    STATE_TAIL,
    Oids,
    ProcessPreparer,
    RowEncoder,
    RowSealer,
    ThreadPreparer,
    preparer,
)
from consentry.persistence.ledger import (
    EVENT_COLUMNS,
    STATE_COLUMNS,
    SqlConsentLedger,
    SqlConsentStates,
    state_from_row,
)
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import (
    consent_events,
    consent_states,
    contacts,
    import_issues,
    imports,
    suppressions,
    topics,
)
from consentry.persistence.types import pg_bytes, uuid_among
from consentry.services.addresses import normalize_email, normalize_phone
from consentry.services.import_rows import ExistingConsent, RowContext
from consentry.services.ports import (
    ExistingPoint,
    ImportLookup,
    KeyRing,
    SealedEvent,
    SealedRow,
    SealingKeys,
    Written,
)

_ISSUE_BATCH = 2000
_ADDRESS_KINDS = {"email": PointKind.EMAIL, "phone": PointKind.PHONE, "whatsapp": PointKind.PHONE}
_BYTEA_ARRAY = ARRAY(LargeBinary())


def _record(row: Any) -> ImportRecord:
    counts = json.loads(row.counts)
    return ImportRecord(
        id=row.id,
        tenant_id=row.tenant_id,
        topic_id=row.topic_id,
        topic_key=row.topic_key,
        channel=Channel(row.channel),
        status=ImportStatus(row.status),
        dry_run=row.dry_run,
        keep_good_rows=row.keep_good_rows,
        file_name=row.file_name,
        file_sha256=row.file_sha256,
        file_bytes=row.file_bytes,
        rows_total=row.rows_total,
        rows_done=row.rows_done,
        mapping=json.loads(row.mapping),
        required=tuple(r for r in row.required.split(",") if r),
        attestation=Attestation(
            source=row.source,
            opt_in_method=OptInMethod(row.opt_in_method),
            collected_from=row.collected_from,
            collected_to=row.collected_to,
            acquisition=Acquisition(row.acquisition),
            attested=row.attested,
            attested_by=row.attested_by,
            website=row.website,
            disclosure_document_id=row.disclosure_document_id,
            disclosure_text=row.disclosure_text,
        ),
        created_at=row.created_at,
        counts=ImportCounts(**counts),
        disclosure_document_id=row.disclosure_document_id,
        confirmation_required=row.confirmation_required,
        error_code=row.error_code,
        error_detail=row.error_detail,
        finished_at=row.finished_at,
    )


class SqlImports:
    """Import records (the attestation and file hash kept as declared) and their reports."""

    def __init__(self, conn: Connection, crypto: FieldCrypto, keys: KeyRing) -> None:
        self._conn = conn
        self._crypto = crypto
        self._keys = keys

    def add(self, record: ImportRecord) -> None:
        a = record.attestation
        self._conn.execute(
            insert(imports).values(
                id=record.id,
                tenant_id=record.tenant_id,
                topic_id=record.topic_id,
                channel=record.channel.value,
                status=record.status.value,
                dry_run=record.dry_run,
                keep_good_rows=record.keep_good_rows,
                file_name=record.file_name[:300],
                file_sha256=record.file_sha256,
                file_bytes=record.file_bytes,
                rows_total=record.rows_total,
                rows_done=record.rows_done,
                mapping=json.dumps(record.mapping, sort_keys=True),
                required=",".join(record.required),
                source=a.source,
                opt_in_method=a.opt_in_method.value,
                collected_from=a.collected_from,
                collected_to=a.collected_to,
                website=a.website,
                acquisition=a.acquisition.value,
                attested=a.attested,
                attested_by=a.attested_by,
                disclosure_document_id=record.disclosure_document_id,
                disclosure_text=a.disclosure_text,
                confirmation_required=record.confirmation_required,
                counts=json.dumps(asdict(record.counts)),
                created_at=record.created_at,
            )
        )

    def get(self, tenant_id: uuid.UUID, import_id: uuid.UUID) -> ImportRecord:
        row = self._conn.execute(
            select(imports, topics.c.key.label("topic_key"))
            .join(topics, topics.c.id == imports.c.topic_id)
            .where(imports.c.tenant_id == tenant_id, imports.c.id == import_id)
        ).one_or_none()
        if row is None:
            raise ImportNotFound(f"import {import_id} not found", field="import")
        return _record(row)

    def pending_requests(
        self, record: ImportRecord, after: uuid.UUID | None, limit: int
    ) -> list[ConsentState]:
        s, e = consent_states.c, consent_events.c
        query = (
            select(consent_states)
            .join(consent_events, consent_events.c.id == s.event_id)
            .where(
                s.topic_id == record.topic_id,
                s.channel == record.channel.value,
                s.tenant_id == record.tenant_id,
                s.status == ConsentStatus.PENDING.value,
                e.import_batch_id == record.id,
            )
            .order_by(s.contact_id)
            .limit(limit)
        )
        if after is not None:
            query = query.where(s.contact_id > after)
        return [state_from_row(row) for row in self._conn.execute(query)]

    def add_confirmations_sent(self, import_id: uuid.UUID, sent: int) -> None:
        row = self._conn.execute(
            select(imports.c.counts).where(imports.c.id == import_id).with_for_update()
        ).one()
        counts = json.loads(row.counts)
        counts["confirmations_sent"] = counts.get("confirmations_sent", 0) + sent
        self._conn.execute(
            update(imports).where(imports.c.id == import_id).values(counts=json.dumps(counts))
        )

    def finish(
        self,
        import_id: uuid.UUID,
        *,
        status: ImportStatus,
        counts: ImportCounts,
        rows_done: int,
        at: datetime | None,
        disclosure_document_id: uuid.UUID | None = None,
        error: tuple[str, str] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status.value,
            "counts": json.dumps(asdict(counts)),
            "rows_done": rows_done,
            "finished_at": at,
        }
        if disclosure_document_id is not None:
            values["disclosure_document_id"] = disclosure_document_id
        if error is not None:
            values["error_code"], values["error_detail"] = error[0], error[1][:500]
        self._conn.execute(update(imports).where(imports.c.id == import_id).values(**values))

    def add_issues(
        self, tenant_id: uuid.UUID, import_id: uuid.UUID, issues: Iterable[RowIssue]
    ) -> None:
        batch: list[tuple[Any, ...]] = []
        for issue in issues:
            batch.append(
                (
                    import_id,
                    issue.line,
                    issue.field,
                    issue.code,
                    issue.severity.value,
                    issue.message[:500],
                    self._crypto.seal(tenant_id, "import_issues.value", issue.value),
                    self._value_key(issue),
                )
            )
            if len(batch) >= _ISSUE_BATCH:
                self._insert_issues(batch)
                batch = []
        self._insert_issues(batch)

    def _insert_issues(self, batch: list[tuple[Any, ...]]) -> None:
        columns = (
            "import_id", "line", "field", "code", "severity", "message", "value_enc", "value_key",
        )  # fmt: skip
        bulk_insert(self._conn, import_issues, columns, batch)

    def _value_key(self, issue: RowIssue) -> bytes | None:
        """The blind index of the cell when it is an address of its column's kind: an email
        address, or a phone number written in international form (a national one needs the
        row's country, which the report does not keep)."""
        kind = _ADDRESS_KINDS.get(issue.field or "")
        if kind is None or not issue.value:
            return None
        try:
            if kind is PointKind.EMAIL:
                normal = normalize_email(issue.value)
            else:
                normal, _ = normalize_phone(issue.value, None)
        except InvalidInput:
            return None
        return self._keys.blind_index(kind, point_index_value(kind, normal))

    def forget_values(self, tenant_id: uuid.UUID, keys: Sequence[bytes]) -> int:
        """Empty the cells of the tenant's import reports that hold one of these addresses
        (erasure); the problems themselves stay. Returns how many."""
        if not keys:
            return 0
        result = self._conn.execute(
            update(import_issues)
            .where(
                import_issues.c.value_key.in_(list(keys)),
                import_issues.c.import_id.in_(
                    select(imports.c.id).where(imports.c.tenant_id == tenant_id)
                ),
            )
            .values(value_enc=None, value_key=None)
        )
        return int(result.rowcount)

    def issues(
        self, tenant_id: uuid.UUID, import_id: uuid.UUID, after: int = 0, limit: int | None = None
    ) -> Iterator[tuple[int, RowIssue]]:
        """The report in file order, with a cursor; values decrypted."""
        query = (
            select(import_issues)
            .where(import_issues.c.import_id == import_id, import_issues.c.id > after)
            .order_by(import_issues.c.id)
        )
        if limit is not None:
            query = query.limit(limit)
        result = self._conn.execute(query, execution_options={"yield_per": 2000})
        try:
            for row in result:
                yield (
                    int(row.id),
                    RowIssue(
                        line=row.line,
                        field=row.field,
                        code=row.code,
                        severity=Severity(row.severity),
                        message=row.message,
                        value=self._crypto.open(tenant_id, "import_issues.value", row.value_enc),
                    ),
                )
        finally:
            result.close()


class SqlImportRows:
    """The set-based reads and bulk writes of one import batch."""

    def __init__(
        self, conn: Connection, keys: KeyRing, crypto: FieldCrypto, *, helpers: int = MAX_HELPERS
    ) -> None:
        self._conn = conn
        self._keys = keys
        self._crypto = crypto
        self._pg = conn.dialect.name == "postgresql"
        self._helpers = helpers

    def sealing_keys(self, tenant_id: uuid.UUID) -> SealingKeys:
        return self._keys.sealing_keys(tenant_id, self._crypto.wrapped_key(tenant_id))

    def sealer(self, tenant_id: uuid.UUID) -> RowSealer:
        return RowSealer(self.sealing_keys(tenant_id), tenant_id)

    def preparer(
        self, ctx: RowContext, keys: SealingKeys, *, rows: int
    ) -> ThreadPreparer | ProcessPreparer:
        oids = self._oids() if self._pg else None
        return preparer(ctx, keys, oids, rows=rows, most=self._helpers)

    def _oids(self) -> Oids:
        return Oids(
            tuple(column_types(self._conn, contacts, CONTACT_COLUMNS)),
            tuple(column_types(self._conn, consent_events, EVENT_COLUMNS)),
            tuple(column_types(self._conn, consent_states, STATE_COLUMNS)),
        )

    def write(self, tenant_id: uuid.UUID, items: Sequence[Any]) -> Written:
        if not items:
            return Written(0, 0)
        ledger = SqlConsentLedger(self._conn, self._crypto)
        states = SqlConsentStates(self._conn)
        sealer = self.sealer(tenant_id)
        if self._pg:
            return self._write_encoded(tenant_id, items, ledger, states, sealer)
        new_contacts: list[SealedRow] = []
        events: list[SealedEvent] = []
        existing: set[int] = set()
        for position, item in enumerate(items):
            if isinstance(item, ExistingConsent):
                existing.add(position)
                events.append(sealer.event(item.event, item.digests))
            else:
                contact, event = item
                new_contacts.append(contact)
                events.append(event)
        self.add_contacts(new_contacts)
        chained = ledger.append_sealed(events)
        fresh: list[ConsentState] = []
        for position, event in enumerate(chained):
            state = apply_event(None, event)  # a request or grant starts a fresh state
            if position in existing:
                states.put(state)
            else:
                fresh.append(state)
        states.add_many(fresh)
        return Written(len(new_contacts), len(chained))

    def _write_encoded(
        self,
        tenant_id: uuid.UUID,
        items: Sequence[Any],
        ledger: SqlConsentLedger,
        states: SqlConsentStates,
        sealer: RowSealer,
    ) -> Written:
        encoder = RowEncoder(self._oids())
        new_contacts = [copy_binary.HEADER]
        added = 0
        events: list[Sequence[Any]] = []
        existing: dict[int, ConsentEvent] = {}
        for position, item in enumerate(items):
            if isinstance(item, ExistingConsent):
                existing[position] = item.event
                events.append(encoder.event(sealer.event(item.event, item.digests)))
            else:  # the payload import_prep.prepare encoded
                new_contacts.append(item[CONTACT])
                events.append(item[EVENT_HEAD:])
                added += 1
        if added:
            new_contacts.append(copy_binary.TRAILER)
            copy_raw(self._conn, contacts, CONTACT_COLUMNS, b"".join(new_contacts))
        links = ledger.append_encoded(tenant_id, events)
        fresh = [copy_binary.HEADER]
        for position, (item, (seq, prev, digest)) in enumerate(zip(items, links, strict=True)):
            event = existing.get(position)
            if event is None:
                fresh += (item[STATE_HEAD], copy_binary.int8_field(seq), item[STATE_TAIL])
            else:
                chained = replace(event, seq=seq, prev_hash=prev, hash=digest)
                states.put(apply_event(None, chained))  # a request or grant: a fresh state
        if len(fresh) > 1:
            fresh.append(copy_binary.TRAILER)
            copy_raw(self._conn, consent_states, STATE_COLUMNS, b"".join(fresh))
        return Written(added, len(links))

    def _in(self, column: Any, values: Sequence[Any], name: str) -> ColumnElement[bool]:
        """``column IN values``; on PostgreSQL one array literal (``= ANY``), since a query
        with thousands of placeholders costs more to prepare than to run."""
        if not isinstance(values[0], bytes):
            return uuid_among(self._conn.dialect.name, column, values, name)  # type: ignore[no-any-return]
        if not self._pg:
            return column.in_(values)  # type: ignore[no-any-return]
        keys = bindparam(name, pg_bytes(values), type_=NullType())
        return column == any_(cast(keys, _BYTEA_ARRAY))  # type: ignore[no-any-return]

    def lookup(
        self,
        tenant_id: uuid.UUID,
        channel: Channel,
        *,
        topic_ids: Sequence[uuid.UUID],
        point_keys: Sequence[bytes],
        email_keys: Sequence[bytes],
        import_id: uuid.UUID,
    ) -> ImportLookup:
        found: dict[bytes, ExistingPoint] = {}
        emails: dict[bytes, uuid.UUID] = {}
        suppressed: dict[bytes, str] = {}
        point_column = key_column(channel)
        if point_keys:
            rows = self._conn.execute(
                select(contacts.c.id, point_column.label("k"), contacts.c.adult_on).where(
                    contacts.c.tenant_id == tenant_id, self._in(point_column, point_keys, "points")
                )
            )
            owners = {bytes(r.k): (r.id, r.adult_on) for r in rows}
            states: dict[uuid.UUID, list[tuple[uuid.UUID, ConsentStatus, bool, bool]]] = {}
            if owners:
                ids = [owner for owner, _ in owners.values()]
                state_rows = self._conn.execute(
                    select(
                        consent_states.c.contact_id,
                        consent_states.c.topic_id,
                        consent_states.c.point_key,
                        consent_states.c.status,
                        consent_states.c.confirmed,
                        consent_events.c.import_batch_id,
                    )
                    .join(consent_events, consent_events.c.id == consent_states.c.event_id)
                    .where(
                        consent_states.c.tenant_id == tenant_id,
                        self._in(consent_states.c.contact_id, ids, "ids"),
                        consent_states.c.channel == channel.value,
                        consent_states.c.topic_id.in_(topic_ids),
                    )
                )
                by_owner = {owner: key for key, (owner, _) in owners.items()}
                for s in state_rows:
                    # A state recorded for an earlier address of the contact is not theirs now.
                    if bytes(s.point_key) != by_owner.get(s.contact_id):
                        continue
                    states.setdefault(s.contact_id, []).append(
                        (
                            s.topic_id,
                            ConsentStatus(s.status),
                            s.confirmed,
                            s.import_batch_id == import_id,
                        )
                    )
            for key, (owner, adult_on) in owners.items():
                found[key] = ExistingPoint(owner, adult_on, tuple(states.get(owner, ())))
            blocks = self._conn.execute(
                select(suppressions.c.point_key, suppressions.c.reason).where(
                    self._in(suppressions.c.point_key, point_keys, "blocked"),
                    suppressions.c.channel == channel.value,
                    suppressions.c.lifted_at.is_(None),
                    or_(suppressions.c.tenant_id == tenant_id, suppressions.c.tenant_id.is_(None)),
                )
            )
            for b in blocks:
                suppressed.setdefault(bytes(b.point_key), b.reason)
        if email_keys:
            rows = self._conn.execute(
                select(contacts.c.id, contacts.c.email_key).where(
                    and_(
                        contacts.c.tenant_id == tenant_id,
                        self._in(contacts.c.email_key, email_keys, "emails"),
                    )
                )
            )
            emails = {bytes(r.email_key): r.id for r in rows}
        return ImportLookup(found, emails, suppressed)

    def add_contacts(self, new: Sequence[SealedRow]) -> None:
        """Insert new contacts sealed by ``RowSealer.contact``."""
        bulk_insert(self._conn, contacts, CONTACT_COLUMNS, new)
