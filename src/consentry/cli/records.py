"""Commands for tenants, topics, policy documents and contacts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer
from rich.table import Table

from consentry.cli.context import console, handle_errors, state
from consentry.domain.errors import UnknownValue
from consentry.domain.model import BusinessProfile, Category, PolicyKind
from consentry.services import contacts as contact_service
from consentry.services import tenancy

tenant_app = typer.Typer(help="Businesses that send through consentry.", no_args_is_help=True)
topic_app = typer.Typer(help="Kinds of message a tenant sends.", no_args_is_help=True)
policy_app = typer.Typer(help="Versioned policy documents and disclosures.", no_args_is_help=True)
contact_app = typer.Typer(help="People a tenant knows.", no_args_is_help=True)

TenantOpt = typer.Option(..., "--tenant", "-t", help="Tenant slug.")


@tenant_app.command("create")
@handle_errors
def tenant_create(
    ctx: typer.Context,
    slug: str = typer.Argument(..., help="Short unique name, e.g. harbour-auto."),
    name: str = typer.Option(..., help="Display name used in messages."),
    legal_name: str = typer.Option(..., help="Legal name of the business."),
    country: str = typer.Option(..., help="ISO country code of the business."),
    description: str = typer.Option("", help="What the business does."),
    contact_email: str | None = typer.Option(None, help="Support email shown to recipients."),
    contact_phone: str | None = typer.Option(None, help="Support phone shown to recipients."),
    postal_address: str | None = typer.Option(None, help="Postal address for message footers."),
    website: str | None = typer.Option(None, help="Website of the business."),
) -> None:
    """Create a tenant with its data key and umbrella topics."""
    tenant = tenancy.create_tenant(
        state(ctx).container(create_keys=True).uow(),
        slug=slug,
        name=name,
        profile=BusinessProfile(
            legal_name=legal_name,
            country=country,
            description=description,
            contact_email=contact_email,
            contact_phone=contact_phone,
            postal_address=postal_address,
            website=website,
        ),
    )
    console.print(f"tenant [bold]{tenant.slug}[/] created ({tenant.id})")


@tenant_app.command("list")
@handle_errors
def tenant_list(ctx: typer.Context) -> None:
    """List tenants and their status."""
    with state(ctx).container().read_uow() as uow:
        tenants = uow.tenants.list()
    table = Table("slug", "name", "country", "status", "id")
    for t in tenants:
        table.add_row(t.slug, t.name, t.country, t.status.value, str(t.id))
    console.print(table)


@topic_app.command("create")
@handle_errors
def topic_create(
    ctx: typer.Context,
    key: str = typer.Argument(..., help="Short key, e.g. promotions."),
    tenant: str = TenantOpt,
    name: str = typer.Option(..., help="Name people see in the preference centre."),
    category: Category = typer.Option(..., help="service or marketing."),
    double_opt_in: bool = typer.Option(False, help="Require confirmed (double) opt-in."),
    description: str = typer.Option("", help="What these messages are."),
) -> None:
    """Add a topic to a tenant."""
    topic = tenancy.create_topic(
        state(ctx).container().uow(),
        tenant,
        key=key,
        name=name,
        category=category,
        requires_double_opt_in=double_opt_in,
        description=description,
    )
    console.print(f"topic [bold]{topic.key}[/] ({topic.category.value}) created")


@topic_app.command("list")
@handle_errors
def topic_list(ctx: typer.Context, tenant: str = TenantOpt) -> None:
    """List a tenant's topics."""
    table = Table("key", "name", "category", "double opt-in", "umbrella")
    for t in tenancy.list_topics(state(ctx).container().read_uow(), tenant):
        table.add_row(
            t.key,
            t.name,
            t.category.value,
            "yes" if t.requires_double_opt_in else "",
            "yes" if t.umbrella else "",
        )
    console.print(table)


