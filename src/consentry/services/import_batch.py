"""One batch of import rows: looked up set-based, then written in bulk in file order."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

from consentry.domain.consent import ConsentAction, ConsentStatus, Evidence
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
from consentry.domain.model import Category, Tenant, Topic
from consentry.services.import_file import RawRow, csv_rows, decoded_lines, map_columns
from consentry.services.import_report import IssueSpool
from consentry.services.import_rows import (
    Duplicate,
    ExistingConsent,
    ParsedRow,
    PreparedBatch,
    ReadyRow,
    RowContext,
    RowRules,
    parse_row,
    row_event,
)
from consentry.services.ports import ImportLookup, SealingKeys, UnitOfWork

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
    keys: SealingKeys
    ctx: RowContext = field(init=False)  # set once the header is read
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


def _skip(run: ImportRun, row: ReadyRow, code: str, message: str) -> None:
    field = ADDRESS_FIELD[run.record.channel]
    run.spool.add(RowIssue(row.line, field, code, Severity.SKIPPED, message))
    run.skipped_rows += 1


def _fail(run: ImportRun, row: ReadyRow, fld: str, code: str, message: str) -> None:
    value = {"email": row.email}.get(fld, row.address)
    run.spool.add(RowIssue(row.line, fld, code, Severity.ERROR, message, value))
    run.error_rows += 1


def write_batch(run: ImportRun, batch: PreparedBatch) -> None:
    uow, record, tenant = run.uow, run.record, run.tenant
    for item in batch.early:
        if isinstance(item, Duplicate):
            field = ADDRESS_FIELD[record.channel]
            run.spool.add(
                RowIssue(item.line, field, DUPLICATE_IN_FILE, Severity.SKIPPED,
                         f"the same address as line {item.first_line}")
            )  # fmt: skip
            run.skipped_rows += 1
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
    items: list[Any] = []
    new_emails: set[bytes] = set()
    raw_by_line: dict[int, RawRow] | None = None
    for ready in batch.ready:
        owner = _contact_for(run, found, ready, new_emails=new_emails)
        if owner is None:
            continue
        if isinstance(owner, _New):
            items.append(ready.payload)
            continue
        # The contact point exists: its consent goes to the contact that has it, prepared
        # again here for that contact (rare in a large import, and never in a helper).
        if raw_by_line is None:
            raw_by_line = {r.line: r for r in batch.raw}
        parsed = parse_row(raw_by_line[ready.line], run.ctx.columns, run.ctx.rules)
        if not isinstance(parsed, ParsedRow):  # it parsed when prepared
            raise TypeError(f"line {ready.line} no longer parses")
        items.append(ExistingConsent(*row_event(run.ctx, run.keys, parsed, owner, ready.key)))
    written = uow.import_rows.write(tenant.id, items)
    run.created += written.contacts
    run.imported += written.events
    if run.action is ConsentAction.REQUESTED:
        run.pending += written.events


class _New:
    """The row's own new contact (``_contact_for``)."""


_NEW = _New()


def _contact_for(
    run: ImportRun, found: ImportLookup, ready: ReadyRow, *, new_emails: set[bytes]
) -> uuid.UUID | _New | None:
    """The existing contact the row's consent belongs to, ``_NEW`` for the row's own new
    contact, or None when the row is skipped or refused (reported here)."""
    key, email_key = ready.key, ready.email_key
    channel_field = ADDRESS_FIELD[run.record.channel]
    reason = found.suppressed.get(key)
    if reason is not None:
        why = f"the address is suppressed ({reason}); an import never lifts a suppression"
        _skip(run, ready, SKIPPED_SUPPRESSED, why)
        return None
    existing = found.existing.get(key)
    if existing is None:
        if email_key is not None and (email_key in found.email_owners or email_key in new_emails):
            why = f"another contact has this email address and a different {channel_field}"
            _fail(run, ready, "email", EMAIL_TAKEN, why)
            return None
        if email_key is not None:
            new_emails.add(email_key)
        return _NEW
    if any(this_import for _, _, _, this_import in existing.states):
        _skip(run, ready, DUPLICATE_IN_FILE, "the same address as an earlier row of this file")
        return None
    refused = [status for _, status, _, _ in existing.states if status in _NO]
    if refused:
        why = f"consent was {refused[0].value}; re-opting in needs a new affirmative act"
        _skip(run, ready, SKIPPED_WITHDRAWN, why)
        return None
    own = [(status, confirmed) for t, status, confirmed, _ in existing.states if t == run.topic.id]
    for status, confirmed in own:
        if (
            status is ConsentStatus.ACTIVE and (confirmed or not run.topic.requires_double_opt_in)
        ) or (status is ConsentStatus.PENDING and run.action is ConsentAction.REQUESTED):
            why = f"consent to {run.topic.key} is already {status.value}"
            _skip(run, ready, SKIPPED_ALREADY_CONSENTED, why)
            return None
    if (
        run.topic.category is Category.MARKETING
        and existing.adult_on is not None
        and run.now.date() < existing.adult_on
    ):
        why = "marketing consent cannot be taken from a person under the age threshold"
        _fail(run, ready, channel_field, CONSENT_MINOR, why)
        return None
    return existing.contact_id


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
        run.ctx = RowContext(
            tenant_id=run.tenant.id, topic_id=run.topic.id, channel=record.channel,
            action=run.action, evidence=run.evidence, source_digest=run.source_digest,
            rules=run.rules, columns=columns, now=run.now,
        )  # fmt: skip

        # The store's preparer parses, indexes and seals the rows (for a large import on
        # PostgreSQL, in a helper process that also encodes them for COPY), and the next batch
        # is prepared on a second thread while this one is written: the database, and the
        # helper, work on the other core meanwhile. A file error in the next batch surfaces
        # only once this one is written, as it would reading in turn.
        def raw_batches() -> Iterator[list[RawRow]]:
            while raw := list(itertools.islice(rows, BATCH_ROWS)):
                yield raw

        with run.uow.import_rows.preparer(run.ctx, run.keys, rows=record.rows_total) as preparer:
            prepared = preparer.batches(raw_batches())
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="import-rows") as reader:
                upcoming = reader.submit(next, prepared, None)
                while (batch := upcoming.result()) is not None:
                    upcoming = reader.submit(next, prepared, None)
                    write_batch(run, batch)
                    run.done += batch.rows
                    if per_batch:
                        run.uow.checkpoint()
                    if progress is not None:
                        progress(run.done, record.rows_total)
