"""Commands for the consent ledger, suppressions and do-not-contact registries."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import typer
from rich.table import Table

from consentry.cli import imports as imports_cli
from consentry.cli.context import console, handle_errors, state
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentMethod,
    Evidence,
    Relationship,
)
from consentry.domain.errors import UnknownValue
from consentry.domain.model import Channel
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.services import confirmations as confirmation_service
from consentry.services import confirming
from consentry.services import consent as consent_service
from consentry.services import suppressions as suppression_service

consent_app = typer.Typer(help="Record and inspect consent.", no_args_is_help=True)
suppress_app = typer.Typer(help="Block addresses from receiving messages.", no_args_is_help=True)
dnc_app = typer.Typer(help="Do-not-contact registries.", no_args_is_help=True)

TenantOpt = typer.Option(..., "--tenant", "-t", help="Tenant slug.")


def _required_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as exc:
        raise UnknownValue(f"{field} must be an id", field=field) from exc


def _uuid(value: str | None, field: str) -> uuid.UUID | None:
    return None if value is None else _required_uuid(value, field)


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise UnknownValue("time must be ISO 8601", field="at") from exc
    if parsed.tzinfo is None:
        raise UnknownValue("time must include a UTC offset", field="at")
    return parsed


def _record(
    ctx: typer.Context,
    action: ConsentAction,
    tenant: str,
    contact: str,
    topic: str,
    channel: Channel,
    basis: ConsentBasis,
    evidence: Evidence,
    at: str | None,
) -> None:
    c = state(ctx).container()
    done = confirmation_service.request_consent(
        c.uow(),
        c.confirmers(),
        tenant,
        consent_service.ConsentRequest(
            contact=contact,
            topic=topic,
            channel=channel,
            action=action,
            basis=basis,
            evidence=evidence,
            occurred_at=_when(at),
        ),
    )
    recorded = done.recorded
    e = recorded.event
    console.print(
        f"{e.action.value} recorded: event {e.id} (seq {e.seq}); "
        f"{topic} by {channel.value} is now {recorded.state.status.value}"
    )
    if done.sent:
        console.print(f"confirmation request sent by {channel.value}")


def _evidence(
    method: ConsentMethod,
    source: str | None,
    ip: str | None,
    user_agent: str | None,
    disclosure: str | None,
    actor: str | None,
    note: str | None,
    relationship: Relationship | None,
    inbound_id: str | None,
    import_batch: str | None,
) -> Evidence:
    return Evidence(
        method=method,
        source=source,
        ip_address=ip,
        user_agent=user_agent,
        policy_document_id=_uuid(disclosure, "disclosure"),
        actor=actor,
        note=note,
        relationship=relationship,
        inbound_message_id=inbound_id,
        import_batch_id=_uuid(import_batch, "import_batch"),
    )


ContactOpt = typer.Option(..., "--contact", "-c", help="Contact id, email or phone.")
TopicOpt = typer.Option(..., "--topic", help="Topic key (or all-marketing / all-service).")
ChannelOpt = typer.Option(..., "--channel", help="email, sms, whatsapp, voice or post.")
MethodOpt = typer.Option(ConsentMethod.API, help="How consent was given.")
SourceOpt = typer.Option(None, help="Form URL, file or place.")
IpOpt = typer.Option(None, "--ip", help="IP address of the person.")
UaOpt = typer.Option(None, help="User agent of the person.")
DisclosureOpt = typer.Option(None, help="Id of the published disclosure shown.")
ActorOpt = typer.Option(None, help="Who recorded it (operator, system).")
NoteOpt = typer.Option(None, help="Free text, e.g. where a paper form is filed.")
InboundOpt = typer.Option(None, help="Id of the inbound message (keyword).")
AtOpt = typer.Option(None, help="When it happened (ISO 8601 with offset); default now.")


@consent_app.command("grant")
@handle_errors
def grant(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    contact: str = ContactOpt,
    topic: str = TopicOpt,
    channel: Channel = ChannelOpt,
    basis: ConsentBasis = typer.Option(ConsentBasis.EXPRESS, help="Legal basis."),
    method: ConsentMethod = MethodOpt,
    source: str | None = SourceOpt,
    ip: str | None = IpOpt,
    user_agent: str | None = UaOpt,
    disclosure: str | None = DisclosureOpt,
    actor: str | None = ActorOpt,
    note: str | None = NoteOpt,
    relationship: Relationship | None = typer.Option(None, help="For implied consent."),
    inbound_id: str | None = InboundOpt,
    import_batch: str | None = typer.Option(None, help="Import batch id."),
    requested: bool = typer.Option(False, help="Record a request awaiting confirmation."),
    at: str | None = AtOpt,
) -> None:
    """Record consent with its evidence (appends to the ledger)."""
    action = ConsentAction.REQUESTED if requested else ConsentAction.GRANTED
    evidence = _evidence(
        method,
        source,
        ip,
        user_agent,
        disclosure,
        actor,
        note,
        relationship,
        inbound_id,
        import_batch,
    )
    _record(ctx, action, tenant, contact, topic, channel, basis, evidence, at)


@consent_app.command("confirm")
@handle_errors
def confirm(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    contact: str = ContactOpt,
    topic: str = TopicOpt,
    channel: Channel = ChannelOpt,
    method: ConsentMethod = MethodOpt,
    source: str | None = SourceOpt,
    ip: str | None = IpOpt,
    user_agent: str | None = UaOpt,
    actor: str | None = ActorOpt,
    note: str | None = NoteOpt,
    inbound_id: str | None = InboundOpt,
    at: str | None = AtOpt,
) -> None:
    """Record the confirmation of a double opt-in."""
    evidence = _evidence(method, source, ip, user_agent, None, actor, note, None, inbound_id, None)
    _record(
        ctx,
        ConsentAction.CONFIRMED,
        tenant,
        contact,
        topic,
        channel,
        ConsentBasis.DOUBLE_OPT_IN,
        evidence,
        at,
    )


@consent_app.command("lapse-pending")
@handle_errors
def lapse_pending(ctx: typer.Context) -> None:
    """Lapse every confirmation request older than CONSENTRY_CONFIRMATION_LIFETIME_DAYS."""
    c = state(ctx).container()
    lifetime = timedelta(days=c.settings.confirmation_lifetime_days)
    count = confirming.lapse_pending(c.uow(), lifetime=lifetime)
    console.print(f"{count} pending request(s) lapsed")


@consent_app.command("send-confirmations")
@handle_errors
def send_confirmations(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    import_id: str = typer.Option(..., "--import", help="The import to send them for."),
) -> None:
    """Send (again) the confirmation requests of an import's consents still pending."""
    try:
        parsed = uuid.UUID(import_id)
    except ValueError:
        raise UnknownValue("--import takes an import id", field="import") from None
    c = state(ctx).container()
    imports_cli.send_confirmations(c, tenant, parsed, None)


