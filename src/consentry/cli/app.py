"""The root of the ``consentry`` command: setup, the gate, the ledger and the demo."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.table import Table

from consentry.bootstrap import Container, initialise
from consentry.cli.access import apikey_app, serve, user_app
from consentry.cli.consent import consent_app, dnc_app, suppress_app
from consentry.cli.context import State, console, err_console, handle_errors, state
from consentry.cli.delivery import (
    campaign_app,
    outbox,
    send,
    sender_app,
    template_app,
    worker,
)
from consentry.cli.forms import form_app
from consentry.cli.imports import import_contacts
from consentry.cli.keywords import keywords_app
from consentry.cli.notices import policy_notice, policy_notify
from consentry.cli.passes import pass_app
from consentry.cli.records import contact_app, policy_app, tenant_app, topic_app
from consentry.cli.signals import inbound_mail, inbound_smtp
from consentry.domain.errors import KeyUnavailable, LedgerTampered, UnknownValue
from consentry.domain.explain import Outcome
from consentry.domain.gate import Decision, Verdict
from consentry.domain.model import Channel
from consentry.persistence.crypto import rotate_master_key
from consentry.persistence.migrate import current_revision
from consentry.services import campaigns as campaign_service
from consentry.services import demo as demo_service
from consentry.services import gate as gate_service
from consentry.services.demo_campaign import seed_demo_campaign
from consentry.services.keys import rewrap_data_keys
from consentry.services.ledger import verify_ledger

app = typer.Typer(
    name="consentry",
    help="Permission-first customer messaging: consent ledger, suppressions and the gate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(tenant_app, name="tenant")
app.add_typer(topic_app, name="topic")
app.add_typer(policy_app, name="policy")
policy_app.command("notify")(policy_notify)
policy_app.command("notice")(policy_notice)
app.add_typer(contact_app, name="contact")
app.add_typer(consent_app, name="consent")
app.add_typer(suppress_app, name="suppress")
app.add_typer(dnc_app, name="dnc")
app.add_typer(user_app, name="user")
app.add_typer(apikey_app, name="apikey")
app.add_typer(sender_app, name="sender-domain")
app.add_typer(template_app, name="template")
app.add_typer(campaign_app, name="campaign")
app.add_typer(pass_app, name="pass")
app.add_typer(form_app, name="form")
app.add_typer(keywords_app, name="keywords")
app.command()(serve)
app.command()(send)
app.command()(outbox)
app.command()(worker)
app.command("inbound-smtp")(inbound_smtp)
app.command("inbound-mail")(inbound_mail)
app.command("import")(import_contacts)
keys_app = typer.Typer(help="Encryption keys for personal data.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None, help="Data directory (database, keys, outbox). Env: CONSENTRY_DATA_DIR."
    ),
    database_url: str | None = typer.Option(
        None, help="Database URL (SQLite or postgresql+psycopg). Env: CONSENTRY_DATABASE_URL."
    ),
) -> None:
    ctx.obj = State(data_dir, database_url)
    ctx.call_on_close(ctx.obj.close)


@app.command()
@handle_errors
def init(ctx: typer.Context) -> None:
    """Create the data directory and the key file (mode 0600), and migrate the database."""
    st = state(ctx)
    created = initialise(st.settings)
    container = st.container()
    where = "settings" if st.settings.master_key else str(st.settings.resolved_key_file)
    console.print(f"keys: {'created ' if created else ''}{where}")
    console.print(f"database: migrated to {current_revision(container.engine)}")


@app.command()
@handle_errors
def migrate(ctx: typer.Context) -> None:
    """Bring the database schema to the latest version."""
    container = state(ctx).container()
    console.print(f"database at revision {current_revision(container.engine)}")


@keys_app.command("rotate")
@handle_errors
def keys_rotate(ctx: typer.Context) -> None:
    """Add a new master key to the key file and re-wrap every tenant's data key under it."""
    st = state(ctx)
    if st.settings.master_key is not None:
        raise KeyUnavailable("keys come from CONSENTRY_MASTER_KEY; rotate them where they are kept")
    version = rotate_master_key(st.settings.resolved_key_file)
    count = rewrap_data_keys(st.container().uow())
    console.print(f"master key version {version} is active; {count} tenant data key(s) re-wrapped")


