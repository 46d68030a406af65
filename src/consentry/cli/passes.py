"""``consentry pass``: permission passes (create, status, list, end)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.table import Table

from consentry.cli.context import console, handle_errors, state
from consentry.domain.model import Channel
from consentry.services import pass_end
from consentry.services import passes as service
from consentry.services.passes import PassView

pass_app = typer.Typer(
    help="Permission passes: ask a list or an import to reconfirm by a deadline.",
    no_args_is_help=True,
)
TenantOpt = typer.Option(..., "--tenant", "-t", help="Tenant slug.")


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _report_table(view: PassView) -> Table:
    p, r = view.permission_pass, view.report
    table = Table(title=f"{p.name} ({p.id}): {p.status}, deadline {p.deadline.isoformat()}")
    table.add_column("")
    table.add_column("count", justify="right")
    rows = [
        ("targeted", r.targeted),
        ("messages sent", r.sent),
        ("messages waiting", r.waiting),
        ("messages failed", r.failed),
        ("messages cancelled", r.cancelled),
        *((f"refused: {reason}", n) for reason, n in r.refused.items()),
        ("renewed", r.renewed),
        ("lapsed", r.lapsed),
        ("other (withdrew meanwhile, ...)", r.other),
        ("awaiting an answer", r.awaiting),
    ]
    for label, n in rows:
        table.add_row(label, str(n))
    return table


@pass_app.command("create")
@handle_errors
def pass_create(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    topic: str = typer.Option(..., help="Topic key."),
    channel: Channel = typer.Option(Channel.EMAIL, help="email or sms."),
    deadline: datetime = typer.Option(..., help="Lapse who has not reconfirmed by then (UTC)."),
    list_name: str | None = typer.Option(None, "--list", help="The list (name or id)."),
    import_id: uuid.UUID | None = typer.Option(None, "--import", help="Or the import batch id."),
    name: str | None = typer.Option(None, help="A name for the pass."),
    subject: str | None = typer.Option(None, help="Email subject (Jinja2)."),
    text_file: Path | None = typer.Option(
        None, help="Message text (Jinja2) with {{ data.reconfirm_url }}; default: a plain ask."
    ),
    disclosure: uuid.UUID | None = typer.Option(
        None, help="Published disclosure shown; default: the latest consent disclosure."
    ),
) -> None:
    """Choose the members, plan the reconfirmation messages and queue them (sent by
    ``consentry worker``)."""
    container = state(ctx).container()
    spec = service.PassInput(
        topic=topic,
        channel=channel,
        deadline=_aware(deadline),
        list=list_name,
        import_id=import_id,
        name=name,
        subject=subject,
        text=text_file.read_text(encoding="utf-8") if text_file else None,
        disclosure_id=disclosure,
    )
    view = service.create_pass(container.uow(), tenant, spec, "cli", container.composer().reviewer)
    console.print(f"permission pass {view.permission_pass.id}")
    console.print(_report_table(view))
    if container.settings.broker_url:
        from consentry.workers.celery_app import enqueue_dispatch

        enqueue_dispatch(container.settings, view.permission_pass.campaign_id)
        console.print("queued for the workers")
    else:
        console.print("the messages are sent by `consentry worker`")


@pass_app.command("status")
@handle_errors
def pass_status(
    ctx: typer.Context,
    pass_id: uuid.UUID = typer.Argument(..., help="Pass id."),
    tenant: str = TenantOpt,
) -> None:
    """The report: messages sent and refused by reason, members renewed, lapsed, other."""
    console.print(
        _report_table(service.get_pass(state(ctx).container().read_uow(), tenant, pass_id))
    )


@pass_app.command("list")
@handle_errors
def pass_list(ctx: typer.Context, tenant: str = TenantOpt) -> None:
    """The tenant's passes, newest first."""
    table = Table(title="permission passes")
    for column in ("id", "name", "topic", "status", "deadline", "targeted", "renewed", "lapsed"):
        table.add_column(column)
    for v in service.list_passes(state(ctx).container().read_uow(), tenant):
        p, r = v.permission_pass, v.report
        table.add_row(str(p.id), p.name, v.topic_key, p.status, p.deadline.isoformat(),
                      str(r.targeted), str(r.renewed), str(r.lapsed))  # fmt: skip
    console.print(table)


@pass_app.command("end")
@handle_errors
def pass_end_cmd(
    ctx: typer.Context,
    pass_id: uuid.UUID | None = typer.Argument(None, help="One pass (with --tenant)."),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Tenant slug."),
) -> None:
    """End passes whose deadline has passed: who did not renew lapses. Without an id, every
    due pass of every tenant (what the workers do hourly)."""
    container = state(ctx).container()
    if pass_id is not None:
        if tenant is None:
            raise typer.BadParameter("--tenant is needed with a pass id")
        lapsed = pass_end.end_pass(container.uow(), tenant, pass_id)
        console.print(f"ended {pass_id}: {lapsed} lapsed")
        console.print(_report_table(service.get_pass(container.read_uow(), tenant, pass_id)))
        return
    ended = pass_end.end_due_passes(container.uow())
    for ended_id, lapsed in ended.items():
        console.print(f"ended {ended_id}: {lapsed} lapsed")
    console.print(f"{len(ended)} pass(es) ended")