@consent_app.command("withdraw")
@handle_errors
def withdraw(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    contact: str = ContactOpt,
    topic: str = TopicOpt,
    channel: Channel = ChannelOpt,
    method: ConsentMethod = MethodOpt,
    source: str | None = SourceOpt,
    ip: str | None = IpOpt,
    user_agent: str | None = UaOpt,
    actor: str | None = ActorOpt,
    note: str | None = NoteOpt,
    inbound_id: str | None = InboundOpt,
    at: str | None = AtOpt,
) -> None:
    """Record a withdrawal; it takes effect for every message not yet sent."""
    evidence = _evidence(method, source, ip, user_agent, None, actor, note, None, inbound_id, None)
    _record(
        ctx,
        ConsentAction.WITHDRAWN,
        tenant,
        contact,
        topic,
        channel,
        ConsentBasis.EXPRESS,
        evidence,
        at,
    )


@consent_app.command("history")
@handle_errors
def history(ctx: typer.Context, tenant: str = TenantOpt, contact: str = ContactOpt) -> None:
    """Every consent event of a contact with its evidence, oldest first."""
    entries = consent_service.consent_history(state(ctx).container().read_uow(), tenant, contact)
    table = Table("seq", "when", "topic", "channel", "action", "basis", "evidence")
    for entry in entries:
        e, ev = entry.event, entry.event.evidence
        parts = [ev.method.value]
        for label, value in (
            ("source", ev.source),
            ("ip", ev.ip_address),
            ("ua", ev.user_agent),
            ("disclosure", ev.disclosure_hash),
            ("actor", ev.actor),
            ("note", ev.note),
            ("inbound", ev.inbound_message_id),
            ("relationship", ev.relationship.value if ev.relationship else None),
            ("expires", e.expires_at.isoformat() if e.expires_at else None),
        ):
            if value:
                parts.append(f"{label}={value}")
        table.add_row(
            str(e.seq),
            e.occurred_at.isoformat(timespec="seconds"),
            entry.topic_key,
            e.channel.value,
            e.action.value,
            e.basis.value,
            "\n".join(parts),
        )
    console.print(table if entries else "no consent events")


