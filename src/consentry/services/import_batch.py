"""One batch of import rows: looked up set-based, then written in bulk in file order."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
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
from consentry.services.import_file import csv_rows, decoded_lines, map_columns
from consentry.services.import_report import IssueSpool
from consentry.services.import_rows import ParsedRow, RowRules, parse_row
from consentry.services.ports import ImportLookup, UnitOfWork

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


def write_batch(run: ImportRun, parsed: list[ParsedRow | list[RowIssue]]) -> None:
    uow, record, tenant = run.uow, run.record, run.tenant
    kind = POINT_KIND[record.channel]
    index = uow.keys.blind_index
    good: list[tuple[ParsedRow, bytes, bytes | None]] = []
    seen: dict[bytes, int] = {}
    for row in parsed:
        if isinstance(row, list):
            for issue in row:
                run.spool.add(issue)
            run.error_rows += 1
            continue
        key = index(kind, point_index_value(kind, row.address))
        if key in seen:
            _skip(run, row, DUPLICATE_IN_FILE, f"the same address as line {seen[key]}")
            continue
        seen[key] = row.line
        email_key = (
            None if row.email is None
            else index(PointKind.EMAIL, point_index_value(PointKind.EMAIL, row.email))
        )  # fmt: skip
        good.append((row, key, email_key))
    found = uow.import_rows.lookup(
        tenant.id,
        record.channel,
        topic_ids=run.topic_ids,
        point_keys=[k for _, k, _ in good],
        email_keys=[e for _, _, e in good if e is not None],
        import_id=record.id,
    )
    new_contacts: list[Contact] = []
    events: list[tuple[ConsentEvent, EvidenceDigests]] = []
    existing_ids: set[uuid.UUID] = set()
    new_emails: set[bytes] = set()
    for row, key, email_key in good:
        contact_id = _contact_for(
            run, found, row, key=key, email_key=email_key, new_emails=new_emails
        )
        if contact_id is None:
            continue
        existing = found.existing.get(key)
        if existing is not None and existing.contact_id == contact_id:
            existing_ids.add(contact_id)
        else:
            new_contacts.append(_contact(run, row, contact_id))
        events.append(_event(run, row, contact_id, key))
    uow.import_rows.add_contacts(new_contacts)
    chained = uow.ledger.append_many(events)
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
    run: ImportRun,
    found: ImportLookup,
    row: ParsedRow,
    *,
    key: bytes,
    email_key: bytes | None,
    new_emails: set[bytes],
) -> uuid.UUID | None:
    """The contact the row's consent belongs to (an existing one, or a new id), or None when
    the row is skipped or refused (reported here)."""
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
        return new_id()
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
    evidence = run.evidence
    if row.signup_ip is not None:
        evidence = replace(evidence, ip_address=row.signup_ip)
    occurred_at = row.signup_at or run.now
    if run.action is ConsentAction.REQUESTED:
        # The request for confirmation is made now, by the import: the confirmation window
        # counts from here. When the person signed up stays in the evidence.
        occurred_at = run.now
        if row.signup_at is not None:
            evidence = replace(evidence, note=f"signed up at {row.signup_at.isoformat()}")
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
        while batch := list(itertools.islice(rows, BATCH_ROWS)):
            write_batch(run, [parse_row(raw, columns, run.rules) for raw in batch])
            run.done += len(batch)
            if per_batch:
                run.uow.checkpoint()
            if progress is not None:
                progress(run.done, record.rows_total)
