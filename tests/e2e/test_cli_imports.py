"""``consentry import`` in-process through typer's CliRunner, on SQLite."""

from __future__ import annotations

import csv
from pathlib import Path

from tests.e2e.conftest import CLEAN_ENV, Cli

from consentry.cli.app import app

ROWS = (
    "Email,Name,Signed up,IP\n"
    "ana@example.com,Ana,2026-02-01,203.0.113.9\n"
    'ben@example.org,"Ben\nOkafor",2026-02-02,198.51.100.7\n'
    "=1+2,=SUM(A1:A9),2026-02-03,203.0.113.10\n"
)


def _options(cli: Cli, disclosure: str, *extra: str) -> list[str]:
    return [
        "-t", cli.tenant, "--topic", "offers", "--channel", "email",
        "--source", "Sign-up box on acme.example", "--opt-in-method", "web_form",
        "--collected-from", "2026-01-01", "--collected-to", "2026-03-31",
        "--website", "https://acme.example/signup", "--disclosure", disclosure, "--attest",
        "--map", "signup_at=Signed up", *extra,
    ]  # fmt: skip


def _file(tmp_path: Path, text: str = ROWS, name: str = "list.csv") -> str:
    path = tmp_path / name
    path.write_bytes(text.encode())
    return str(path)


def test_an_import_with_errors_is_atomic_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    disclosure = cli.setup_tenant()
    before = cli.counts()
    result = cli.run("import", _file(tmp_path), *_options(cli, disclosure))
    assert result.exit_code == 1
    assert "INVALID_EMAIL" in result.stdout
    assert "nothing was imported" in result.stderr
    after = cli.counts()
    for table in ("contacts", "consent_events", "consent_states", "chain_heads.seq"):
        assert after[table] == before[table], table
    assert after["imports"] == before["imports"] + 1  # the attempt and its report are kept
    assert after["import_issues"] == before["import_issues"] + 1


def test_keep_good_rows_imports_the_rest_and_the_report_export_is_neutralised(
    cli: Cli, tmp_path: Path
) -> None:
    disclosure = cli.setup_tenant()
    report = tmp_path / "report.csv"
    out = cli.ok(
        "import", _file(tmp_path), *_options(cli, disclosure, "--keep-good-rows", "--report",
                                             str(report)),
    )  # fmt: skip
    assert "INVALID_EMAIL" in out
    assert cli.count("contacts") == 2
    rows = list(csv.reader(report.read_text(encoding="utf-8").splitlines()))
    assert rows[0] == ["line", "field", "code", "severity", "message", "value"]
    assert rows[1][:4] == ["5", "email", "INVALID_EMAIL", "error"]
    assert rows[1][5] == "'=1+2"  # a formula in a cell is exported as text
    history = cli.ok("consent", "history", "-t", cli.tenant, "-c", "ben@example.org")
    assert "import" in history
    assert "ok acme" in cli.ok("verify-ledger")


def test_a_dry_run_writes_nothing_at_all(cli: Cli, tmp_path: Path) -> None:
    disclosure = cli.setup_tenant()
    before = cli.counts()
    out = cli.ok("import", _file(tmp_path), *_options(cli, disclosure, "--dry-run",
                                                      "--keep-good-rows"))  # fmt: skip
    assert "dry run: nothing was written" in out
    assert cli.counts() == before


def test_a_bought_list_is_refused(cli: Cli, tmp_path: Path) -> None:
    disclosure = cli.setup_tenant()
    before = cli.counts()
    err = cli.fails(
        "IMPORT_LIST_REFUSED", "import", _file(tmp_path),
        *_options(cli, disclosure, "--acquisition", "bought"),
    )  # fmt: skip
    assert "bought" in err
    assert cli.counts() == before


def test_without_the_attestation_nothing_is_imported(cli: Cli, tmp_path: Path) -> None:
    disclosure = cli.setup_tenant()
    options = [o for o in _options(cli, disclosure) if o != "--attest"]
    cli.fails("ATTESTATION_INCOMPLETE", "import", _file(tmp_path), *options)


def test_bad_files_get_clear_errors_and_write_nothing(cli: Cli, tmp_path: Path) -> None:
    disclosure = cli.setup_tenant()
    before = cli.counts()
    latin = tmp_path / "latin.csv"
    latin.write_bytes(
        "email,name,Signed up\nana@example.com,Ana,\nzoe@example.com,Zo\xeb,\n".encode("latin-1")
    )
    err = cli.fails("IMPORT_ENCODING", "import", str(latin), *_options(cli, disclosure))
    assert "line 3" in err
    no_header = _file(tmp_path, "ana@example.com,Ana\nben@example.org,Ben\n", "noheader.csv")
    err = cli.fails("IMPORT_HEADER", "import", no_header, *_options(cli, disclosure))
    assert "looks like data" in err
    no_email = _file(tmp_path, "name,phone,Signed up\nAna,+447400123456,\n", "noemail.csv")
    err = cli.fails("IMPORT_HEADER", "import", no_email, *_options(cli, disclosure))
    assert "no email column" in err
    big = _file(tmp_path, "email,Signed up\n" + "someone@example.com,\n" * 70_000, "big.csv")
    result = cli.runner.invoke(
        app,
        ["--data-dir", str(cli.data_dir), "import", big, *_options(cli, disclosure)],
        env={**CLEAN_ENV, "CONSENTRY_IMPORT_MAX_BYTES": "1048576"},
    )
    assert result.exit_code == 2
    assert "IMPORT_TOO_LARGE" in result.stderr
    assert cli.counts() == before
    # A latin-1 file imports when its encoding is named.
    cli.ok("import", str(latin), *_options(cli, disclosure, "--encoding", "latin-1"))
    assert cli.count("contacts") == before["contacts"] + 2


def test_a_confirmed_opt_in_topic_is_left_pending(cli: Cli, tmp_path: Path) -> None:
    disclosure = cli.setup_tenant()
    options = _options(cli, disclosure, "--keep-good-rows")
    options[options.index("offers")] = "newsletter"
    captured = cli.count("captured_messages")
    out = cli.ok("import", _file(tmp_path), *options)
    assert "are pending" in out
    # Both good rows are asked to confirm, once, by email.
    assert "confirmation requests sent: 2" in out
    assert "not sent (no longer pending, or blocked): 0" in out
    assert cli.count("captured_messages") == captured + 2
    assert "Please confirm" in cli.ok("outbox")
    import_id = out.split("import ", 1)[1].split()[0]
    again = cli.ok("consent", "send-confirmations", "-t", cli.tenant, "--import", import_id)
    assert "confirmation requests sent: 2" in again  # both still pending
    bad = cli.run("consent", "send-confirmations", "-t", cli.tenant, "--import", "nope")
    assert bad.exit_code != 0
    explained = cli.ok(
        "explain", "-t", cli.tenant, "-c", "ana@example.com", "--topic", "newsletter",
        "--channel", "email",
    )  # fmt: skip
    assert "CONSENT_PENDING" in explained
