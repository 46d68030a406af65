"""The CLI end to end: setup, the consent lifecycle, suppressions, registries and the gate."""

from __future__ import annotations

import hashlib
import re
import sqlite3
import stat

from tests.e2e.conftest import DISCLOSURE_TEXT, UUID_RE, Cli


def decision(explain_output: str) -> str:
    """The ``decision:`` line of ``consentry explain``."""
    found = re.search(r"^decision: (.+)$", explain_output, re.MULTILINE)
    assert found is not None, explain_output
    return found.group(1).strip()


def table_rows(output: str) -> list[list[str]]:
    """The body rows of a Rich table, as stripped cells (continuation lines included)."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in output.splitlines()
        if line.startswith("│")
    ]


# --- init ----------------------------------------------------------------------------------


def test_init_creates_the_data_dir_a_private_key_file_and_a_migrated_database(cli: Cli) -> None:
    assert not cli.data_dir.exists()

    out = cli.ok("init")

    key_file = cli.data_dir / "keys.json"
    assert cli.data_dir.is_dir()
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert f"keys: created {key_file}" in out
    assert "database: migrated to" in out
    conn = sqlite3.connect(cli.db_path)
    try:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        conn.close()
    assert revision in out
    assert {"tenants", "contacts", "consent_events", "suppressions", "chain_heads"} <= tables
    assert table_rows(cli.ok("tenant", "list")) == []


def test_init_twice_keeps_the_existing_keys(cli: Cli) -> None:
    cli.ok("init")
    key_file = cli.data_dir / "keys.json"
    keys_before = key_file.read_bytes()
    cli.ok("tenant", "create", "acme", "--name", "A", "--legal-name", "A Ltd", "--country", "GB")

    out = cli.ok("init")

    assert "created" not in out
    assert f"keys: {key_file}" in out
    assert key_file.read_bytes() == keys_before
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Data sealed under the first keys is still readable, so the keys really were kept.
    assert "acme" in cli.ok("tenant", "list")
    assert cli.count("tenants") == 1


def test_a_key_file_readable_by_others_is_refused(cli: Cli) -> None:
    cli.ok("init")
    (cli.data_dir / "keys.json").chmod(0o644)

    stderr = cli.fails("KEY_UNAVAILABLE", "tenant", "list")

    assert "chmod 600" in stderr


# --- the whole flow ------------------------------------------------------------------------


def test_full_consent_flow(cli: Cli) -> None:
    disclosure = cli.setup_tenant()
    topics = cli.ok("topic", "list", "-t", cli.tenant)
    by_key = {row[0]: row for row in table_rows(topics)}
    assert by_key["reminders"][2] == "service"
    assert by_key["offers"][2] == "marketing"
    assert by_key["offers"][3] == ""
    assert by_key["newsletter"][3] == "yes"  # double opt-in
    assert {"all-marketing", "all-service"} <= by_key.keys()

    contact_id = cli.add_jane()
    shown = cli.ok("contact", "show", cli.email, "-t", cli.tenant)
    fields = {row[0]: row[1] for row in table_rows(shown)}
    assert fields["id"] == contact_id
    assert fields["name"] == cli.name
    assert fields["email"] == cli.email
    assert fields["phone"] == cli.phone_e164
    assert fields["country"] == "GB"
    assert fields["time zone"] == "Europe/London"
    # The phone number as typed finds the same person.
    assert contact_id in cli.ok("contact", "show", cli.phone_typed, "-t", cli.tenant)

    # Express consent by web form, citing the published disclosure.
    out = cli.ok(
        "consent",
        "grant",
        "-t",
        cli.tenant,
        "-c",
        cli.email,
        "--topic",
        "offers",
        "--channel",
        "email",
        *cli.web_form(disclosure),
    )
    assert re.search(r"granted recorded: event \S+ \(seq 1\); offers by email is now active", out)
    grant_event = UUID_RE.search(out)
    assert grant_event is not None

    explained = cli.ok(
        "explain", "-t", cli.tenant, "-c", cli.email, "--topic", "offers", "--channel", "email"
    )
    assert decision(explained) == "allow"
    disclosure_hash = "sha256:" + hashlib.sha256(DISCLOSURE_TEXT.encode()).hexdigest()
    governing = re.sub(r"\s+", " ", explained[explained.index("governing consent event") :])
    assert f"governing consent event {grant_event.group(0)} (seq 1): granted express" in governing
    assert "by web_form from https://acme.example/signup" in governing
    assert f"disclosure {disclosure_hash}" in governing

    # The same topic on a channel nobody agreed to.
    explained = cli.ok(
        "explain", "-t", cli.tenant, "-c", cli.email, "--topic", "offers", "--channel", "sms"
    )
    assert decision(explained) == "deny NO_CONSENT"

    # Double opt-in: a request is pending until confirmed.
    cli.ok(
        "consent",
        "grant",
        "-t",
        cli.tenant,
        "-c",
        cli.email,
        "--topic",
        "newsletter",
        "--channel",
        "email",
        "--basis",
        "double_opt_in",
        "--requested",
        *cli.web_form(disclosure),
    )
    newsletter = ("--topic", "newsletter", "--channel", "email")
    explained = cli.ok("explain", "-t", cli.tenant, "-c", cli.email, *newsletter)
    assert decision(explained) == "deny CONSENT_PENDING"
    out = cli.ok(
        "consent",
        "confirm",
        "-t",
        cli.tenant,
        "-c",
        cli.email,
        *newsletter,
        "--method",
        "web_form",
        "--source",
        "https://acme.example/confirm",
        "--ip",
        cli.ip,
        "--user-agent",
        cli.user_agent,
    )
    assert "newsletter by email is now active" in out
    explained = cli.ok("explain", "-t", cli.tenant, "-c", cli.email, *newsletter)
    assert decision(explained) == "allow"

    # Withdrawal takes effect at once.
    out = cli.ok(
        "consent",
        "withdraw",
        "-t",
        cli.tenant,
        "-c",
        contact_id,
        "--topic",
        "offers",
        "--channel",
        "email",
        "--method",
        "web_form",
        "--source",
        "https://acme.example/unsubscribe",
        "--ip",
        "198.51.100.7",
        "--user-agent",
        "Mozilla/5.0 (unsubscribe)",
    )
    assert "offers by email is now withdrawn" in out
    explained = cli.ok(
        "explain", "-t", cli.tenant, "-c", cli.email, "--topic", "offers", "--channel", "email"
    )
    assert decision(explained) == "deny CONSENT_WITHDRAWN"
    assert "withdrawn express" in explained

    history = cli.ok("consent", "history", "-t", cli.tenant, "-c", cli.email)
    offers_rows = [
        line for line in history.splitlines() if "│ offers" in line and "│ email" in line
    ]
    assert len(offers_rows) == 2
    assert "granted" in offers_rows[0]
    assert "withdrawn" in offers_rows[1]
    assert "source=https://acme.example/signup" in history
    assert f"ip={cli.ip}" in history
    assert f"ua={cli.user_agent}" in history
    assert f"disclosure={disclosure_hash}" in history
    assert "source=https://acme.example/unsubscribe" in history
    assert "ip=198.51.100.7" in history
    seqs = [int(row[0]) for row in table_rows(history) if row[0]]
    assert seqs == [1, 2, 3, 4]
    assert history.index("requested") < history.index("confirmed") < history.index("withdrawn")

    # Service messages: a service basis on file, still allowed after the marketing opt-out...
    service_email = ("--topic", "reminders", "--channel", "email")
    cli.ok(
        "consent",
        "grant",
        "-t",
        cli.tenant,
        "-c",
        cli.email,
        *service_email,
        "--basis",
        "service_necessity",
        "--method",
        "paper",
        "--actor",
        "front-desk",
        "--note",
        "order form 1187",
    )
    assert decision(cli.ok("explain", "-t", cli.tenant, "-c", cli.email, *service_email)) == (
        "allow"
    )

    # ...but not after a hard bounce, whose block covers every category.
    bounce_id = cli.new_id(
        "suppress",
        "add",
        cli.email.upper(),  # the address as a bounce report might spell it
        "-t",
        cli.tenant,
        "--channel",
        "email",
        "--reason",
        "hard_bounce",
    )
    explained = cli.ok("explain", "-t", cli.tenant, "-c", cli.email, *service_email)
    assert decision(explained).startswith("deny SUPPRESSED_HARD_BOUNCE")

    manual_id = cli.new_id("suppress", "add", cli.phone_typed, "-t", cli.tenant, "--channel", "sms")
    listed = {row[0]: row for row in table_rows(cli.ok("suppress", "list", "-t", cli.tenant))}
    assert listed.keys() == {bounce_id, manual_id}
    assert listed[bounce_id][1:4] == ["email", "all", "hard_bounce"]
    assert listed[manual_id][1:4] == ["sms", "all", "manual"]
    assert listed[manual_id][4] == "tenant"

    stderr = cli.fails("SUPPRESSION_NOT_LIFTABLE", "suppress", "lift", bounce_id, "-t", cli.tenant)
    assert "hard_bounce" in stderr
    explained = cli.ok("explain", "-t", cli.tenant, "-c", cli.email, *service_email)
    assert decision(explained).startswith("deny SUPPRESSED_HARD_BOUNCE")

    assert f"lifted {manual_id}" in cli.ok("suppress", "lift", manual_id, "-t", cli.tenant)
    active = {row[0] for row in table_rows(cli.ok("suppress", "list", "-t", cli.tenant))}
    assert active == {bounce_id}
    every = {
        row[0]: row for row in table_rows(cli.ok("suppress", "list", "-t", cli.tenant, "--all"))
    }
    assert every.keys() == {bounce_id, manual_id}
    assert every[manual_id][6] != ""  # when it was lifted
    assert every[bounce_id][6] == ""

    # SMS marketing by keyword, then the number appears on a do-not-contact registry.
    offers_sms = ("--topic", "offers", "--channel", "sms")
    cli.ok(
        "consent",
        "grant",
        "-t",
        cli.tenant,
        "-c",
        cli.phone_e164,
        *offers_sms,
        "--method",
        "keyword",
        "--inbound-id",
        "SM0001",
    )
    assert decision(cli.ok("explain", "-t", cli.tenant, "-c", cli.email, *offers_sms)) == "allow"
    out = cli.ok("dnc", "add", cli.phone_typed, "--region", "GB", "--registry", "UK-TPS")
    assert "1 number(s) newly listed on UK-TPS" in out
    explained = cli.ok("explain", "-t", cli.tenant, "-c", cli.email, *offers_sms)
    assert decision(explained) == "deny DNC_REGISTERED"
    # Listing the same number again changes nothing.
    assert "0 number(s)" in cli.ok("dnc", "add", cli.phone_e164, "--registry", "UK-TPS")

    # A second person who may receive offers by email: the audience counts both.
    cli.ok(
        "contact",
        "add",
        "-t",
        cli.tenant,
        "--name",
        "Sam Lee",
        "--email",
        "sam.lee@example.org",
        "--country",
        "GB",
    )
    cli.ok(
        "consent",
        "grant",
        "-t",
        cli.tenant,
        "-c",
        "sam.lee@example.org",
        "--topic",
        "offers",
        "--channel",
        "email",
        *cli.web_form(disclosure),
    )
    out = cli.ok("audience", "-t", cli.tenant, "--topic", "offers", "--channel", "email")
    assert "1 of 2 contacts may receive it" in out
    assert sorted(table_rows(out)) == [["ALLOW", "1"], ["SUPPRESSED_HARD_BOUNCE", "1"]]
    out = cli.ok("audience", "-t", cli.tenant, "--topic", "newsletter", "--channel", "email")
    assert "0 of 2 contacts may receive it" in out
    assert sorted(table_rows(out)) == [["NO_CONSENT", "1"], ["SUPPRESSED_HARD_BOUNCE", "1"]]

    events = cli.count("consent_events")
    assert events == 7
    result = cli.run("verify-ledger")
    assert result.exit_code == 0, result.stderr
    assert f"ok {cli.tenant}: {events} events verified" in result.stdout
    assert result.stderr == ""


def test_umbrella_withdrawal_platform_and_marketing_only_suppressions(seeded: Cli) -> None:
    paper = ("--method", "paper", "--actor", "front-desk", "--note", "signed form")
    offers_email = ("--topic", "offers", "--channel", "email")
    reminders_email = ("--topic", "reminders", "--channel", "email")
    jane = ("-t", seeded.tenant, "-c", seeded.email)
    seeded.ok("consent", "grant", *jane, *offers_email, *seeded.web_form(seeded.disclosure))
    seeded.ok("consent", "grant", *jane, *reminders_email, "--basis", "service_necessity", *paper)

    # "Unsubscribe from all marketing" stops a topic granted on its own.
    seeded.ok("consent", "withdraw", *jane, "--topic", "all-marketing", "--channel", "email")
    assert decision(seeded.ok("explain", *jane, *offers_email)) == "deny CONSENT_WITHDRAWN"
    assert decision(seeded.ok("explain", *jane, *reminders_email)) == "allow"
    out = seeded.ok("audience", "-t", seeded.tenant, *offers_email)
    assert "0 of 1 contacts may receive it" in out
    assert table_rows(out) == [["CONSENT_WITHDRAWN", "1"]]

    # A marketing-only suppression leaves service messages alone; adding it twice is one block.
    first = seeded.new_id(
        "suppress",
        "add",
        seeded.email,
        "-t",
        seeded.tenant,
        "--channel",
        "email",
        "--scope",
        "marketing",
        "--reason",
        "unsubscribed",
    )
    again = seeded.new_id(
        "suppress",
        "add",
        seeded.email,
        "-t",
        seeded.tenant,
        "--channel",
        "email",
        "--scope",
        "marketing",
        "--reason",
        "unsubscribed",
    )
    assert again == first
    assert decision(seeded.ok("explain", *jane, *reminders_email)) == "allow"
    assert decision(seeded.ok("explain", *jane, *offers_email)).startswith(
        "deny SUPPRESSED_UNSUBSCRIBED"
    )

    # A platform-wide complaint block reaches every tenant and no tenant can lift it.
    platform_id = seeded.new_id(
        "suppress",
        "add",
        seeded.email,
        "--platform",
        "--channel",
        "email",
        "--reason",
        "complaint",
    )
    listed = {row[0]: row for row in table_rows(seeded.ok("suppress", "list", "-t", seeded.tenant))}
    assert listed.keys() == {first, platform_id}
    assert listed[platform_id][3:5] == ["complaint", "platform"]
    assert decision(seeded.ok("explain", *jane, *reminders_email)) == ("deny SUPPRESSED_COMPLAINT")
    seeded.fails("SUPPRESSION_NOT_LIFTABLE", "suppress", "lift", platform_id, "-t", seeded.tenant)
    # An unsubscribe is liftable (the person opted back in through the tenant).
    assert f"lifted {first}" in seeded.ok("suppress", "lift", first, "-t", seeded.tenant)
    assert seeded.ok("verify-ledger").startswith("ok acme: 3 events verified")
