"""The ``consentry`` command run in-process, one data directory (SQLite) per test."""

from __future__ import annotations

import re
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from consentry.cli.app import app

# Settings come from options here, never from the environment of whoever runs the tests; a wide
# terminal keeps Rich from wrapping ids and reason codes across table lines.
CLEAN_ENV: dict[str, str | None] = {
    "COLUMNS": "250",
    "LINES": "200",
    "NO_COLOR": "1",
    "FORCE_COLOR": None,
    "TTY_COMPATIBLE": None,
    "CONSENTRY_DATA_DIR": None,
    "CONSENTRY_DATABASE_URL": None,
    "CONSENTRY_MASTER_KEY": None,
    "CONSENTRY_INDEX_KEY": None,
    "CONSENTRY_KEY_FILE": None,
    "CONSENTRY_SQL_ECHO": None,
}

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ERROR_RE = re.compile(r"^error \[([A-Z_]+)\] ", re.MULTILINE)

DISCLOSURE_TEXT = "Yes, Acme Parts may email and text me offers. Reply STOP to opt out.\n"


@dataclass
class Cli:
    """Runs ``consentry --data-dir <dir> ...`` and checks the exit code, plus the setup most
    tests share: a business in Great Britain (whose default rule pack has no quiet hours, so
    SMS marketing decisions do not depend on the time of day the tests run at) and one person."""

    runner: CliRunner
    data_dir: Path
    disclosure: str = ""  # id of the published disclosure, once set up
    jane_id: str = ""  # id of the contact, once added

    tenant = "acme"
    name = "Jane Roe"
    email = "jane.roe@example.com"
    phone_typed = "07400 123456"
    phone_e164 = "+447400123456"
    ip = "203.0.113.9"
    user_agent = "Mozilla/5.0 (X11; e2e)"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "consentry.db"

    def run(self, *args: str) -> Result:
        return self.runner.invoke(
            app, ["--data-dir", str(self.data_dir), *args], env=CLEAN_ENV, catch_exceptions=False
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.exit_code == 0, (
            f"consentry {' '.join(args)} exited {result.exit_code}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        return result.stdout

    def fails(self, code: str, *args: str) -> str:
        """Run a command that must be refused with the stable error ``code``; return stderr."""
        result = self.run(*args)
        assert result.exit_code == 2, (
            f"consentry {' '.join(args)} exited {result.exit_code}, expected 2\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        assert ERROR_RE.findall(result.stderr) == [code], result.stderr
        return result.stderr

    def count(self, table: str) -> int:
        """Rows in ``table``, read straight from the database file."""
        return self.counts()[table]

    def counts(self) -> dict[str, int]:
        """Rows per table, and how far the ledger chains have advanced, read straight from the
        database file: equal before and after a command means it wrote nothing."""
        conn = sqlite3.connect(self.db_path)
        try:
            tables = [
                str(r[0])
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
                )
            ]
            found = {
                t: int(conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables
            }
            found["chain_heads.seq"] = int(
                conn.execute("SELECT coalesce(sum(seq), 0) FROM chain_heads").fetchone()[0]
            )
        finally:
            conn.close()
        return found

    def setup_tenant(self) -> str:
        """A tenant with a service topic, two marketing topics (one double opt-in) and a
        published consent disclosure; returns the disclosure's id."""
        self.ok(
            "tenant",
            "create",
            self.tenant,
            "--name",
            "Acme Parts",
            "--legal-name",
            "Acme Parts Ltd",
            "--country",
            "GB",
        )
        for key, category, extra in (
            ("reminders", "service", ()),
            ("offers", "marketing", ()),
            ("newsletter", "marketing", ("--double-opt-in",)),
        ):
            out = self.ok(
                "topic",
                "create",
                key,
                "-t",
                self.tenant,
                "--name",
                key.title(),
                "--category",
                category,
                *extra,
            )
            assert f"topic {key} ({category}) created" in out
        text = self.data_dir.parent / "disclosure.txt"
        text.write_text(DISCLOSURE_TEXT, encoding="utf-8")
        return self.new_id(
            "policy",
            "publish",
            str(text),
            "-t",
            self.tenant,
            "--kind",
            "consent_disclosure",
            "--title",
            "Offers consent",
        )

    def new_id(self, *args: str) -> str:
        """Run a command that reports what it created; return the first id it prints."""
        out = self.ok(*args)
        found = UUID_RE.search(out)
        assert found is not None, out
        return found.group(0)

    def add_jane(self, *extra: str) -> str:
        return self.new_id(
            "contact",
            "add",
            "-t",
            self.tenant,
            "--name",
            self.name,
            "--email",
            self.email,
            "--phone",
            self.phone_typed,
            "--country",
            "GB",
            "--time-zone",
            "Europe/London",
            *extra,
        )

    def web_form(self, disclosure: str) -> list[str]:
        """Options for complete web-form evidence citing ``disclosure``."""
        return [
            "--method",
            "web_form",
            "--source",
            "https://acme.example/signup",
            "--ip",
            self.ip,
            "--user-agent",
            self.user_agent,
            "--disclosure",
            disclosure,
        ]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """An empty data directory."""
    return Cli(CliRunner(), tmp_path / "data")


@pytest.fixture(scope="session")
def _seeded_template(tmp_path_factory: pytest.TempPathFactory) -> Cli:
    template = Cli(CliRunner(), tmp_path_factory.mktemp("seeded") / "data")
    template.disclosure = template.setup_tenant()
    template.jane_id = template.add_jane()
    return template


@pytest.fixture
def seeded(_seeded_template: Cli, tmp_path: Path) -> Cli:
    """A data directory of its own holding the tenant, its topics, the published disclosure and
    Jane (copied from one set up through the CLI once per test run, to keep the suite fast)."""
    data_dir = tmp_path / "data"
    shutil.copytree(_seeded_template.data_dir, data_dir)
    return Cli(
        CliRunner(),
        data_dir,
        disclosure=_seeded_template.disclosure,
        jane_id=_seeded_template.jane_id,
    )
