"""``consentry pass`` in-process through typer's CliRunner, on SQLite: an import is asked to
reconfirm, its messages are sent by the worker's drain, and once the deadline has passed
``pass end`` lapses those who did not renew."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import UUID_RE, Cli
from tests.e2e.test_cli_delivery import _shop
from tests.e2e.test_cli_imports import _file, _options

ROWS = "Email,Name,Signed up,IP\nana@example.com,Ana,2026-02-01,203.0.113.9\n"


def test_an_import_is_asked_sent_to_and_lapses_after_its_deadline(cli: Cli, tmp_path: Path) -> None:
    disclosure = _shop(cli, tmp_path)
    cli.ok("sender-domain", "add", "acme.example", "-t", cli.tenant)
    imported = cli.ok("import", _file(tmp_path, ROWS), *_options(cli, disclosure))
    found = UUID_RE.search(imported)
    assert found is not None
    import_id = found.group(0)

    cli.fails(
        "PASS_DEADLINE_INVALID", "pass", "create", "-t", cli.tenant, "--topic", "offers",
        "--import", import_id, "--deadline", "2020-01-01T00:00:00",
    )  # fmt: skip
    deadline = (datetime.now(UTC) + timedelta(seconds=3)).strftime("%Y-%m-%dT%H:%M:%S")
    created = cli.ok(
        "pass", "create", "-t", cli.tenant, "--topic", "offers", "--import", import_id,
        "--deadline", deadline, "--name", "Spring check",
    )  # fmt: skip
    pass_id = UUID_RE.findall(created)[0]
    assert "targeted" in created
    assert "Spring check" in cli.ok("pass", "list", "-t", cli.tenant)
    cli.ok("worker", "--once")  # the reconfirmation leaves
    assert "Do you still want Offers" in cli.ok("outbox")
    status = cli.ok("pass", "status", pass_id, "-t", cli.tenant)
    assert "messages sent" in status
    cli.fails("PASS_NOT_DUE", "pass", "end", pass_id, "-t", cli.tenant)

    time.sleep(max(0.0, (datetime.fromisoformat(deadline + "+00:00") - datetime.now(UTC))
                   .total_seconds()) + 0.5)  # fmt: skip
    out = cli.ok("pass", "end")
    assert f"ended {pass_id}: 1 lapsed" in out
    assert "0 pass(es) ended" in cli.ok("pass", "end")
    history = cli.ok("consent", "history", "-t", cli.tenant, "-c", "ana@example.com")
    assert "lapsed" in history
    assert f"permission_pass:{pass_id}" in history
    assert "ok acme" in cli.ok("verify-ledger")
