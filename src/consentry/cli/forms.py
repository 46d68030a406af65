"""``consentry form``: public subscription forms, their hosted pages and embeddable HTML."""

from __future__ import annotations

import typer
from rich.table import Table

from consentry.cli.context import console, handle_errors, state
from consentry.domain.errors import UnknownValue
from consentry.domain.model import Channel, PolicyKind
from consentry.services import forms
from consentry.services.form_page import form_path

form_app = typer.Typer(help="Public subscription forms.", no_args_is_help=True)
TenantOpt = typer.Option(..., "--tenant", "-t", help="Tenant slug.")


def _choice(value: str) -> tuple[str, Channel]:
    topic, _, channel = value.partition(":")
    try:
        return topic.strip(), Channel(channel.strip())
    except ValueError:
        raise UnknownValue(
            f"a choice is topic:channel (email, sms or whatsapp), not {value!r}", field="choice"
        ) from None


KeyArg = typer.Argument(..., help="Short name, in the page's address: /f/<tenant>/<key>.")
TitleOpt = typer.Option(..., help="The form's heading.")
ChoiceOpt = typer.Option(
    ..., help="A box to offer, topic:channel (repeat): news:email, offers:sms."
)
IntroOpt = typer.Option("", help="A sentence under the heading.")
DisclosureOpt = typer.Option(
    PolicyKind.CONSENT_DISCLOSURE, help="The document kind whose latest version is shown."
)
PrivacyOpt = typer.Option(
    None, help="Privacy policy address (default: the tenant's published privacy policy)."
)
ConfirmOpt = typer.Option(
    True, help="Email and SMS subscriptions wait for the owner of the address to confirm."
)


@form_app.command("create")
@handle_errors
def form_create(
    ctx: typer.Context,
    key: str = KeyArg,
    tenant: str = TenantOpt,
    title: str = TitleOpt,
    choice: list[str] = ChoiceOpt,
    intro: str = IntroOpt,
    disclosure_kind: PolicyKind = DisclosureOpt,
    privacy_url: str | None = PrivacyOpt,
    confirm: bool = ConfirmOpt,
) -> None:
    """Create a form; prints its public address."""
    c = state(ctx).container()
    definition = forms.FormDefinition(
        key, title, [_choice(v) for v in choice], intro, disclosure_kind, privacy_url, confirm
    )
    managed = forms.create_form(c.uow(), tenant, definition)
    url = c.settings.public_base_url.rstrip("/") + form_path(tenant, managed.form.key)
    console.print(f"form [bold]{managed.form.key}[/] created: {url}")


@form_app.command("update")
@handle_errors
def form_update(
    ctx: typer.Context,
    key: str = KeyArg,
    tenant: str = TenantOpt,
    title: str = TitleOpt,
    choice: list[str] = ChoiceOpt,
    intro: str = IntroOpt,
    disclosure_kind: PolicyKind = DisclosureOpt,
    privacy_url: str | None = PrivacyOpt,
    confirm: bool = ConfirmOpt,
) -> None:
    """Replace what a form offers and says. Pages shown before, and snippets embedded before,
    stop taking submissions: embed the form again."""
    c = state(ctx).container()
    definition = forms.FormDefinition(
        key, title, [_choice(v) for v in choice], intro, disclosure_kind, privacy_url, confirm
    )
    managed = forms.update_form(c.uow(), tenant, definition)
    console.print(f"form [bold]{key}[/] is now at revision {managed.form.revision}")


@form_app.command("list")
@handle_errors
def form_list(ctx: typer.Context, tenant: str = TenantOpt) -> None:
    """The tenant's forms."""
    c = state(ctx).container()
    table = Table("key", "title", "choices", "confirm", "status", "address")
    for managed in forms.list_forms(c.read_uow(), tenant):
        form = managed.form
        table.add_row(
            form.key,
            form.title,
            ", ".join(choice.value for choice in form.choices),
            "yes" if form.confirm else "no",
            form.status.value,
            c.settings.public_base_url.rstrip("/") + form_path(tenant, form.key),
        )
    console.print(table)


@form_app.command("show")
@handle_errors
def form_show(ctx: typer.Context, key: str, tenant: str = TenantOpt) -> None:
    """One form and how many submissions it has taken."""
    c = state(ctx).container()
    managed = forms.get_form(c.read_uow(), tenant, key)
    form = managed.form
    console.print(f"[bold]{form.title}[/] ({form.key}, revision {form.revision}, {form.status})")
    console.print(f"address: {c.settings.public_base_url.rstrip('/')}{form_path(tenant, key)}")
    console.print("choices: " + ", ".join(choice.value for choice in form.choices))
    console.print(f"submissions: {managed.submissions}")


@form_app.command("embed")
@handle_errors
def form_embed(ctx: typer.Context, key: str, tenant: str = TenantOpt) -> None:
    """Print the HTML to paste into the business's own site."""
    # The page templates load the web stack, which no other form command needs at start-up.
    from consentry.web.pages.forms import embed_snippet

    c = state(ctx).container()
    print(embed_snippet(c, tenant, key))  # noqa: T201  (plain output, to redirect into a file)


@form_app.command("archive")
@handle_errors
def form_archive(ctx: typer.Context, key: str, tenant: str = TenantOpt) -> None:
    """Stop a form taking subscriptions; the consents it collected stay."""
    forms.archive_form(state(ctx).container().uow(), tenant, key)
    console.print(f"form [bold]{key}[/] archived")
