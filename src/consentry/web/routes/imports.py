"""/v1/imports: upload an attested contact list; follow its progress; read its report.

``POST /v1/imports`` takes ``multipart/form-data`` (a ``file`` part with the CSV and a ``spec``
part with the JSON below), or ``application/json`` with the CSV text in ``csv`` (small lists:
the API body limit applies). The upload streams to a temporary file under
``CONSENTRY_IMPORT_MAX_BYTES``; it is scanned (hash, encoding, header) and the attestation
checked before anything is stored, then the import runs in the background: 202 with its id.
"""

from __future__ import annotations

import csv
import io
import itertools
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, BackgroundTasks, Depends, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.datastructures import UploadFile

from consentry.bootstrap import Container
from consentry.domain.access import Scope
from consentry.domain.errors import UnknownValue
from consentry.domain.imports import (
    Acquisition,
    Attestation,
    ImportRecord,
    ImportStatus,
    OptInMethod,
    RowIssue,
)
from consentry.domain.model import Channel
from consentry.services import import_confirmations as confirmations
from consentry.services import import_file
from consentry.services import imports as service
from consentry.services.audit import RequestContext
from consentry.services.import_batch import Opener
from consentry.web.deps import ContainerDep, TenantDep
from consentry.web.schemas import Strict
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1/imports", tags=["imports"])
Reader = Annotated[RequestContext, Depends(needs(Scope.CONSENT_READ))]
Writer = Annotated[RequestContext, Depends(needs(Scope.CONSENT_WRITE))]
_COPY_CHUNK = 1 << 20


class ImportIn(Strict):
    """The import and the importer's attestation about the list."""

    topic: str = Field(description="Topic key the people opted in to.")
    channel: Channel = Field(description="email, sms or whatsapp.")
    source: str = Field(min_length=1, max_length=500, description="Where the list comes from.")
    opt_in_method: OptInMethod
    collected_from: date
    collected_to: date
    website: str | None = Field(default=None, max_length=500)
    disclosure_id: uuid.UUID | None = Field(
        default=None, description="The published disclosure shown (or give its text)."
    )
    disclosure_text: str | None = Field(default=None, max_length=20_000)
    acquisition: Acquisition = Acquisition.COLLECTED
    attest: bool = Field(
        default=False, description="The list was not bought, rented, traded or appended."
    )
    mapping: dict[str, str] = Field(default_factory=dict, description="field -> column name")
    require: list[str] = Field(default_factory=list, description="signup_at, signup_ip")
    dry_run: bool = False
    keep_good_rows: bool = False
    encoding: str = "utf-8"
    file_name: str = Field(default="upload.csv", max_length=300)

    def to_spec(self, actor: str, file_name: str | None = None) -> service.ImportSpec:
        return service.ImportSpec(
            topic=self.topic,
            channel=self.channel,
            attestation=Attestation(
                source=self.source,
                opt_in_method=self.opt_in_method,
                collected_from=self.collected_from,
                collected_to=self.collected_to,
                acquisition=self.acquisition,
                attested=self.attest,
                attested_by=actor,
                website=self.website,
                disclosure_document_id=self.disclosure_id,
                disclosure_text=self.disclosure_text,
            ),
            file_name=file_name or self.file_name,
            mapping=self.mapping,
            required=tuple(self.require),
            dry_run=self.dry_run,
            keep_good_rows=self.keep_good_rows,
            encoding=self.encoding,
        )


class ImportJsonIn(ImportIn):
    csv: str = Field(description="The CSV text, header first.")


class IssueOut(BaseModel):
    line: int
    field: str | None
    code: str
    severity: str
    message: str

    @classmethod
    def of(cls, issue: RowIssue) -> IssueOut:
        return cls(
            line=issue.line,
            field=issue.field,
            code=issue.code,
            severity=issue.severity.value,
            message=issue.message,
        )


