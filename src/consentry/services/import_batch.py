"""One batch of import rows: looked up set-based, then written in bulk in file order."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import BinaryIO

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    Evidence,
    EvidenceDigests,
    apply_event,
)
from consentry.domain.ids import new_id
from consentry.domain.imports import (
    ADDRESS_FIELD,
    CONSENT_MINOR,
    DUPLICATE_IN_FILE,
    EMAIL_TAKEN,
    EXTRA_COLUMN_IGNORED,
    SKIPPED_ALREADY_CONSENTED,
    SKIPPED_SUPPRESSED,
    SKIPPED_WITHDRAWN,
    ImportCounts,
    ImportRecord,
    RowIssue,
    Severity,
    neutralise_cell,
)
from consentry.domain.model import (
    POINT_KIND,
    Category,
    Contact,
    PointKind,
    Tenant,
    Topic,
    point_index_value,
)
from consentry.services.import_file import Columns, RawRow, csv_rows, decoded_lines, map_columns
from consentry.services.import_report import IssueSpool
from consentry.services.import_rows import ParsedRow, RowRules, parse_row
from consentry.services.ports import (
    ImportLookup,
    ImportSealer,
    SealedEvent,
    SealedRow,
    UnitOfWork,
)

BATCH_ROWS = 5000
NO_LIMIT = 1 << 62  # the size limit was enforced when the file was scanned

Opener = Callable[[], AbstractContextManager[BinaryIO]]
Progress = Callable[[int, int], None]

# A "no" an import never turns back into a "yes" (ARCHITECTURE.md guarantee 6).
_NO = frozenset({ConsentStatus.WITHDRAWN, ConsentStatus.LAPSED, ConsentStatus.VOID})


@dataclass
class ImportRun:
    """What the batches of one import share."""

    uow: UnitOfWork
    tenant: Tenant
    topic: Topic
    topic_ids: list[uuid.UUID]
    record: ImportRecord
    rules: RowRules
    evidence: Evidence
    source_digest: str | None
    action: ConsentAction
    spool: IssueSpool
    now: datetime
    imported: int = 0
    pending: int = 0
    created: int = 0
    error_rows: int = 0
    skipped_rows: int = 0
    done: int = 0

    def counts(self) -> ImportCounts:
        return ImportCounts(
            rows=self.done,
            imported=self.imported,
            pending=self.pending,
            contacts_created=self.created,
            skipped=self.skipped_rows,
            errors=self.error_rows,
        )


def _skip(run: ImportRun, row: ParsedRow, code: str, message: str) -> None:
    field = ADDRESS_FIELD[run.record.channel]
    run.spool.add(RowIssue(row.line, field, code, Severity.SKIPPED, message))
    run.skipped_rows += 1


def _fail(run: ImportRun, row: ParsedRow, fld: str, code: str, message: str) -> None:
    value = {"email": row.email}.get(fld, row.address)
    run.spool.add(RowIssue(row.line, fld, code, Severity.ERROR, message, value))
    run.error_rows += 1


@dataclass(frozen=True, slots=True)
class _Duplicate:
    row: ParsedRow
    first_line: int


@dataclass(frozen=True, slots=True)
class _Ready:
    """A row that parsed, sealed as a new contact and its event, before the look-ups say
    whether the contact point exists already."""

    row: ParsedRow
    key: bytes
    email_key: bytes | None
    contact_id: uuid.UUID
    contact: SealedRow
    event: SealedEvent
    digests: EvidenceDigests


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """One batch read, parsed and sealed, without the database: what it reports before any
    look-up (rows with errors, repeats within the batch) and the rows to look up, in file
    order."""

    rows: int
    early: list[list[RowIssue] | _Duplicate]
    ready: list[_Ready]


def prepare_batch(
    run: ImportRun, sealer: ImportSealer, columns: Columns, raw: list[RawRow]
) -> PreparedBatch:
    """Parse, normalise, index and seal one batch; touches neither the connection nor the
    report, so it runs on its own thread while the batch before it is written."""
    kind = POINT_KIND[run.record.channel]
    index = run.uow.keys.blind_index
    early: list[list[RowIssue] | _Duplicate] = []
    ready: list[_Ready] = []
    seen: dict[bytes, int] = {}
    for parsed in (parse_row(r, columns, run.rules) for r in raw):
        if isinstance(parsed, list):
            early.append(parsed)
            continue
        key = index(kind, point_index_value(kind, parsed.address))
        first = seen.get(key)
        if first is not None:
            early.append(_Duplicate(parsed, first))
            continue
        seen[key] = parsed.line
        if parsed.email is None:
            email_key = None
        elif kind is PointKind.EMAIL:
            email_key = key  # the address is the email address
        else:
            email_key = index(PointKind.EMAIL, point_index_value(PointKind.EMAIL, parsed.email))
        contact_id = new_id()
        event, digests = _event(run, parsed, contact_id, key)
        ready.append(
            _Ready(
                parsed, key, email_key, contact_id,
                sealer.contact(_contact(run, parsed, contact_id), email_key),
                sealer.event(event, digests), digests,
            )
        )  # fmt: skip
    return PreparedBatch(len(raw), early, ready)


def write_batch(run: ImportRun, sealer: ImportSealer, batch: PreparedBatch) -> None:
    uow, record, tenant = run.uow, run.record, run.tenant
    for item in batch.early:
        if isinstance(item, _Duplicate):
            _skip(run, item.row, DUPLICATE_IN_FILE, f"the same address as line {item.first_line}")
            continue
        for issue in item:
            run.spool.add(issue)
        run.error_rows += 1
    found = uow.import_rows.lookup(
        tenant.id,
        record.channel,
        topic_ids=run.topic_ids,
        point_keys=[r.key for r in batch.ready],
        email_keys=[r.email_key for r in batch.ready if r.email_key is not None],
        import_id=record.id,
    )
    new_contacts: list[SealedRow] = []
    events: list[SealedEvent] = []
    existing_ids: set[uuid.UUID] = set()
    new_emails: set[bytes] = set()
    for ready in batch.ready:
        contact_id = _contact_for(run, found, ready, new_emails=new_emails)
        if contact_id is None:
            continue
        if contact_id == ready.contact_id:
            new_contacts.append(ready.contact)
            events.append(ready.event)
        else:  # the contact point exists: its consent goes to the contact that has it
            existing_ids.add(contact_id)
            event = replace(ready.event.event, contact_id=contact_id)
            events.append(sealer.event(event, ready.digests))
    uow.import_rows.add_contacts(new_contacts)
    chained = uow.ledger.append_sealed(events)
    fresh: list[ConsentState] = []
    for event in chained:
        state = apply_event(None, event)  # a request or grant starts a fresh state
        if event.contact_id in existing_ids:
            uow.consent_states.put(state)
        else:
            fresh.append(state)
    uow.consent_states.add_many(fresh)
    run.created += len(new_contacts)
    run.imported += len(chained)
    if run.action is ConsentAction.REQUESTED:
        run.pending += len(chained)


def _contact_for(
    run: ImportRun, found: ImportLookup, ready: _Ready, *, new_emails: set[bytes]
) -> uuid.UUID | None:
    """The contact the row's consent belongs to (an existing one, or the new id it was
    sealed with), or None when the row is skipped or refused (reported here)."""
    row, key, email_key = ready.row, ready.key, ready.email_key
    channel_field = ADDRESS_FIELD[run.record.channel]
    reason = found.suppressed.get(key)
    if reason is not None:
        why = f"the address is suppressed ({reason}); an import never lifts a suppression"
        _skip(run, row, SKIPPED_SUPPRESSED, why)
        return None
    existing = found.existing.get(key)
    if existing is None:
        if email_key is not None and (email_key in found.email_owners or email_key in new_emails):
            why = f"another contact has this email address and a different {channel_field}"
            _fail(run, row, "email", EMAIL_TAKEN, why)
            return None
        if email_key is not None:
            new_emails.add(email_key)
        return ready.contact_id
    if any(this_import for _, _, _, this_import in existing.states):
        _skip(run, row, DUPLICATE_IN_FILE, "the same address as an earlier row of this file")
        return None
    refused = [status for _, status, _, _ in existing.states if status in _NO]
    if refused:
        why = f"consent was {refused[0].value}; re-opting in needs a new affirmative act"
        _skip(run, row, SKIPPED_WITHDRAWN, why)
        return None
    own = [(status, confirmed) for t, status, confirmed, _ in existing.states if t == run.topic.id]
    for status, confirmed in own:
        if (
            status is ConsentStatus.ACTIVE and (confirmed or not run.topic.requires_double_opt_in)
        ) or (status is ConsentStatus.PENDING and run.action is ConsentAction.REQUESTED):
            why = f"consent to {run.topic.key} is already {status.value}"
            _skip(run, row, SKIPPED_ALREADY_CONSENTED, why)
            return None
    if (
        run.topic.category is Category.MARKETING
        and existing.adult_on is not None
        and run.now.date() < existing.adult_on
    ):
        why = "marketing consent cannot be taken from a person under the age threshold"
        _fail(run, row, channel_field, CONSENT_MINOR, why)
        return None
    return existing.contact_id


def _contact(run: ImportRun, row: ParsedRow, contact_id: uuid.UUID) -> Contact:
    return Contact(
        id=contact_id,
        tenant_id=run.tenant.id,
        name=row.name,
        email=row.email,
        phone=row.phone,
        phone_type=row.phone_type,
        whatsapp=row.whatsapp,
        country=row.country,
        time_zone=row.time_zone,
        locale=row.locale,
        external_ref=row.external_ref,
        created_at=run.now,
        updated_at=run.now,
    )


def _event(
    run: ImportRun, row: ParsedRow, contact_id: uuid.UUID, key: bytes
) -> tuple[ConsentEvent, EvidenceDigests]:
    base = run.evidence
    occurred_at = row.signup_at or run.now
    note = base.note
    if run.action is ConsentAction.REQUESTED:
        # The request for confirmation is made now, by the import: the confirmation window
        # counts from here. When the person signed up stays in the evidence.
        occurred_at = run.now
        if row.signup_at is not None:
            note = f"signed up at {row.signup_at.isoformat()}"
    evidence = Evidence(
        method=base.method,
        source=base.source,
        ip_address=base.ip_address if row.signup_ip is None else row.signup_ip,
        user_agent=base.user_agent,
        policy_document_id=base.policy_document_id,
        disclosure_hash=base.disclosure_hash,
        actor=base.actor,
        import_batch_id=base.import_batch_id,
        inbound_message_id=base.inbound_message_id,
        relationship=base.relationship,
        note=note,
    )
    event = ConsentEvent(
        id=new_id(),
        tenant_id=run.tenant.id,
        contact_id=contact_id,
        point_key=key,
        topic_id=run.topic.id,
        channel=run.record.channel,
        action=run.action,
        basis=ConsentBasis.EXPRESS,
        evidence=evidence,
        occurred_at=occurred_at,
        recorded_at=run.now,
    )
    digests = EvidenceDigests(
        source=run.source_digest,
        ip_address=run.uow.keys.digest(row.signup_ip),
        user_agent=None,
        note=run.uow.keys.digest(evidence.note),
    )
    return event, digests


def read_all(run: ImportRun, open_file: Opener, encoding: str, progress: Progress | None) -> None:
    record = run.record
    with open_file() as stream:
        header, rows = csv_rows(decoded_lines(stream, encoding, NO_LIMIT))
        columns = map_columns(header, record.mapping, record.channel)
        for column in columns.ignored:
            run.spool.add(
                RowIssue(1, column or None, EXTRA_COLUMN_IGNORED, Severity.NOTE,
                         f"column {neutralise_cell(column)!r} is not a known field and was "
                         "ignored", None)
            )  # fmt: skip
        # Keeping the good rows promises no atomicity, so each batch commits: the tenant's
        # ledger chain is locked for one batch at a time, and its opt-outs and consent writes
        # wait seconds, not the whole import. An atomic import holds it to the end.
        per_batch = record.keep_good_rows and not record.dry_run
        sealer = run.uow.import_rows.sealer(run.tenant.id)

        def next_batch() -> PreparedBatch | None:
            raw = list(itertools.islice(rows, BATCH_ROWS))
            return prepare_batch(run, sealer, columns, raw) if raw else None

        # The next batch is read, parsed and sealed on a second thread while this one is
        # written: the database works on the other core meanwhile. A file error in the next
        # batch surfaces only once this one is written, as it would reading in turn.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-rows") as reader:
            upcoming = reader.submit(next_batch)
            while (batch := upcoming.result()) is not None:
                upcoming = reader.submit(next_batch)
                write_batch(run, sealer, batch)
                run.done += batch.rows
                if per_batch:
                    run.uow.checkpoint()
                if progress is not None:
                    progress(run.done, record.rows_total)