def _verdict_text(decision: Decision) -> str:
    if decision.verdict is Verdict.ALLOW:
        return "[green]allow[/]"
    if decision.verdict is Verdict.DEFER:
        until = decision.defer_until.isoformat(timespec="minutes") if decision.defer_until else ""
        return f"[yellow]defer[/] {' '.join(decision.reasons)} until {until}"
    return "[red]deny[/] " + " ".join(decision.reasons)


@app.command()
@handle_errors
def explain(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant slug."),
    contact: str = typer.Option(..., "--contact", "-c", help="Contact id, email or phone."),
    topic: str = typer.Option(..., "--topic", help="Topic key."),
    channel: Channel = typer.Option(..., "--channel", help="Channel."),
    free_form: bool = typer.Option(False, help="A free-form WhatsApp reply, not a template."),
    at: str | None = typer.Option(None, help="Decide as of this time (ISO 8601 with offset)."),
) -> None:
    """Why a message would or would not go: the decision, every rule checked, the evidence."""
    when = None
    if at:
        try:
            when = datetime.fromisoformat(at)
        except ValueError as exc:
            raise UnknownValue("time must be ISO 8601", field="at") from exc
        if when.tzinfo is None:
            raise UnknownValue("time must include a UTC offset", field="at")
    result = gate_service.explain_decision(
        state(ctx).container().read_uow(),
        tenant,
        contact,
        topic,
        channel,
        whatsapp_free_form=free_form,
        now=when,
    )
    ex = result.explanation
    console.print(
        f"[bold]{result.topic.name}[/] ({result.topic.category.value}) by "
        f"{channel.value} to contact {result.contact.id} at "
        f"{result.at.isoformat(timespec='seconds')} — rules: {ex.pack_code} pack"
    )
    console.print("decision: " + _verdict_text(ex.decision))
    table = Table("rule", "outcome", "detail", "reason", "source")
    styles = {Outcome.PASSED: "green", Outcome.FAILED: "red", Outcome.DEFERRED: "yellow"}
    for check in ex.checks:
        style = styles.get(check.outcome, "dim")
        table.add_row(
            check.rule,
            f"[{style}]{check.outcome.value}[/]",
            check.detail,
            check.reason or "",
            check.source or "",
        )
    console.print(table)
    if result.evidence is not None:
        e, ev = result.evidence, result.evidence.evidence
        console.print(
            f"governing consent event {e.id} (seq {e.seq}): {e.action.value} "
            f"{e.basis.value} on {e.occurred_at.isoformat(timespec='seconds')} by "
            f"{ev.method.value}"
            + (f" from {ev.source}" if ev.source else "")
            + (f", disclosure {ev.disclosure_hash}" if ev.disclosure_hash else "")
        )


@app.command()
@handle_errors
def audience(
    ctx: typer.Context,
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant slug."),
    topic: str = typer.Option(..., "--topic", help="Topic key."),
    channel: Channel = typer.Option(..., "--channel", help="Channel."),
) -> None:
    """Count who may receive a topic on a channel now, and why not the others (set-based)."""
    summary = gate_service.audience_summary(
        state(ctx).container().read_uow(), tenant, topic, channel
    )
    table = Table("reason", "contacts")
    for reason, count in sorted(summary.by_reason.items(), key=lambda kv: -kv[1]):
        table.add_row(reason, str(count))
    console.print(table)
    console.print(f"{summary.eligible} of {summary.total} contacts may receive it")


