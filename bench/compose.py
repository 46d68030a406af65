"""Time message composition per recipient: the email skeleton against ``email.message``.

    .venv/bin/python bench/compose.py [--messages 2000] [--repeats 5]

Each row composes the same personalised marketing email (subject and body with the contact's
name, text and html parts, List-Unsubscribe headers, footer) for ``messages`` recipients and
reports the best of ``repeats`` runs per message: the composer alone on rendered content; the
whole per-recipient path (render the template, mint the unsubscribe token, compose); the same
with a DKIM signature (RSA-2048); and the standard library's ``email.message.EmailMessage``
building the same message, with dkimpy signing it if installed. Token mint and read are timed
on their own. Prints a table.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage as StdEmailMessage
from email.policy import SMTP

from rich.console import Console
from rich.table import Table

from consentry.domain.model import BusinessProfile, Category, Channel, Contact, Tenant, TenantStatus
from consentry.domain.templates import Template
from consentry.services.compose import (
    ComplianceLinks,
    DkimSigner,
    EmailComposer,
    RenderedContent,
    SenderIdentity,
    TokenClaims,
    UnsubscribeTokens,
    compile_template,
    generate_dkim_key,
    template_variables,
)

console = Console(width=None if sys.stdout.isatty() else 150)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
TENANT = Tenant(
    id=uuid.UUID("0193a1f2-0000-7000-8000-0000000000aa"),
    slug="garage",
    name="Zoë's Garage",
    profile=BusinessProfile(
        legal_name="Zoë's Garage Ltd", country="GB", postal_address="1 High Street, Springfield"
    ),
    status=TenantStatus.ACTIVE,
    created_at=NOW,
)
TEMPLATE = Template(
    id=uuid.uuid4(),
    tenant_id=TENANT.id,
    topic_id=uuid.uuid4(),
    channel=Channel.EMAIL,
    name="spring",
    subject="{{ contact.first_name }}, your spring tyre check — 20% off",
    text=(
        "Hello {{ contact.first_name }},\n\nSpring is here: book a tyre check at"
        " {{ business.name }} this month and save 20%.\n\nSee you soon,\nThe team\n"
    ),
    html=(
        "<html><body><p>Hello {{ contact.first_name }},</p><p>Spring is here: book a tyre check"
        " at {{ business.name }} this month and save <b>20%</b>.</p></body></html>"
    ),
)
FIRST_NAMES = ("Ada", "Zoë", "Łukasz", "Søren", "María", "John", "Aiko", "Chloé")


def _contacts(n: int) -> list[Contact]:
    return [
        Contact(
            id=uuid.uuid4(),
            tenant_id=TENANT.id,
            name=f"{FIRST_NAMES[i % len(FIRST_NAMES)]} Example{i}",
            email=f"person{i}@example.org",
        )
        for i in range(n)
    ]


def _identity(signer: DkimSigner | None) -> SenderIdentity:
    return SenderIdentity(
        from_address="news@garage.example",
        from_name="Zoë's Garage",
        envelope_from="bounces@garage.example",
        postal_address="1 High Street, Springfield",
        legal_name="Zoë's Garage Ltd",
        reply_to="help@garage.example",
        dkim=signer,
    )


def _links(token: str) -> ComplianceLinks:
    return ComplianceLinks(
        f"https://links.garage.example/u/{token}",
        f"mailto:unsubscribe+{token}@garage.example",
        f"https://links.garage.example/p/{token}",
    )


def _best(run: Callable[[], object], count: int, repeats: int) -> float:
    """Best microseconds per item over ``repeats`` runs of ``run`` (which does ``count``)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best / count * 1e6


def _stdlib_message(content: RenderedContent, contact: Contact, links: ComplianceLinks) -> bytes:
    msg = StdEmailMessage()
    msg["From"] = Address("Zoë's Garage", "news", "garage.example")
    msg["Reply-To"] = "help@garage.example"
    msg["To"] = Address(contact.name or "", addr_spec=contact.email or "")
    msg["Subject"] = content.subject or ""
    msg["Date"] = NOW
    msg["Message-ID"] = "<1.bench@garage.example>"
    msg["List-Unsubscribe"] = f"<{links.unsubscribe_url}>, <{links.unsubscribe_mailto}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    footer = (
        "\n-- \nZoë's Garage Ltd\n1 High Street, Springfield\n"
        f"Unsubscribe: {links.unsubscribe_url}\nManage your preferences: {links.preferences_url}\n"
    )
    msg.set_content(content.text + footer, cte="quoted-printable")
    msg.add_alternative(content.html or "", subtype="html", cte="quoted-printable")
    return msg.as_bytes(policy=SMTP)


