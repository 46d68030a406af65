"""``verify-ledger`` against someone with write access to the database file.

The triggers keep the application (and careless scripts) from rewriting the ledger; whoever can
drop them can change rows, and then the hash chain must name the first broken link.
"""

from __future__ import annotations

import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from tests.e2e.conftest import Cli


@contextmanager
def database(cli: Cli) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(cli.db_path, isolation_level=None)
    try:
        yield conn
    finally:
        conn.close()


def grant_three(cli: Cli) -> None:
    """Three consent events for Jane: seq 1, 2 and 3 of the tenant's chain."""
    for topic, channel in (("offers", "email"), ("newsletter", "email"), ("offers", "sms")):
        cli.ok(
            "consent",
            "grant",
            "-t",
            cli.tenant,
            "-c",
            cli.email,
            "--topic",
            topic,
            "--channel",
            channel,
            *cli.web_form(cli.disclosure),
        )
    assert f"ok {cli.tenant}: 3 events verified" in cli.ok("verify-ledger")


def event_seq(conn: sqlite3.Connection, seq: int) -> tuple[str, str]:
    row = conn.execute("SELECT id, action FROM consent_events WHERE seq = ?", (seq,)).fetchone()
    assert row is not None
    return str(uuid.UUID(str(row[0]))), str(row[1])


def test_the_triggers_refuse_changes_while_they_stand(seeded: Cli) -> None:
    grant_three(seeded)
    with database(seeded) as conn:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE consent_events SET action = 'withdrawn' WHERE seq = 2")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM consent_events WHERE seq = 3")
    assert f"ok {seeded.tenant}: 3 events verified" in seeded.ok("verify-ledger")


def test_a_changed_action_is_caught_at_its_seq(seeded: Cli) -> None:
    grant_three(seeded)
    with database(seeded) as conn:
        conn.execute("DROP TRIGGER consent_events_no_update")
        conn.execute("UPDATE consent_events SET action = 'withdrawn' WHERE seq = 2")
        event_id, action = event_seq(conn, 2)
    assert action == "withdrawn"

    result = seeded.run("verify-ledger")

    assert result.exit_code == 2
    assert "error [LEDGER_TAMPERED]" in result.stderr
    assert re.search(r"BROKEN acme: first broken link at seq 2 \(event", result.stderr), (
        result.stderr
    )
    assert f"(event {event_id})" in result.stderr
    assert "content does not match its hash" in result.stderr
    assert "1 events before it verify" in result.stderr
    assert "ok acme" not in result.stdout


def test_deleting_the_newest_event_is_caught(seeded: Cli) -> None:
    grant_three(seeded)
    with database(seeded) as conn:
        conn.execute("DROP TRIGGER consent_events_no_delete")
        conn.execute("DELETE FROM consent_events WHERE seq = 3")
        (remaining,) = conn.execute("SELECT count(*) FROM consent_events").fetchone()
    assert remaining == 2

    result = seeded.run("verify-ledger")

    assert result.exit_code == 2
    assert "error [LEDGER_TAMPERED]" in result.stderr
    assert re.search(r"first broken link at seq 3 \(event", result.stderr), result.stderr
    assert "2 events before it verify" in result.stderr


def test_deleting_an_event_in_the_middle_is_caught(seeded: Cli) -> None:
    grant_three(seeded)
    with database(seeded) as conn:
        conn.execute("DROP TRIGGER consent_events_no_delete")
        conn.execute("DELETE FROM consent_events WHERE seq = 2")

    result = seeded.run("verify-ledger")

    assert result.exit_code == 2
    assert "LEDGER_TAMPERED" in result.stderr
    assert re.search(r"first broken link at seq 3 \(event", result.stderr), result.stderr
    assert "sequence gap" in result.stderr


def test_only_the_tampered_tenant_is_reported(seeded: Cli) -> None:
    seeded.ok(
        "tenant", "create", "other", "--name", "O", "--legal-name", "O Ltd", "--country", "GB"
    )
    seeded.ok("contact", "add", "-t", "other", "--email", "pat@example.net")
    seeded.ok(
        "consent",
        "grant",
        "-t",
        "other",
        "-c",
        "pat@example.net",
        "--topic",
        "all-service",
        "--channel",
        "email",
        "--basis",
        "service_necessity",
        "--method",
        "paper",
        "--actor",
        "desk",
        "--note",
        "card",
    )
    grant_three(seeded)
    with database(seeded) as conn:
        conn.execute("DROP TRIGGER consent_events_no_update")
        conn.execute(
            "UPDATE consent_events SET channel = 'post' WHERE seq = 1 AND tenant_id = "
            "(SELECT id FROM tenants WHERE slug = 'acme')"
        )

    result = seeded.run("verify-ledger")

    assert result.exit_code == 2
    assert "ok other: 1 events verified" in result.stdout
    assert re.search(r"BROKEN acme: first broken link at seq 1 \(event", result.stderr), (
        result.stderr
    )
    assert "1 tenant ledger(s) failed verification" in result.stderr
    # Verifying the untouched tenant alone succeeds.
    assert "ok other: 1 events verified" in seeded.ok("verify-ledger", "--tenant", "other")
    seeded.fails("LEDGER_TAMPERED", "verify-ledger", "--tenant", "acme")


def test_a_projection_that_disagrees_with_the_ledger_is_caught(seeded: Cli) -> None:
    jane = ("-t", seeded.tenant, "-c", seeded.email, "--topic", "offers", "--channel", "email")
    seeded.ok("consent", "grant", *jane, *seeded.web_form(seeded.disclosure))
    seeded.ok("consent", "withdraw", *jane)
    assert "deny CONSENT_WITHDRAWN" in seeded.ok("explain", *jane)
    with database(seeded) as conn:
        # No trigger to drop: the projection is meant to be updated.
        conn.execute("UPDATE consent_states SET status = 'active' WHERE status = 'withdrawn'")

    result = seeded.run("verify-ledger")

    assert result.exit_code == 2, (
        f"verify-ledger passed although the gate now says: {seeded.ok('explain', *jane)}"
    )
    assert "LEDGER_TAMPERED" in result.stderr


def test_an_event_naming_a_contact_the_tenant_does_not_have_is_reported(seeded: Cli) -> None:
    grant_three(seeded)
    with database(seeded) as conn:  # the ledger has no foreign keys; verify-ledger checks
        (contact_id,) = conn.execute("SELECT DISTINCT contact_id FROM consent_events").fetchone()
        conn.execute("PRAGMA foreign_keys = OFF")  # contacts still has keys pointing at it
        conn.execute("UPDATE contacts SET id = ? WHERE id = ?", (uuid.uuid4().hex, contact_id))

    result = seeded.run("verify-ledger")

    assert result.exit_code == 2
    assert "error [LEDGER_TAMPERED]" in result.stderr
    named = str(uuid.UUID(str(contact_id)))
    for seq in (1, 2, 3):
        assert f"REFERENCE acme: event at seq {seq} names contact {named}" in result.stderr
    assert "BROKEN" not in result.stderr  # the chain itself is intact
