"""``consentry policy notify`` and ``consentry policy notice``: policy-change notices."""

from __future__ import annotations

import uuid

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from consentry.cli.context import console, handle_errors, state
from consentry.domain.model import Channel
from consentry.services import notices as service
from consentry.services.notices import NoticeView

TenantOpt = typer.Option(..., "--tenant", "-t", help="Tenant slug.")


def _report_table(view: NoticeView) -> Table:
    n, d, r = view.notice, view.document, view.report
    table = Table(
        title=f"notice {n.id}: {d.kind.value} v{d.version} by {n.channel.value}, {n.status.value}"
    )
    table.add_column("")
    table.add_column("count", justify="right")
    rows = [
        ("targeted", r.targeted),
        ("waiting", r.waiting),
        ("sent", r.sent),
        *((f"refused: {reason}", count) for reason, count in r.refused.items()),
        *((f"failed: {code}", count) for code, count in r.failed.items()),
        ("accepted", r.accepted),
    ]
    for label, count in rows:
        table.add_row(label, str(count))
    return table


@handle_errors
def policy_notify(
    ctx: typer.Context,
    document_id: uuid.UUID = typer.Argument(..., help="The new version (published, > 1)."),
    tenant: str = TenantOpt,
    channel: Channel = typer.Option(Channel.EMAIL, help="email or sms."),
    ask_acceptance: bool = typer.Option(
        False, "--ask-acceptance", help='Add a link to an "I accept" page.'
    ),
) -> None:
    """Tell every contact point the new version concerns that it changed (a service message),
    and send the notices now (with a broker, the workers send them)."""
    container = state(ctx).container()
    view = service.create_notice(
        container.uow(), tenant, document_id, channel, "cli", ask_acceptance=ask_acceptance
    )
    notice_id = view.notice.id
    console.print(f"policy notice {notice_id}: {view.report.targeted} contact point(s) concerned")
    if container.settings.broker_url:
        from consentry.workers.celery_app import enqueue_notices

        enqueue_notices(container.settings)
        console.print("queued for the workers")
        return
    sender = container.notice_sender()
    try:
        sender.reap()
        columns = (TextColumn("sending"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("notices", total=view.report.targeted)
            sender.run_until_idle(notice_id, lambda b: bar.advance(task, b.claimed))
    finally:
        sender.close()
    console.print(_report_table(service.get_notice(container.read_uow(), tenant, notice_id)))


@handle_errors
def policy_notice(
    ctx: typer.Context,
    notice_id: uuid.UUID = typer.Argument(..., help="Notice id."),
    tenant: str = TenantOpt,
) -> None:
    """A notice's report: targeted, sent, refused and failed by reason, accepted."""
    view = service.get_notice(state(ctx).container().read_uow(), tenant, notice_id)
    console.print(_report_table(view))