def measure(messages: int, repeats: int) -> list[tuple[str, float]]:
    """Rows of (what, microseconds per item)."""
    contacts = _contacts(messages)
    compiled = compile_template(TEMPLATE)
    tokens = UnsubscribeTokens(bytes(range(32)))
    pem, _ = generate_dkim_key()
    signer = DkimSigner("garage.example", "bench", pem)
    plain = EmailComposer(
        tenant_id=TENANT.id, identity=_identity(None), category=Category.MARKETING
    )
    signed = EmailComposer(
        tenant_id=TENANT.id, identity=_identity(signer), category=Category.MARKETING
    )
    claims = [
        TokenClaims(TENANT.id, c.id, TEMPLATE.topic_id, Channel.EMAIL, bytes(16), NOW)
        for c in contacts
    ]
    minted = [tokens.mint(c) for c in claims]
    rendered = [compiled.render(template_variables(TENANT, c)) for c in contacts]
    links = [_links(t) for t in minted]

    def compose_only(composer: EmailComposer) -> None:
        for i, contact in enumerate(contacts):
            composer.compose(rendered[i], to_address=contact.email or "", to_name=contact.name,
                             delivery_id=i, message_id=f"{i}.b@garage.example", now=NOW,
                             links=links[i])  # fmt: skip

    def full_path(composer: EmailComposer) -> None:
        for i, contact in enumerate(contacts):
            content = compiled.render(template_variables(TENANT, contact))
            token = tokens.mint(claims[i])
            composer.compose(content, to_address=contact.email or "", to_name=contact.name,
                             delivery_id=i, message_id=f"{i}.b@garage.example", now=NOW,
                             links=_links(token))  # fmt: skip

    def stdlib() -> None:
        for i, contact in enumerate(contacts):
            _stdlib_message(rendered[i], contact, links[i])

    def render_only() -> None:
        for contact in contacts:
            compiled.render(template_variables(TENANT, contact))

    def mint() -> None:
        for c in claims:
            tokens.mint(c)

    def read() -> None:
        for t in minted:
            tokens.read(t, NOW)

    timed: list[tuple[str, Callable[[], object]]] = [
        ("EmailComposer.compose (rendered content)", lambda: compose_only(plain)),
        ("  + DKIM (RSA-2048, own signer)", lambda: compose_only(signed)),
        ("render + token + compose", lambda: full_path(plain)),
        ("render + token + compose + DKIM", lambda: full_path(signed)),
        ("email.message.EmailMessage + as_bytes", stdlib),
        ("template render only", render_only),
        ("token mint", mint),
        ("token read", read),
    ]
    rows = [(name, _best(run, messages, repeats)) for name, run in timed]
    try:
        import dkim
    except ImportError:
        return rows
    sample = [_stdlib_message(rendered[i], c, links[i]) for i, c in enumerate(contacts[:200])]

    def dkimpy() -> None:
        for message in sample:
            dkim.sign(message, b"bench", b"garage.example", pem, include_headers=[b"from", b"to",
                      b"subject", b"date", b"message-id", b"list-unsubscribe"])  # fmt: skip

    rows.append(("dkimpy sign (for comparison)", _best(dkimpy, len(sample), repeats)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    table = Table(
        title=f"Composing one marketing email ({args.messages} recipients, best of {args.repeats})"
    )
    table.add_column("what")
    table.add_column("µs per message", justify="right")
    table.add_column("messages/s (1 core)", justify="right")
    for name, micros in measure(args.messages, args.repeats):
        table.add_row(name, f"{micros:,.1f}", f"{1e6 / micros:,.0f}")
    console.print(table)


if __name__ == "__main__":
    main()
