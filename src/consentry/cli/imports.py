"""``consentry import``: an attested contact list into a topic, with a progress bar and report."""

from __future__ import annotations

import csv
import getpass
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import BinaryIO

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from consentry.bootstrap import Container
from consentry.cli.context import console, err_console, handle_errors, state
from consentry.domain.errors import UnknownValue
from consentry.domain.imports import Acquisition, Attestation, ImportStatus, OptInMethod
from consentry.domain.model import Channel
from consentry.services import import_confirmations as confirmations
from consentry.services import import_file
from consentry.services import imports as service
from consentry.services.import_batch import Opener
from consentry.services.import_report import report_rows

SHOWN_ISSUES = 20


def _mapping(maps: list[str], mapping_json: str | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if mapping_json:
        try:
            loaded = json.loads(mapping_json)
        except json.JSONDecodeError as exc:
            raise UnknownValue("--mapping must be a JSON object", field="mapping") from exc
        if not isinstance(loaded, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in loaded.items()
        ):
            raise UnknownValue("--mapping maps field names to column names", field="mapping")
        mapping.update(loaded)
    for item in maps:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise UnknownValue("--map takes FIELD=COLUMN, e.g. email='E-mail'", field="map")
        mapping[field.strip()] = column.strip()
    return mapping


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise UnknownValue(f"{field} must be a date like 2026-03-31", field=field) from exc


def _opener(path: Path) -> Opener:
    @contextmanager
    def open_() -> Iterator[BinaryIO]:
        with path.open("rb") as stream:
            yield stream

    return open_


@handle_errors
def import_contacts(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="The CSV file."),
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant slug."),
    topic: str = typer.Option(..., help="Topic key the people opted in to."),
    channel: Channel = typer.Option(..., help="email, sms or whatsapp."),
    source: str = typer.Option(..., help="Where the list comes from (how it was collected)."),
    opt_in_method: OptInMethod = typer.Option(..., help="How people opted in."),
    collected_from: str = typer.Option(..., help="First day of collection (YYYY-MM-DD)."),
    collected_to: str = typer.Option(..., help="Last day of collection (YYYY-MM-DD)."),
    website: str | None = typer.Option(None, help="The website or place of collection."),
    disclosure: str | None = typer.Option(None, help="Id of the published disclosure people saw."),
    disclosure_file: Path | None = typer.Option(
        None, exists=True, dir_okay=False, help="Or: a file with the disclosure text they saw."
    ),
    acquisition: Acquisition = typer.Option(
        Acquisition.COLLECTED, help="How you got the list; only 'collected' can be imported."
    ),
    attest: bool = typer.Option(
        False, "--attest", help="Attest that the list was not bought, rented, traded or appended."
    ),
    attested_by: str | None = typer.Option(None, help="Who attests (default: the OS user)."),
    maps: list[str] = typer.Option([], "--map", help="FIELD=COLUMN; repeatable."),
    mapping: str | None = typer.Option(None, help='JSON: {"email": "E-mail", ...}.'),
    require: list[str] = typer.Option(
        [], help="Per-row evidence every row must have: signup_at, signup_ip; repeatable."
    ),
    encoding: str = typer.Option("utf-8", help="The file's text encoding."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Check and report; write nothing."),
    keep_good_rows: bool = typer.Option(
        False, "--keep-good-rows", help="Import the good rows even if others have errors."
    ),
    report: Path | None = typer.Option(None, help="Write the full row-level report here (CSV)."),
) -> None:
    """Import an attested list of people who opted in (atomic unless --keep-good-rows)."""
    _import(
        ctx, file, tenant,
        service.ImportSpec(
            topic=topic,
            channel=channel,
            attestation=Attestation(
                source=source,
                opt_in_method=opt_in_method,
                collected_from=_date(collected_from, "collected_from"),
                collected_to=_date(collected_to, "collected_to"),
                acquisition=acquisition,
                attested=attest,
                attested_by=attested_by or f"cli:{getpass.getuser()}",
                website=website,
                disclosure_document_id=_uuid(disclosure),
                disclosure_text=(
                    disclosure_file.read_text(encoding="utf-8") if disclosure_file else None
                ),
            ),
            file_name=file.name,
            mapping=_mapping(maps, mapping),
            required=tuple(require),
            dry_run=dry_run,
            keep_good_rows=keep_good_rows,
            encoding=encoding,
        ),
        report,
    )  # fmt: skip


def _uuid(value: str | None) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise UnknownValue("--disclosure must be an id", field="disclosure") from exc


def _progress() -> Progress:
    return Progress(
        TextColumn("importing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )


def _import(
    ctx: typer.Context, file: Path, tenant: str, spec: service.ImportSpec, report: Path | None
) -> None:
    container = state(ctx).container()
    with file.open("rb") as stream:
        scanned = import_file.scan(
            stream,
            channel=spec.channel,
            mapping=spec.mapping,
            encoding=spec.encoding,
            max_bytes=container.settings.import_max_bytes,
        )
    with _progress() as bar:
        task = bar.add_task("import", total=scanned.rows)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        if spec.dry_run:
            outcome = service.preview_import(
                container.uow, tenant, spec, scanned, _opener(file), progress=advance
            )
        else:
            record = service.start_import(container.uow(), tenant, spec, scanned)
            outcome = service.run_import(
                container.uow, tenant, record.id, _opener(file), encoding=spec.encoding,
                progress=advance,
            )  # fmt: skip
    try:
        _show(outcome, scanned, report)
    finally:
        outcome.close()
    if outcome.status in {ImportStatus.REJECTED, ImportStatus.FAILED}:
        raise typer.Exit(code=1)
    if outcome.record is not None and outcome.confirmation_required and outcome.counts.pending:
        send_confirmations(container, tenant, outcome.record.id, outcome.counts.pending)


def send_confirmations(c: Container, tenant: str, import_id: uuid.UUID, total: int | None) -> None:
    """Send an import's confirmation requests with a progress bar, and say how it went."""
    with _progress() as bar, c.sender() as send:
        task = bar.add_task("confirmations", total=total)
        done = confirmations.send_import_confirmations(
            c.uow, c.confirmation_tokens(), c.confirmation_config(), send, tenant, import_id,
            progress=lambda n: bar.update(task, completed=n), new_read_uow=c.read_uow,
        )  # fmt: skip
    console.print(f"confirmation requests sent: {done.sent:,}")
    console.print(f"not sent (no longer pending, or blocked): {done.refused:,}")
    if done.failed:
        err_console.print(
            f"failed: {done.failed:,}; send them again with: consentry consent "
            f"send-confirmations -t {tenant} --import {import_id}"
        )


def _show(
    outcome: service.ImportOutcome, scanned: import_file.ScannedFile, report: Path | None
) -> None:
    counts = outcome.counts
    record = outcome.record
    if record is not None:
        console.print(f"import {record.id}")
    console.print(f"file sha256 {scanned.sha256} ({scanned.size:,} bytes, {scanned.rows:,} rows)")
    table = Table("rows", "imported", "pending", "new contacts", "skipped", "errors")
    table.add_row(
        f"{counts.rows:,}", f"{counts.imported:,}", f"{counts.pending:,}",
        f"{counts.contacts_created:,}", f"{counts.skipped:,}", f"{counts.errors:,}",
    )  # fmt: skip
    console.print(table)
    shown = Table("line", "field", "code", "severity", "message")
    for n, issue in enumerate(outcome.issues):
        if n == SHOWN_ISSUES:
            break
        shown.add_row(
            str(issue.line), issue.field or "", issue.code, issue.severity.value,
            escape(issue.message),
        )  # fmt: skip
    if shown.row_count:
        console.print(shown)
    if report is not None:
        with report.open("w", newline="", encoding="utf-8") as out:
            csv.writer(out).writerows(report_rows(outcome.issues))
        console.print(f"report written to {report}")
    status = outcome.status
    if status is ImportStatus.DRY_RUN:
        console.print("dry run: nothing was written")
    elif status is ImportStatus.REJECTED:
        err_console.print(
            f"nothing was imported: {counts.errors:,} row(s) have errors; fix them, or import "
            "the good rows with --keep-good-rows"
        )
    elif status is ImportStatus.FAILED and outcome.error is not None:
        err_console.print(f"error [{outcome.error.code}] {escape(outcome.error.message)}")
    if outcome.confirmation_required and counts.pending:
        console.print(
            f"{counts.pending:,} consent(s) are pending: the topic requires confirmed opt-in; "
            "each gets a confirmation request and counts once confirmed."
        )
