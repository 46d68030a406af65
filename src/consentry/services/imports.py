"""Use cases for imports of attested contact lists.

An import is checked before anything is written (``scan``: hash, size, encoding, header; then
the attestation), recorded (``start_import``), and run (``run_import``) in one transaction: rows
are read in batches, looked up set-based (existing contacts, their consent, suppressions), and
written in bulk: new contacts sealed and indexed, consent events chained onto the ledger in file
order, states folded from them. Rows with errors leave the whole import unwritten unless the
importer asked to keep the good rows; a dry run always rolls back. The row-level report is
spooled to a temporary file while the import runs, so memory stays flat in the file's size, and
stored with the import's outcome.

An import never reactivates a "no": a suppressed contact point, or one whose consent to the
topic (or its umbrella) was withdrawn, lapsed or voided, is skipped. Into a topic that requires
confirmed opt-in, imported consent is recorded as ``requested`` (pending); once the import has
committed, each pending address is sent its confirmation request (import_confirmations.py).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentMethod,
    Evidence,
    validate_evidence,
)
from consentry.domain.errors import ConsentryError, DisclosureMismatch, UnknownValue
from consentry.domain.ids import new_id
from consentry.domain.imports import (
    ADDRESS_FIELD,
    EVIDENCE_FIELDS,
    Attestation,
    ImportCounts,
    ImportRecord,
    ImportStatus,
    RowIssue,
    check_attestation,
)
from consentry.domain.model import (
    Channel,
    PolicyDocument,
    PolicyKind,
    PolicyStatus,
    Tenant,
    Topic,
    content_hash,
)
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.import_batch import ImportRun, Opener, Progress, read_all
from consentry.services.import_file import ScannedFile
from consentry.services.import_report import IssueSpool, report_rows
from consentry.services.import_rows import RowRules
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


@dataclass(frozen=True, slots=True)
class ImportSpec:
    """What the importer asks for, besides the file."""

    topic: str
    channel: Channel
    attestation: Attestation
    file_name: str
    mapping: dict[str, str] = field(default_factory=dict)
    required: tuple[str, ...] = ()
    dry_run: bool = False
    keep_good_rows: bool = False
    encoding: str = "utf-8"


@dataclass
class ImportOutcome:
    """How an import ended. ``issues`` (the spooled report) is readable until ``close()``."""

    record: ImportRecord | None
    status: ImportStatus
    counts: ImportCounts
    issues: IssueSpool
    confirmation_required: bool
    error: ConsentryError | None = None

    def close(self) -> None:
        self.issues.close()


def _validate_spec(spec: ImportSpec, today: datetime) -> None:
    if spec.channel not in ADDRESS_FIELD:
        raise UnknownValue("imports take email, sms or whatsapp", field="channel")
    for name in spec.required:
        if name not in EVIDENCE_FIELDS:
            raise UnknownValue(
                f"only {', '.join(EVIDENCE_FIELDS)} can be required on every row",
                field="require",
            )
    check_attestation(spec.attestation, today.date())


def _disclosure(uow: UnitOfWork, tenant: Tenant, attestation: Attestation) -> None:
    if attestation.disclosure_document_id is None:
        return
    document = uow.policies.get(tenant.id, attestation.disclosure_document_id)
    if document.status is not PolicyStatus.PUBLISHED:
        raise DisclosureMismatch(
            "an import may only cite a published disclosure", field="disclosure"
        )


def start_import(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    spec: ImportSpec,
    scanned: ScannedFile,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> ImportRecord:
    """Check the attestation and record the import, queued, with its file hash; commits.
    Refuses (writing nothing) a bought, rented, traded or appended list."""
    now = now or utcnow()
    _validate_spec(spec, now)
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        topic = uow.topics.by_key(tenant.id, spec.topic)
        _disclosure(uow, tenant, spec.attestation)
        record = _record(spec, tenant, topic, scanned, now=now, status=ImportStatus.QUEUED)
        uow.imports.add(record)
        audit(uow, context, tenant.id, "import.create", "import", record.id)
        uow.commit()
    return record


def _record(
    spec: ImportSpec,
    tenant: Tenant,
    topic: Topic,
    scanned: ScannedFile,
    *,
    now: datetime,
    status: ImportStatus,
) -> ImportRecord:
    return ImportRecord(
        id=new_id(),
        tenant_id=tenant.id,
        topic_id=topic.id,
        topic_key=topic.key,
        channel=spec.channel,
        status=status,
        dry_run=spec.dry_run,
        keep_good_rows=spec.keep_good_rows,
        file_name=spec.file_name,
        file_sha256=scanned.sha256,
        file_bytes=scanned.size,
        rows_total=scanned.rows,
        attestation=spec.attestation,
        created_at=now,
        mapping=dict(spec.mapping),
        required=spec.required,
        disclosure_document_id=spec.attestation.disclosure_document_id,
        confirmation_required=topic.requires_double_opt_in,
    )


def run_import(
    new_uow: Callable[[], UnitOfWork],
    tenant_ref: TenantRef,
    import_id: uuid.UUID,
    open_file: Opener,
    *,
    encoding: str = "utf-8",
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportOutcome:
    """Run a recorded import; commits its rows (unless rejected or a dry run) together with its
    outcome, else rolls them back and stores only the outcome and report."""
    now = now or utcnow()
    with new_uow() as uow:
        tenant = find_tenant(uow, tenant_ref)
        record = uow.imports.get(tenant.id, import_id)
        uow.imports.finish(
            import_id, status=ImportStatus.RUNNING, counts=ImportCounts(), rows_done=0, at=None
        )
        uow.commit()
    try:
        return _execute(
            new_uow, tenant_ref, record, open_file, encoding=encoding, progress=progress, now=now
        )
    except Exception:
        # Not a refusal but a crash (the database went away): the record must not stay
        # "running" for ever. An atomic import's rows were rolled back with its transaction;
        # one keeping its good rows keeps the batches committed before the crash.
        kept = record.keep_good_rows and not record.dry_run
        detail = (
            "the import stopped on an internal error; the batches written before it stay, and "
            "importing the file again skips their rows"
            if kept
            else "the import stopped on an internal error; nothing was written"
        )
        with new_uow() as uow:
            uow.imports.finish(
                import_id,
                status=ImportStatus.FAILED,
                counts=ImportCounts(),
                rows_done=0,
                at=utcnow(),
                error=("IMPORT_FAILED", detail),
            )
            uow.commit()
        raise


def preview_import(
    new_uow: Callable[[], UnitOfWork],
    tenant_ref: TenantRef,
    spec: ImportSpec,
    scanned: ScannedFile,
    open_file: Opener,
    *,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportOutcome:
    """A dry run that stores nothing at all, not even the import record: the report only."""
    now = now or utcnow()
    _validate_spec(spec, now)
    with new_uow() as uow:
        tenant = find_tenant(uow, tenant_ref)
        topic = uow.topics.by_key(tenant.id, spec.topic)
        _disclosure(uow, tenant, spec.attestation)
        record = _record(spec, tenant, topic, scanned, now=now, status=ImportStatus.QUEUED)
    record = replace(record, dry_run=True)
    return _execute(
        new_uow,
        tenant_ref,
        record,
        open_file,
        encoding=spec.encoding,
        progress=progress,
        now=now,
        store=False,
    )


def _execute(
    new_uow: Callable[[], UnitOfWork],
    tenant_ref: TenantRef,
    record: ImportRecord,
    open_file: Opener,
    *,
    encoding: str,
    progress: Progress | None,
    now: datetime,
    store: bool = True,
) -> ImportOutcome:
    spool = IssueSpool()
    run: ImportRun | None = None
    failure: ConsentryError | None = None
    with new_uow() as uow:
        try:
            run = _prepare(uow, tenant_ref, record, spool, now)
            read_all(run, open_file, encoding, progress)
        except ConsentryError as exc:
            failure = exc
        except BaseException:
            spool.close()
            raise
        assert run is not None or failure is not None  # noqa: S101  (one of the two is set)
        counts = run.counts() if run is not None else ImportCounts()
        done = run.done if run is not None else 0
        if failure is not None:
            status = ImportStatus.FAILED
        elif record.dry_run:
            status = ImportStatus.DRY_RUN
        elif counts.errors and not record.keep_good_rows:
            status = ImportStatus.REJECTED
        else:
            status = ImportStatus.COMPLETED
        if status is ImportStatus.COMPLETED and run is not None:
            uow.imports.add_issues(record.tenant_id, record.id, spool)
            uow.imports.finish(
                record.id, status=status, counts=counts, rows_done=done, at=utcnow(),
                disclosure_document_id=run.evidence.policy_document_id,
            )  # fmt: skip
            uow.commit()
    if status is not ImportStatus.COMPLETED and store:
        with new_uow() as uow:
            uow.imports.add_issues(record.tenant_id, record.id, spool)
            uow.imports.finish(
                record.id, status=status, counts=counts, rows_done=done, at=utcnow(),
                error=None if failure is None else (failure.code, failure.message),
            )  # fmt: skip
            uow.commit()
    if failure is not None and not store:
        spool.close()
        raise failure
    return ImportOutcome(
        replace(record, status=status, counts=counts, rows_done=done) if store else None,
        status, counts, spool, record.confirmation_required, failure,
    )  # fmt: skip


def _prepare(
    uow: UnitOfWork, tenant_ref: TenantRef, record: ImportRecord, spool: IssueSpool, now: datetime
) -> ImportRun:
    tenant = find_tenant(uow, tenant_ref)
    topic = uow.topics.get(tenant.id, record.topic_id)
    topic_ids = [topic.id]
    if not topic.umbrella:
        topic_ids.append(uow.topics.by_key(tenant.id, topic.umbrella_key()).id)
    attestation = record.attestation
    document = _cited_disclosure(uow, tenant, record, now)
    evidence = Evidence(
        method=ConsentMethod.IMPORT,
        source=attestation.website or attestation.source,
        policy_document_id=document.id,
        disclosure_hash=document.content_hash,
        actor=f"import:{record.id}",
        import_batch_id=record.id,
    )
    action = ConsentAction.REQUESTED if topic.requires_double_opt_in else ConsentAction.GRANTED
    validate_evidence(action, ConsentBasis.EXPRESS, evidence)
    rules = RowRules(
        channel=record.channel,
        tenant_country=tenant.country,
        collected_from=attestation.collected_from,
        collected_to=attestation.collected_to,
        required=record.required,
        now=now,
    )
    return ImportRun(
        uow, tenant, topic, topic_ids, record, rules, evidence,
        uow.keys.digest(evidence.source), action, spool, now,
        uow.import_rows.sealing_keys(tenant.id),
    )  # fmt: skip


def _cited_disclosure(
    uow: UnitOfWork, tenant: Tenant, record: ImportRecord, now: datetime
) -> PolicyDocument:
    """The published disclosure the evidence cites: the one named, or the text the importer
    gave, kept as the next published version of the tenant's consent disclosure."""
    attestation = record.attestation
    if attestation.disclosure_document_id is not None:
        document = uow.policies.get(tenant.id, attestation.disclosure_document_id)
        if document.status is not PolicyStatus.PUBLISHED:
            raise DisclosureMismatch(
                "an import may only cite a published disclosure", field="disclosure"
            )
        return document
    body = (attestation.disclosure_text or "").strip()
    kind = PolicyKind.CONSENT_DISCLOSURE
    document = PolicyDocument(
        id=new_id(),
        tenant_id=tenant.id,
        kind=kind,
        version=uow.policies.latest_version(tenant.id, kind) + 1,
        title=f"Disclosure shown for the list of import {record.id}",
        body=body,
        locale="en",
        content_hash=content_hash(body),
        status=PolicyStatus.DRAFT,
        created_at=now,
    )
    uow.policies.add(document)
    return uow.policies.publish(tenant.id, document.id, now)


def get_import(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    import_id: uuid.UUID,
    *,
    after: int = 0,
    limit: int = 100,
    context: RequestContext | None = None,
) -> tuple[ImportRecord, list[tuple[int, RowIssue]]]:
    """An import's record and one page of its report; an API read is audited."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        record = uow.imports.get(tenant.id, import_id)
        issues = list(uow.imports.issues(tenant.id, import_id, after, limit))
        if context is not None:
            audit(uow, context, tenant.id, "import.read", "import", import_id)
            uow.commit()
        return record, issues


def export_report(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    import_id: uuid.UUID,
    *,
    context: RequestContext | None = None,
) -> Iterator[list[str]]:
    """Every row of a stored report as CSV rows (see ``report_rows``), streamed; an API read
    is audited before the first row."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        uow.imports.get(tenant.id, import_id)
        if context is not None:
            audit(uow, context, tenant.id, "import.report", "import", import_id)
            uow.commit()
        yield from report_rows(issue for _, issue in uow.imports.issues(tenant.id, import_id))