@policy_app.command("publish")
@handle_errors
def policy_publish(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="Text of the document."),
    tenant: str = TenantOpt,
    kind: PolicyKind = typer.Option(..., help="Kind of document."),
    title: str = typer.Option(..., help="Title."),
    locale: str = typer.Option("en", help="Language of the text."),
) -> None:
    """Store the file as the next version of a policy document and publish it (immutable)."""
    try:
        body = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UnknownValue("the document must be UTF-8 text", field="file") from exc
    container = state(ctx).container()
    draft = tenancy.draft_policy(
        container.uow(), tenant, kind=kind, title=title, body=body, locale=locale
    )
    doc = tenancy.publish_policy(container.uow(), tenant, draft.id)
    console.print(f"{doc.kind.value} v{doc.version} published: {doc.id} {doc.content_hash}")


@policy_app.command("list")
@handle_errors
def policy_list(ctx: typer.Context, tenant: str = TenantOpt) -> None:
    """List policy document versions."""
    with state(ctx).container().read_uow() as uow:
        docs = uow.policies.list(uow.tenants.by_slug(tenant).id)
    table = Table("kind", "version", "status", "title", "hash", "id")
    for d in docs:
        table.add_row(
            d.kind.value,
            str(d.version),
            d.status.value,
            d.title,
            d.content_hash[:19] + "…",
            str(d.id),
        )
    console.print(table)


@contact_app.command("add")
@handle_errors
def contact_add(
    ctx: typer.Context,
    tenant: str = TenantOpt,
    name: str | None = typer.Option(None, help="Full name."),
    email: str | None = typer.Option(None, help="Email address."),
    phone: str | None = typer.Option(None, help="Phone number for SMS and calls."),
    whatsapp: str | None = typer.Option(None, help="WhatsApp number."),
    postal_address: str | None = typer.Option(None, help="Postal address."),
    country: str | None = typer.Option(None, help="ISO country code of the person."),
    time_zone: str | None = typer.Option(None, help="IANA time zone, e.g. Europe/Berlin."),
    locale: str | None = typer.Option(None, help="Preferred language, e.g. en-GB."),
    dob: str | None = typer.Option(None, help="Date of birth, YYYY-MM-DD."),
    age_attested: bool = typer.Option(False, help="The person attested being of age."),
    external_ref: str | None = typer.Option(None, help="The tenant's own id for this person."),
) -> None:
    """Add a contact; addresses are validated, normalised and stored encrypted."""
    birth: date | None = None
    if dob:
        try:
            birth = date.fromisoformat(dob)
        except ValueError as exc:
            raise UnknownValue("date of birth must be YYYY-MM-DD", field="dob") from exc
    contact = contact_service.add_contact(
        state(ctx).container().uow(),
        tenant,
        contact_service.ContactInput(
            name=name,
            email=email,
            phone=phone,
            whatsapp=whatsapp,
            postal_address=postal_address,
            country=country,
            time_zone=time_zone,
            locale=locale,
            date_of_birth=birth,
            age_attested=age_attested,
            external_ref=external_ref,
        ),
    )
    console.print(f"contact {contact.id} added")


@contact_app.command("show")
@handle_errors
def contact_show(
    ctx: typer.Context,
    reference: str = typer.Argument(..., help="Contact id, email address or phone number."),
    tenant: str = TenantOpt,
) -> None:
    """Show one contact (decrypted)."""
    c = contact_service.get_contact(state(ctx).container().read_uow(), tenant, reference)
    table = Table("field", "value", show_header=False)
    for label, value in (
        ("id", str(c.id)),
        ("name", c.name),
        ("email", c.email),
        ("phone", c.phone),
        ("phone type", c.phone_type.value if c.phone_type else None),
        ("whatsapp", c.whatsapp),
        ("country", c.country),
        ("time zone", c.time_zone),
        ("locale", c.locale),
        ("date of birth", c.date_of_birth.isoformat() if c.date_of_birth else None),
        ("adult from", c.adult_on.isoformat() if c.adult_on else None),
    ):
        table.add_row(label, value or "—")
    console.print(table)
