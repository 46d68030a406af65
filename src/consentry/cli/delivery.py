"""Commands for sending: sender domains, templates, campaigns, messages, the outbox, workers."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from consentry.bootstrap import Container
from consentry.cli.context import console, handle_errors, state
from consentry.domain.campaigns import AudienceFilter, CampaignProgress
from consentry.domain.errors import UnknownValue
from consentry.domain.model import Channel
from consentry.services import campaigns as campaign_service
from consentry.services import messages as message_service
from consentry.services.dispatch import BatchReport

sender_app = typer.Typer(help="Domains a tenant sends email from.", no_args_is_help=True)
template_app = typer.Typer(help="Message templates per topic and channel.", no_args_is_help=True)
campaign_app = typer.Typer(help="Campaigns: plan, simulate, send.", no_args_is_help=True)

TenantOpt = typer.Option(..., "--tenant", "-t", help="Tenant slug.")


def _text(value: str | None, file: Path | None) -> str | None:
    return file.read_text(encoding="utf-8") if file is not None else value


@sender_app.command("add")
@handle_errors
def sender_add(
    ctx: typer.Context,
    domain: str = typer.Argument(..., help="e.g. mail.example.com"),
    tenant: str = TenantOpt,
    dkim_selector: str | None = typer.Option(None, help="Generate a DKIM key with this selector."),
) -> None:
    """Register a sending domain; with --dkim-selector, print the DNS record to publish."""
    registered = message_service.register_sender_domain(
        state(ctx).container().uow(), tenant, domain, dkim_selector=dkim_selector
    )
    console.print(f"registered {registered.domain.domain}")
    if registered.dkim_dns_name:
        console.print(f"publish TXT {registered.dkim_dns_name}:")
        # One unbroken line: it is copied into a DNS zone.
        console.print(registered.dkim_dns_record, soft_wrap=True, markup=False, highlight=False)


@template_app.command("create")
@handle_errors
def template_create(
    ctx: typer.Context,
    name: str = typer.Option(...),
    tenant: str = TenantOpt,
    topic: str = typer.Option(..., help="Topic key."),
    channel: Channel = typer.Option(...),
    subject: str | None = typer.Option(None, help="Email subject (Jinja2)."),
    text: str | None = typer.Option(None, help="Text body (Jinja2)."),
    text_file: Path | None = typer.Option(None, help="Read the text body from a file."),
    html_file: Path | None = typer.Option(None, help="Read the HTML body from a file."),
    whatsapp_template: str | None = typer.Option(None, help="Approved WhatsApp template name."),
    parameter: list[str] = typer.Option([], help="WhatsApp template parameter (repeat)."),
) -> None:
    """Create a template; it must render with what its channel needs."""
    body = _text(text, text_file)
    if body is None and whatsapp_template is None:
        raise UnknownValue("give --text or --text-file", field="text")
    created = message_service.create_template(
        state(ctx).container().uow(),
        tenant,
        message_service.TemplateInput(
            name=name,
            topic=topic,
            channel=channel,
            text=body or "",
            subject=subject,
            html=_text(None, html_file),
            whatsapp_template=whatsapp_template,
            whatsapp_parameters=tuple(parameter),
        ),
    )
    console.print(f"template {created.name} ({created.id})")


@template_app.command("preview")
@handle_errors
def template_preview(
    ctx: typer.Context,
    name: str = typer.Argument(...),
    tenant: str = TenantOpt,
    contact: str | None = typer.Option(None, help="Render as this contact (else a sample)."),
) -> None:
    """Show a template as a recipient gets it, with SMS segments and review findings."""
    container = state(ctx).container()
    preview = message_service.preview_template(
        container.read_uow(), tenant, name, container.composer(), contact_ref=contact
    )
    if preview.subject is not None:
        console.print(f"[bold]Subject:[/] {preview.subject}")
    console.print(preview.text, markup=False, highlight=False)
    if preview.sms is not None:
        sms = preview.sms
        console.print(f"SMS: {sms.encoding}, {sms.units} units, {sms.segments} segment(s)")
    for finding in preview.findings:
        colour = "red" if finding.severity == "error" else "yellow"
        console.print(f"[{colour}]{finding.severity} {finding.code}[/]: {finding.message}")


def _progress_table(progress: CampaignProgress) -> Table:
    c = progress.campaign
    table = Table(title=f"{c.name}: {c.status}")
    table.add_column("status")
    table.add_column("deliveries", justify="right")
    for status, n in sorted(progress.by_status.items()):
        table.add_row(status, str(n))
    table.add_row("[bold]total", f"[bold]{progress.total}")
    return table


@campaign_app.command("create")
@handle_errors
def campaign_create(
    ctx: typer.Context,
    name: str = typer.Option(...),
    tenant: str = TenantOpt,
    topic: str = typer.Option(...),
    template: str = typer.Option(..., help="Template name or id."),
    list_name: str | None = typer.Option(None, "--list", help="Only the members of this list."),
    country: list[str] = typer.Option([], help="Only contacts in this country (repeat)."),
    locale: list[str] = typer.Option([], help="Only contacts with this locale (repeat)."),
    from_address: str | None = typer.Option(None, help="From address on a sender domain."),
    frequency_cap: str | None = typer.Option(None, help="e.g. 3/24h per contact."),
    at: datetime | None = typer.Option(None, help="Send at (UTC) instead of at launch."),
) -> None:
    """Create a draft campaign."""
    fields = {k: tuple(v) for k, v in (("country", country), ("locale", locale)) if v}
    created = campaign_service.create_campaign(
        state(ctx).container().uow(),
        tenant,
        campaign_service.CampaignInput(
            name=name,
            topic=topic,
            template=template,
            list=list_name,
            audience=AudienceFilter(fields),
            from_address=from_address,
            frequency_cap=frequency_cap,
            scheduled_at=None if at is None else at.astimezone(),
        ),
        actor="cli",
    )
    console.print(f"campaign {created.name} ({created.id}) created as a draft")


@campaign_app.command("simulate")
@handle_errors
def campaign_simulate(ctx: typer.Context, campaign: str, tenant: str = TenantOpt) -> None:
    """Who would receive it now, by reason, with refused examples; writes nothing."""
    sim = campaign_service.simulate_campaign(state(ctx).container().read_uow(), tenant, campaign)
    table = Table(title=f"{sim.eligible} of {sim.total} would receive it")
    table.add_column("reason")
    table.add_column("recipients", justify="right")
    for reason, n in sorted(sim.by_reason.items(), key=lambda kv: -kv[1]):
        table.add_row(reason, str(n))
    console.print(table)
    for sample in sim.refused_sample:
        console.print(f"  {sample.contact_id}: {', '.join(sample.reasons)}")


def _send_with_progress(container: Container, campaign_id: object, total: int) -> BatchReport:
    from consentry.workers.inprocess import drain

    with Progress(TextColumn("sending"), BarColumn(), MofNCompleteColumn(), console=console) as bar:
        task = bar.add_task("sending", total=total)
        return drain(container, campaign_id, lambda r: bar.advance(task, r.claimed))  # type: ignore[arg-type]


@campaign_app.command("launch")
@handle_errors
def campaign_launch(
    ctx: typer.Context,
    campaign: str,
    tenant: str = TenantOpt,
    wait: bool = typer.Option(True, help="Without a broker, send now with a progress bar."),
) -> None:
    """Review the content, plan every delivery and start sending."""
    container = state(ctx).container()
    progress = campaign_service.launch_campaign(
        container.uow(), tenant, campaign, container.composer().reviewer
    )
    console.print(_progress_table(progress))
    _dispatch(container, progress, wait=wait)


def _dispatch(container: Container, progress: CampaignProgress, *, wait: bool) -> None:
    cid = progress.campaign.id
    if container.settings.broker_url:
        from consentry.workers.celery_app import enqueue_dispatch

        enqueue_dispatch(container.settings, cid)
        console.print("queued for the workers")
    elif wait and progress.campaign.status.value == "running":
        _send_with_progress(container, cid, progress.by_status.get("queued", 0))
        done = campaign_service.campaign_progress(
            container.read_uow(), progress.campaign.tenant_id, str(cid)
        )
        console.print(_progress_table(done))


@campaign_app.command("status")
@handle_errors
def campaign_status(ctx: typer.Context, campaign: str, tenant: str = TenantOpt) -> None:
    """Deliveries by status."""
    progress = campaign_service.campaign_progress(
        state(ctx).container().read_uow(), tenant, campaign
    )
    console.print(_progress_table(progress))


def _change(ctx: typer.Context, campaign: str, tenant: str, action: str) -> None:
    container = state(ctx).container()
    progress = campaign_service.change_campaign(container.uow(), tenant, campaign, action)
    console.print(_progress_table(progress))
    if action == "resume":
        _dispatch(container, progress, wait=True)


@campaign_app.command("pause")
@handle_errors
def campaign_pause(ctx: typer.Context, campaign: str, tenant: str = TenantOpt) -> None:
    """Stop claiming new deliveries (messages in flight finish)."""
    _change(ctx, campaign, tenant, "pause")


@campaign_app.command("resume")
@handle_errors
def campaign_resume(ctx: typer.Context, campaign: str, tenant: str = TenantOpt) -> None:
    """Continue a paused campaign."""
    _change(ctx, campaign, tenant, "resume")


@campaign_app.command("cancel")
@handle_errors
def campaign_cancel(ctx: typer.Context, campaign: str, tenant: str = TenantOpt) -> None:
    """Cancel every delivery that has not left yet."""
    _change(ctx, campaign, tenant, "cancel")


@handle_errors
def send(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    contact: str = typer.Option(..., help="Contact id, email or phone."),
    template: str = typer.Option(..., help="A service topic's template."),
    data: str = typer.Option("{}", help="JSON object of template data."),
    idempotency_key: str | None = typer.Option(None, help="Send once per key."),
) -> None:
    """Send one service message (dispatched now when no broker is configured)."""
    try:
        values = json.loads(data)
    except json.JSONDecodeError as exc:
        raise UnknownValue("--data must be a JSON object", field="data") from exc
    if not isinstance(values, dict):
        raise UnknownValue("--data must be a JSON object", field="data")
    container = state(ctx).container()
    sent = message_service.send_message(
        container.uow(),
        tenant,
        message_service.MessageRequest(contact, template, values, idempotency_key),
    )
    if sent.created and sent.delivery.status.value == "queued":
        if container.settings.broker_url:
            from consentry.workers.celery_app import enqueue_dispatch

            enqueue_dispatch(container.settings, None, parallel=1)
        else:
            from consentry.workers.inprocess import drain

            drain(container)
    delivery = message_service.get_message(container.read_uow(), tenant, sent.delivery.id)
    reasons = f" ({', '.join(delivery.reasons)})" if delivery.reasons else ""
    console.print(f"message {delivery.id}: {delivery.status}{reasons}")


@handle_errors
def outbox(
    ctx: typer.Context,
    raw: int | None = typer.Option(None, "--raw", help="Print this message exactly as sent."),
    limit: int = typer.Option(20, min=1, max=1000),
) -> None:
    """Messages the capture channel kept (the embedded default's "sent mail")."""
    store = state(ctx).container().outbox()
    if raw is not None:
        sys.stdout.buffer.write(store.get(raw).raw)
        sys.stdout.flush()
        return
    table = Table(title="captured outbox (newest first)")
    for column in ("id", "delivery", "channel", "to", "subject / text", "captured"):
        table.add_column(column)
    for m in store.list(None, limit):
        table.add_row(str(m.id), str(m.delivery_id), m.channel.value, m.recipient, m.summary,
                      m.captured_at.strftime("%Y-%m-%d %H:%M:%S"))  # fmt: skip
    console.print(table)


@handle_errors
def worker(
    ctx: typer.Context,
    once: bool = typer.Option(False, help="Send what is due now, then exit."),
    concurrency: int = typer.Option(2, min=1, help="Celery worker processes."),
) -> None:
    """Send deliveries: a Celery worker when CONSENTRY_BROKER_URL is set, else in-process."""
    container = state(ctx).container()
    if container.settings.broker_url and not once:
        from consentry.workers.celery_app import make_celery

        app = make_celery(container.settings)
        app.worker_main(["worker", "--loglevel=INFO", f"--concurrency={concurrency}", "--beat"])
        return
    from consentry.workers.inprocess import drain, run_forever, send_notices

    if once:
        report = drain(container)
        console.print(f"claimed {report.claimed}: {report.sent} sent, {report.refused} refused, "
                      f"{report.deferred} deferred, {report.failed} failed")  # fmt: skip
        notices = send_notices(container)
        if notices.claimed:
            console.print(f"policy notices: {notices.sent} sent, {notices.refused} refused, "
                          f"{notices.failed} failed")  # fmt: skip
        return
    run_forever(container)
