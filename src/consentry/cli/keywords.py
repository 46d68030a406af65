"""``consentry keywords``: a tenant's own SMS and WhatsApp keywords and reply texts."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from consentry.cli.context import console, handle_errors, state
from consentry.domain.errors import UnknownValue
from consentry.services import tenant_keywords as service

keywords_app = typer.Typer(
    help="A tenant's own keywords and reply texts, added to the deployment's.",
    no_args_is_help=True,
)
TenantOpt = typer.Option(..., "--tenant", "-t", help="Tenant slug.")


@keywords_app.command("show")
@handle_errors
def show(ctx: typer.Context, tenant: str = TenantOpt) -> None:
    """Print the tenant's keyword configuration as JSON ({} when it adds nothing)."""
    found = service.get_keywords(state(ctx).container().read_uow(), tenant)
    console.print_json(json.dumps(found))


@keywords_app.command("set")
@handle_errors
def set_(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A keywords JSON file."),
    tenant: str = TenantOpt,
) -> None:
    """Replace the tenant's keywords with those of a JSON file (the keywords-file format)."""
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise UnknownValue(f"{file}: not a JSON file: {exc}", field="file") from None
    if not isinstance(config, dict):
        raise UnknownValue(f"{file}: one object keyed by language code", field="file")
    service.set_keywords(state(ctx).container().uow(), tenant, config)
    console.print(f"keywords of [bold]{tenant}[/] set: {', '.join(sorted(config)) or 'none'}")


@keywords_app.command("clear")
@handle_errors
def clear(ctx: typer.Context, tenant: str = TenantOpt) -> None:
    """Go back to the deployment's keywords."""
    cleared = service.clear_keywords(state(ctx).container().uow(), tenant)
    console.print("keywords cleared" if cleared else "the tenant had no keywords of its own")