class ImportOut(BaseModel):
    id: uuid.UUID
    status: str
    topic: str
    channel: str
    dry_run: bool
    keep_good_rows: bool
    file: dict[str, Any]
    progress: dict[str, int]
    counts: dict[str, int]
    attestation: dict[str, Any]
    confirmation_required: bool
    note: str | None = None
    error: dict[str, str] | None = None
    issues: list[IssueOut] = Field(default_factory=list)
    next_after: int | None = None

    @classmethod
    def of(
        cls,
        record: ImportRecord,
        issues: list[tuple[int, RowIssue]] = (),  # type: ignore[assignment]
        limit: int = 0,
        done: int | None = None,
    ) -> ImportOut:
        a = record.attestation
        counts = record.counts
        note = None
        if record.confirmation_required:
            note = (
                "the topic requires confirmed opt-in: imported consent is pending (requested) "
                "until confirmed; each pending address is sent a confirmation request once the "
                "import has completed (counts.confirmations_sent)"
            )
        return cls(
            id=record.id,
            status=record.status.value,
            topic=record.topic_key,
            channel=record.channel.value,
            dry_run=record.dry_run,
            keep_good_rows=record.keep_good_rows,
            file={"name": record.file_name, "sha256": record.file_sha256,
                  "bytes": record.file_bytes},
            progress={"rows_done": record.rows_done if done is None else done,
                      "rows_total": record.rows_total},
            counts={"rows": counts.rows, "imported": counts.imported, "pending": counts.pending,
                    "contacts_created": counts.contacts_created, "skipped": counts.skipped,
                    "errors": counts.errors, "confirmations_sent": counts.confirmations_sent},
            attestation={
                "source": a.source, "opt_in_method": a.opt_in_method.value,
                "collected_from": a.collected_from.isoformat(),
                "collected_to": a.collected_to.isoformat(), "website": a.website,
                "acquisition": a.acquisition.value, "attested": a.attested,
                "attested_by": a.attested_by,
                "disclosure_id": None if record.disclosure_document_id is None
                else str(record.disclosure_document_id),
                "disclosure_text_kept": a.disclosure_text is not None,
            },
            confirmation_required=record.confirmation_required,
            note=note,
            error=None if record.error_code is None
            else {"code": record.error_code, "detail": record.error_detail or ""},
            issues=[IssueOut.of(i) for _, i in issues],
            next_after=issues[-1][0] if issues and len(issues) == limit else None,
        )  # fmt: skip


