"""Sending from the command line: sender domain, templates, a campaign, a message, the outbox."""

from __future__ import annotations

from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from tests.e2e.conftest import UUID_RE, Cli


def _shop(cli: Cli, tmp_path: Path) -> str:
    cli.ok("tenant", "create", "acme", "--name", "Acme Parts", "--legal-name", "Acme Parts Ltd",
           "--country", "GB", "--postal-address", "1 High St, Leeds LS1 1AA")  # fmt: skip
    for key, category in (("reminders", "service"), ("offers", "marketing")):
        cli.ok("topic", "create", key, "-t", "acme", "--name", key.title(),
               "--category", category)  # fmt: skip
    text = tmp_path / "disclosure.txt"
    text.write_text("Yes, Acme may email me offers.\n", encoding="utf-8")
    out = cli.ok("policy", "publish", str(text), "-t", "acme", "--kind", "consent_disclosure",
                 "--title", "Offers")  # fmt: skip
    found = UUID_RE.search(out)
    assert found is not None
    return found.group(0)


def _person(cli: Cli, n: int, disclosure: str, *, consent: bool) -> str:
    contact = cli.new_id("contact", "add", "-t", "acme", "--name", f"Person {n}",
                         "--email", f"p{n}@example.com", "--country", "GB")  # fmt: skip
    if consent:
        cli.ok("consent", "grant", "-t", "acme", "--contact", contact, "--topic", "offers",
               "--channel", "email", "--basis", "express", "--method", "web_form",
               "--source", "https://acme.example/join", "--ip", "203.0.113.9",
               "--user-agent", "Mozilla/5.0", "--disclosure", disclosure)  # fmt: skip
    return contact


def test_a_campaign_from_the_command_line_goes_out_through_the_gate(
    cli: Cli, tmp_path: Path
) -> None:
    disclosure = _shop(cli, tmp_path)
    out = cli.ok("sender-domain", "add", "acme.example", "-t", "acme", "--dkim-selector", "s1")
    assert "cs1" not in out
    assert "s1._domainkey.acme.example" in out
    assert "v=DKIM1; k=rsa; p=" in out
    cli.ok("template", "create", "--name", "offer", "-t", "acme", "--topic", "offers",
           "--channel", "email", "--subject", "An offer for {{ contact.first_name }}",
           "--text", "Hello {{ contact.first_name }}, brake pads are 20% off.")  # fmt: skip
    preview = cli.ok("template", "preview", "offer", "-t", "acme")
    assert "An offer for Alex" in preview
    assert "1 High St" in preview
    for n in range(3):
        _person(cli, n, disclosure, consent=n < 2)

    cli.ok("campaign", "create", "--name", "spring", "-t", "acme", "--topic", "offers",
           "--template", "offer")  # fmt: skip
    sim = cli.ok("campaign", "simulate", "spring", "-t", "acme")
    assert "2 of 3 would receive it" in sim
    assert "NO_CONSENT" in sim
    assert cli.count("deliveries") == 0  # simulating writes nothing

    launched = cli.ok("campaign", "launch", "spring", "-t", "acme")
    assert "completed" in launched
    status = cli.ok("campaign", "status", "spring", "-t", "acme")
    assert "sent" in status
    assert "suppressed" in status

    listing = cli.ok("outbox")
    assert "p0@example.com" in listing
    assert "p1@example.com" in listing
    assert "p2@example.com" not in listing
    raw = cli.run("outbox", "--raw", "1")
    mail = message_from_bytes(raw.stdout_bytes, policy=default_policy)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(mail["Subject"]).startswith("An offer for Person")
    assert "DKIM-Signature" in mail
    cli.fails("CAMPAIGN_STATE_CONFLICT", "campaign", "resume", "spring", "-t", "acme")


def test_a_service_message_is_sent_once_per_idempotency_key(cli: Cli, tmp_path: Path) -> None:
    disclosure = _shop(cli, tmp_path)
    contact = _person(cli, 1, disclosure, consent=False)
    cli.ok("sender-domain", "add", "acme.example", "-t", "acme")
    cli.ok("consent", "grant", "-t", "acme", "--contact", contact, "--topic", "all-service",
           "--channel", "email", "--basis", "service_necessity", "--method", "api",
           "--actor", "crm")  # fmt: skip
    cli.ok("template", "create", "--name", "booked", "-t", "acme", "--topic", "reminders",
           "--channel", "email", "--subject", "Booked",
           "--text", "See you at {{ data.when }}.")  # fmt: skip
    first = cli.ok("send", "-t", "acme", "--contact", "p1@example.com", "--template", "booked",
                   "--data", '{"when": "9:00"}', "--idempotency-key", "booking-7")  # fmt: skip
    again = cli.ok("send", "-t", "acme", "--contact", "p1@example.com", "--template", "booked",
                   "--data", '{"when": "9:00"}', "--idempotency-key", "booking-7")  # fmt: skip
    assert first.split(":")[0] == again.split(":")[0]
    assert ": sent" in first
    assert cli.count("captured_messages") == 1
    # A variable the template needs is missing: that message fails with a reason, nothing sent.
    missing = cli.ok("send", "-t", "acme", "--contact", "p1@example.com", "--template",
                     "booked", "--data", "{}")  # fmt: skip
    assert "failed" in missing
    assert cli.count("captured_messages") == 1
    cli.fails("TEMPLATE_NOT_FOUND", "send", "-t", "acme", "--contact", "p1@example.com",
              "--template", "nope")  # fmt: skip
    cli.fails("INVALID_VALUE", "send", "-t", "acme", "--contact", "p1@example.com",
              "--template", "booked", "--data", "[1]")  # fmt: skip
