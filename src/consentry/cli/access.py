"""Commands for the HTTP service: serve it, and manage its users and API keys."""

from __future__ import annotations

import typer
from rich.table import Table

from consentry.cli.context import console, handle_errors, state
from consentry.domain.access import Role, Scope
from consentry.domain.errors import UnknownValue
from consentry.services import access

user_app = typer.Typer(help="Operators and tenant users of the web service.", no_args_is_help=True)
apikey_app = typer.Typer(help="API keys for tenants' systems.", no_args_is_help=True)


def serve(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    workers: int = typer.Option(1, help="Worker processes (PostgreSQL recommended above 1)."),
) -> None:
    """Serve the HTTP API (migrates the database first)."""
    import os

    import uvicorn

    st = state(ctx)
    st.container(create_keys=True)  # migrate and check keys before the workers start
    os.environ["CONSENTRY_DATA_DIR"] = str(st.settings.data_dir)
    if st.settings.database_url:
        os.environ["CONSENTRY_DATABASE_URL"] = st.settings.database_url
    uvicorn.run(
        "consentry.web.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        access_log=False,
    )


@user_app.command("create")
@handle_errors
def user_create(
    ctx: typer.Context,
    email: str = typer.Argument(..., help="Login email."),
    role: Role = typer.Option(
        ..., help="platform_operator, tenant_owner, tenant_operator, auditor."
    ),
    tenant: str | None = typer.Option(
        None, "--tenant", "-t", help="Tenant slug (not for operators)."
    ),
    password: str = typer.Option(
        ..., prompt=True, hide_input=True, confirmation_prompt=True, help="At least 12 characters."
    ),
) -> None:
    """Create a user who can sign in to the web service."""
    user = access.create_user(
        state(ctx).container().uow(), email=email, password=password, role=role, tenant_slug=tenant
    )
    console.print(f"user {user.email} ({user.role.value}) created")


@apikey_app.command("create")
@handle_errors
def apikey_create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="What the key is for, e.g. 'booking system'."),
    tenant: str | None = typer.Option(None, "--tenant", "-t", help="Tenant slug."),
    platform: bool = typer.Option(False, help="A platform operator token (no tenant)."),
    role: Role = typer.Option(Role.TENANT_OPERATOR, help="The role the key acts with."),
    scope: list[Scope] | None = typer.Option(None, "--scope", help="Limit to these scopes."),
) -> None:
    """Issue an API key; the secret is printed once and stored only as a hash."""
    if platform == (tenant is not None):
        raise UnknownValue("give either --tenant or --platform", field="tenant")
    issued = access.issue_api_key(
        state(ctx).container().uow(),
        access.local_operator(),
        tenant_slug=tenant,
        name=name,
        role=role,
        scopes=frozenset(scope) if scope else None,
    )
    console.print(
        f"key {issued.record.prefix} scopes: "
        + ", ".join(sorted(s.value for s in issued.record.scopes))
    )
    console.print(issued.token, highlight=False, soft_wrap=True)


@apikey_app.command("list")
@handle_errors
def apikey_list(
    ctx: typer.Context, tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant slug.")
) -> None:
    """List a tenant's API keys (never their secrets)."""
    c = state(ctx).container()
    with c.read_uow() as uow:
        tenant_id = uow.tenants.by_slug(tenant).id
    table = Table("prefix", "name", "role", "scopes", "created", "last used", "revoked")
    for k in access.list_api_keys(c.read_uow(), access.local_operator(), tenant_id):
        table.add_row(
            k.prefix,
            k.name,
            k.role.value,
            ", ".join(sorted(s.value for s in k.scopes)),
            k.created_at.isoformat(timespec="seconds"),
            k.last_used_at.isoformat(timespec="seconds") if k.last_used_at else "",
            k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else "",
        )
    console.print(table)


@apikey_app.command("revoke")
@handle_errors
def apikey_revoke(
    ctx: typer.Context,
    prefix: str = typer.Argument(..., help="Key prefix."),
    tenant: str = typer.Option(..., "--tenant", "-t", help="Tenant slug."),
) -> None:
    """Revoke a key; requests with it fail from now on."""
    c = state(ctx).container()
    with c.read_uow() as uow:
        tenant_id = uow.tenants.by_slug(tenant).id
    if not prefix:
        raise UnknownValue("name the key prefix", field="prefix")
    record = access.revoke_api_key(c.uow(), access.local_operator(), tenant_id, prefix)
    console.print(f"key {record.prefix} revoked")