class _Progress:
    """Rows done of the imports this process runs (their transaction is not visible yet)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done: dict[uuid.UUID, int] = {}

    def set(self, import_id: uuid.UUID, done: int) -> None:
        with self._lock:
            self._done[import_id] = done

    def pop(self, import_id: uuid.UUID) -> None:
        with self._lock:
            self._done.pop(import_id, None)

    def get(self, import_id: uuid.UUID) -> int | None:
        with self._lock:
            return self._done.get(import_id)


def _progress(request: Request) -> _Progress:
    found = getattr(request.app.state, "import_progress", None)
    if not isinstance(found, _Progress):
        found = request.app.state.import_progress = _Progress()
    return found


async def _upload(request: Request) -> tuple[ImportIn, Path]:
    """The spec and the uploaded CSV, copied to a temporary file that the caller removes."""
    content_type = request.headers.get("content-type", "")
    target = Path(tempfile.mkstemp(prefix="consentry-import-", suffix=".csv")[1])
    try:
        if content_type.startswith("multipart/form-data"):
            async with request.form(max_files=1, max_fields=5) as form:
                upload, spec_text = _parts(form.get("file"), form.get("spec"))
                spec = _parse(ImportIn, spec_text)
                if upload.filename:
                    spec.file_name = Path(upload.filename).name[:300]
                await run_in_threadpool(_copy, upload.file, target)
            return spec, target
        body = await request.body()
        json_spec = _parse(ImportJsonIn, body.decode("utf-8", "replace"))
        target.write_text(json_spec.csv, encoding="utf-8")
        return ImportIn(**json_spec.model_dump(exclude={"csv"})), target
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _parts(upload: object, spec: object) -> tuple[UploadFile, str]:
    if not isinstance(upload, UploadFile) or not isinstance(spec, str):
        raise UnknownValue("send a 'file' part (the CSV) and a 'spec' part (JSON)", field="file")
    return upload, spec


def _parse(model: type[ImportIn], text: str) -> Any:
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise UnknownValue(f"spec: {where}: {first.get('msg', 'invalid')}", field=where) from exc


def _copy(source: BinaryIO, target: Path) -> None:
    with target.open("wb") as out:
        shutil.copyfileobj(source, out, _COPY_CHUNK)


def _opener(path: Path) -> Opener:
    @contextmanager
    def open_() -> Iterator[BinaryIO]:
        with path.open("rb") as stream:
            yield stream

    return open_


def _start(
    c: Container, tenant: uuid.UUID, spec: service.ImportSpec, path: Path, context: RequestContext
) -> ImportRecord:
    with path.open("rb") as stream:
        scanned = import_file.scan(
            stream, channel=spec.channel, mapping=spec.mapping, encoding=spec.encoding,
            max_bytes=c.settings.import_max_bytes,
        )  # fmt: skip
    return service.start_import(c.uow(), tenant, spec, scanned, context=context)


def _run(
    c: Container,
    tenant: uuid.UUID,
    record: ImportRecord,
    *,
    path: Path,
    encoding: str,
    progress: _Progress,
) -> None:
    try:
        outcome = service.run_import(
            c.uow, tenant, record.id, _opener(path), encoding=encoding,
            progress=lambda done, _total: progress.set(record.id, done),
        )  # fmt: skip
        outcome.close()
    finally:
        progress.pop(record.id)
        path.unlink(missing_ok=True)
    if outcome.confirmation_required and outcome.counts.pending:
        with c.sender() as send:
            confirmations.send_import_confirmations(
                c.uow,
                c.confirmation_tokens(),
                c.confirmation_config(),
                send,
                tenant,
                record.id,
                new_read_uow=c.read_uow,
            )


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportOut,
    summary="Upload an attested contact list; it is checked, then imported in the background",
)
async def create(
    request: Request,
    background: BackgroundTasks,
    c: ContainerDep,
    context: Writer,
    tenant: TenantDep,
) -> ImportOut:
    body, path = await _upload(request)
    try:
        spec = body.to_spec(context.principal.actor)
        record = await run_in_threadpool(_start, c, tenant, spec, path, context)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    background.add_task(
        _run, c, tenant, record, path=path, encoding=spec.encoding, progress=_progress(request)
    )
    return ImportOut.of(record)


@router.get("/{import_id}", response_model=ImportOut, summary="An import's progress and report")
def read(
    import_id: uuid.UUID,
    *,
    request: Request,
    c: ContainerDep,
    context: Reader,
    tenant: TenantDep,
    after: Annotated[int, Query(ge=0, description="next_after of the previous page")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ImportOut:
    record, issues = service.get_import(
        c.uow(), tenant, import_id, after=after, limit=limit, context=context
    )
    done = _progress(request).get(import_id) if record.status is ImportStatus.RUNNING else None
    return ImportOut.of(record, issues, limit, done)


@router.get(
    "/{import_id}/report.csv",
    summary="The whole row-level report as CSV (cells that look like formulas are escaped)",
    response_class=StreamingResponse,
)
def report(
    import_id: uuid.UUID, c: ContainerDep, context: Reader, tenant: TenantDep
) -> StreamingResponse:
    rows = service.export_report(c.uow(), tenant, import_id, context=context)

    def lines() -> Iterator[str]:
        for row in rows:
            buffer = io.StringIO()
            csv.writer(buffer).writerow(row)
            yield buffer.getvalue()

    stream = lines()
    first = next(stream)  # the header; reading it checks that the import exists
    return StreamingResponse(
        itertools.chain([first], stream), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{import_id}-report.csv"'},
    )  # fmt: skip
