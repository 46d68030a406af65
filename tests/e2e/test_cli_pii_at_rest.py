"""Personal data entered through the CLI is not stored in clear in the database files."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Cli


def database_bytes(cli: Cli) -> bytes:
    """The database file and its write-ahead log, as they lie on disk."""
    files = [cli.db_path, Path(f"{cli.db_path}-wal")]
    return b"".join(p.read_bytes() for p in files if p.exists())


def test_contact_and_evidence_personal_data_is_not_in_the_database_file(seeded: Cli) -> None:
    seeded.ok(
        "contact",
        "add",
        "-t",
        seeded.tenant,
        "--name",
        "Zoë Quartermaine",
        "--email",
        "Zoe.Quartermaine@Example.org",
        "--phone",
        "+1 (415) 555-2671",
        "--whatsapp",
        "+1 415 555 2671",
        "--postal-address",
        "221B Baker Street, London",
        "--country",
        "US",
        "--dob",
        "1980-06-15",
    )
    seeded.ok(
        "consent",
        "grant",
        "-t",
        seeded.tenant,
        "-c",
        seeded.email,
        "--topic",
        "offers",
        "--channel",
        "email",
        *seeded.web_form(seeded.disclosure),
    )
    seeded.ok(
        "consent",
        "grant",
        "-t",
        seeded.tenant,
        "-c",
        seeded.email,
        "--topic",
        "reminders",
        "--channel",
        "sms",
        "--basis",
        "service_necessity",
        "--method",
        "paper",
        "--actor",
        "front-desk",
        "--note",
        "Signed by Jane Roe at the counter",
    )
    seeded.ok(
        "suppress", "add", "Zoe.Quartermaine@Example.org", "-t", seeded.tenant, "--channel", "email"
    )
    # The data can be read back through the CLI, so it was stored (sealed), not dropped.
    shown = seeded.ok("contact", "show", "Zoe.Quartermaine@example.org", "-t", seeded.tenant)
    assert "+14155552671" in shown
    assert "1980-06-15" in shown
    assert f"ip={seeded.ip}" in seeded.ok(
        "consent", "history", "-t", seeded.tenant, "-c", seeded.email
    )

    raw = database_bytes(seeded)

    # The business is not personal data and is stored in clear: the bytes read are the right ones.
    assert b"Acme Parts Ltd" in raw
    secrets = [
        seeded.name,
        seeded.email,
        seeded.phone_e164,
        seeded.phone_typed,
        seeded.phone_e164.removeprefix("+"),
        "7400123456",  # the national significant number
        "Zoë Quartermaine",
        "Quartermaine",
        "Zoe.Quartermaine@Example.org",
        "Zoe.Quartermaine@example.org",
        "zoe.quartermaine@example.org",
        "+1 (415) 555-2671",
        "+14155552671",
        "4155552671",
        "221B Baker Street",
        "1980-06-15",
        seeded.ip,
        seeded.user_agent,
        "https://acme.example/signup",
        "Signed by Jane Roe",
    ]
    for secret in secrets:
        for encoded in {secret.encode("utf-8"), secret.encode("utf-16-le")}:
            assert encoded not in raw, f"{secret!r} is stored in clear"