@app.command("verify-ledger")
@handle_errors
def verify_ledger_cmd(
    ctx: typer.Context,
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Only this tenant."),
) -> None:
    """Recompute the consent ledger's hash chains; name the first broken link."""
    reports = verify_ledger(state(ctx).container().read_uow(), tenant)
    broken = [r for r in reports if not r.intact]
    for r in reports:
        if r.intact:
            console.print(
                f"[green]ok[/] {r.tenant_slug}: {r.verified} events verified, "
                f"references and consent states match the ledger, "
                f"{r.audit_verified} audit entries verified"
            )
            continue
        if r.broken is not None:
            err_console.print(
                f"[red]BROKEN[/] {r.tenant_slug}: first broken link at seq {r.broken.seq} "
                f"(event {r.broken.record_id or '?'}): {r.broken.problem}; "
                f"{r.verified} events before it verify"
            )
        if r.audit_broken is not None:
            err_console.print(
                f"[red]BROKEN[/] {r.tenant_slug}: audit log broken at seq {r.audit_broken.seq}: "
                f"{r.audit_broken.problem}"
            )
        for problem in r.projection_mismatches[:20]:
            err_console.print(f"[red]STATE[/] {r.tenant_slug}: {problem}")
        for problem in r.dangling_references[:20]:
            err_console.print(f"[red]REFERENCE[/] {r.tenant_slug}: {problem}")
    if broken:
        raise LedgerTampered(f"{len(broken)} tenant ledger(s) failed verification")


def _cell_text(decision: Decision) -> str:
    if decision.verdict is Verdict.ALLOW:
        return "[green]allow[/]"
    if decision.verdict is Verdict.DEFER and decision.defer_until is not None:
        return f"[yellow]defer[/] until {decision.defer_until.strftime('%H:%M')} UTC"
    return "[red]" + "\n".join(decision.reasons) + "[/]"


@app.command()
@handle_errors
def demo(ctx: typer.Context) -> None:
    """Set up the demo car-repair shop and show who may receive what, and why not."""
    st = state(ctx)
    container = st.container(create_keys=True)
    created = demo_service.seed_demo(container.uow)
    console.print(
        f"data directory: {st.settings.data_dir.resolve()}"
        + ("" if created else " (demo already set up)")
    )
    cells = demo_service.demo_matrix(container.read_uow())
    table = Table(title="Harbour Street Auto Repair: who may receive what, now")
    table.add_column("contact", no_wrap=True)
    table.add_column("topic", no_wrap=True)
    for channel in demo_service.DEMO_CHANNELS:
        table.add_column(channel.value, overflow="fold")
    rows: dict[tuple[str, str], dict[Channel, str]] = {}
    for cell in cells:
        rows.setdefault((cell.contact, cell.topic), {})[cell.channel] = _cell_text(cell.decision)
    for (contact, topic), by_channel in rows.items():
        table.add_row(contact, topic, *[by_channel[c] for c in demo_service.DEMO_CHANNELS])
    console.print(table)
    console.print(
        "Ask why: consentry explain --tenant harbour-auto --contact bob@example.com "
        "--topic promotions --channel email"
    )
    _demo_campaign(container)


def _demo_campaign(container: Container) -> None:
    """Send the demo campaign into the captured outbox and show one message as sent."""
    from consentry.workers.inprocess import drain

    progress, launched = seed_demo_campaign(container.uow, container.composer().reviewer)
    if launched:
        drain(container, progress.campaign.id)
    done = campaign_service.campaign_progress(
        container.read_uow(), demo_service.DEMO_SLUG, str(progress.campaign.id)
    )
    counts = ", ".join(f"{n} {s}" for s, n in sorted(done.by_status.items()))
    console.print(f"\ncampaign {done.campaign.name}: {done.campaign.status} ({counts})")
    captured = [m for m in container.outbox().list(None, 50) if m.channel is Channel.EMAIL]
    table = Table(title="captured outbox: what left, kept here instead of sent")
    for column in ("id", "to", "subject"):
        table.add_column(column)
    for m in captured:
        table.add_row(str(m.id), m.recipient, m.summary)
    console.print(table)
    if captured:
        raw = container.outbox().get(captured[-1].id).raw.decode("utf-8", "replace")
        head = raw.split("\r\n\r\n", 1)[0].replace("\r\n ", " ")  # unfold
        shown = [h for h in head.split("\r\n") if h.split(":", 1)[0] in _SHOWN_HEADERS]
        console.print("[bold]compliance headers of one message:[/]")
        console.print("\n".join(shown), markup=False, highlight=False)
        console.print(f"whole message: consentry outbox --raw {captured[-1].id}")


_SHOWN_HEADERS = ("From", "To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post")


def main() -> None:
    app()