@suppress_app.command("add")
@handle_errors
def suppress_add(
    ctx: typer.Context,
    address: str = typer.Argument(..., help="Email address, phone number or postal address."),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Tenant slug."),
    platform: bool = typer.Option(False, help="Suppress for every tenant."),
    channel: list[Channel] = typer.Option(..., "--channel", help="Channel(s) to block."),
    reason: SuppressionReason = typer.Option(SuppressionReason.MANUAL, help="Why."),
    scope: SuppressionScope = typer.Option(SuppressionScope.ALL, help="all or marketing."),
    note: str | None = NoteOpt,
    actor: str | None = ActorOpt,
) -> None:
    """Suppress an address (stored only as its blind index)."""
    if platform == (tenant is not None):
        raise UnknownValue("give either --tenant or --platform", field="tenant")
    created = suppression_service.add_suppression(
        state(ctx).container(create_keys=True).uow(),
        tenant,
        address=address,
        channels=channel,
        reason=reason,
        scope=scope,
        note=note,
        actor=actor,
        source="cli",
    )
    for s in created:
        console.print(
            f"suppressed on {s.channel.value} ({s.reason.value}, {s.scope.value}): {s.id}"
        )


@suppress_app.command("list")
@handle_errors
def suppress_list(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    include_lifted: bool = typer.Option(False, "--all", help="Include lifted suppressions."),
) -> None:
    """List suppressions visible to a tenant (its own and platform-wide)."""
    rows = suppression_service.list_suppressions(
        state(ctx).container().read_uow(), tenant, include_lifted
    )
    table = Table("id", "channel", "scope", "reason", "where", "since", "lifted", "note")
    for s in rows:
        table.add_row(
            str(s.id),
            s.channel.value,
            s.scope.value,
            s.reason.value,
            "platform" if s.tenant_id is None else "tenant",
            s.created_at.isoformat(timespec="seconds"),
            s.lifted_at.isoformat(timespec="seconds") if s.lifted_at else "",
            s.note or s.source or "",
        )
    console.print(table if rows else "no suppressions")


@suppress_app.command("lift")
@handle_errors
def suppress_lift(
    ctx: typer.Context,
    suppression_id: str = typer.Argument(..., help="Suppression id."),
    tenant: str = TenantOpt,
    actor: str = typer.Option("cli", help="Who lifts it."),
) -> None:
    """Lift a manual block or an unsubscribe (other reasons are permanent)."""
    sid = _required_uuid(suppression_id, "suppression_id")
    lifted = suppression_service.lift_suppression(state(ctx).container().uow(), tenant, sid, actor)
    console.print(f"lifted {lifted.id}")


@dnc_app.command("add")
@handle_errors
def dnc_add(
    ctx: typer.Context,
    numbers: list[str] = typer.Argument(..., help="Phone numbers."),
    registry: str = typer.Option(..., help="Registry name, e.g. US-DNC or IN-NCPR."),
    region: str | None = typer.Option(None, help="Country for numbers without a + prefix."),
) -> None:
    """List numbers on a do-not-contact registry (marketing calls and texts stop)."""
    added = suppression_service.list_on_registry(
        state(ctx).container(create_keys=True).uow(), registry, numbers, region
    )
    console.print(f"{added} number(s) newly listed on {registry}")
