"""Confirmed opt-in from the command line: a request sends the confirmation, stale ones lapse."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import Cli


def _double_opt_in_topic(cli: Cli) -> None:
    cli.ok(
        "topic", "create", "news", "-t", cli.tenant, "--name", "Weekly news",
        "--category", "marketing", "--double-opt-in",
    )  # fmt: skip


def _request(cli: Cli, *extra: str) -> str:
    return cli.ok(
        "consent", "grant", "--requested", "-t", cli.tenant, "-c", cli.email,
        "--topic", "news", "--channel", "email", *cli.web_form(cli.disclosure), *extra,
    )  # fmt: skip


def test_a_request_sends_a_confirmation_and_history_shows_it_pending(seeded: Cli) -> None:
    _double_opt_in_topic(seeded)
    before = seeded.count("captured_messages")
    out = _request(seeded)
    assert "news by email is now pending" in out
    assert "confirmation request sent by email" in out
    assert seeded.count("captured_messages") == before + 1
    assert "Please confirm: Weekly news" in seeded.ok("outbox")
    assert "requested" in seeded.ok("consent", "history", "-t", seeded.tenant, "-c", seeded.email)
    assert "0 pending request(s) lapsed" in seeded.ok("consent", "lapse-pending")


def test_a_request_older_than_the_lifetime_gets_no_confirmation_and_lapses(seeded: Cli) -> None:
    _double_opt_in_topic(seeded)
    before = seeded.count("captured_messages")
    stale = (datetime.now(UTC) - timedelta(days=8)).isoformat()
    out = _request(seeded, "--at", stale)
    assert "confirmation request sent" not in out
    assert seeded.count("captured_messages") == before
    assert "1 pending request(s) lapsed" in seeded.ok("consent", "lapse-pending")
    assert "lapsed" in seeded.ok("consent", "history", "-t", seeded.tenant, "-c", seeded.email)
    assert "0 pending request(s) lapsed" in seeded.ok("consent", "lapse-pending")
