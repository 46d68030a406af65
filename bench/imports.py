"""Imports on PostgreSQL: 1,000,000 rows with evidence, and memory flat in the file's size.

    .venv/bin/python bench/imports.py [--rows 1000000] [--small 100000] [--keep-files]

A CSV of ``--rows`` people (email, name, sign-up time, sign-up IP; one row in 500 with an invalid
address and one in 500 repeating an earlier address, so the report has work to do) is written to
a temporary directory, streamed. Then, for ``--small`` rows and for ``--rows`` rows, a child
process (this file with ``--child``) imports the file into a fresh database
``consentry_import_bench`` on 127.0.0.1:5432 the way ``consentry import --keep-good-rows`` does:
``import_file.scan`` (hash, decoding, header, row count), ``start_import`` and ``run_import``,
which seals names and addresses (AES-GCM), computes blind indexes, chains a consent event per
row onto the ledger and folds the states, committing each batch of 5,000 rows (from 20,000 rows
on, the rows are prepared in helper processes, one a core up to three, whose peak RSS and CPU
are reported too). Each child
reports its phases and its peak RSS (``ru_maxrss``): memory is flat in the file's size when the
two peaks are close.
The import is then checked like ``consentry verify-ledger`` does for the large run's chain head
(events counted, head sequence equal).

Prints a table and writes bench/results/imports.json; see docs/performance.md, section 6.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

import machine
from consentry.domain.imports import Acquisition, Attestation, OptInMethod
from consentry.domain.model import BusinessProfile, Category, Channel, PolicyKind
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.engine import make_engine
from consentry.persistence.migrate import upgrade
from consentry.persistence.tables import consent_events, consent_states, contacts
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services import import_file, imports
from consentry.services.tenancy import create_tenant, create_topic, draft_policy, publish_policy

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "imports.json"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "consentry_import_bench"
KEYS = FileKeyRing({1: b"\x21" * 32}, 1, b"\x22" * 32)
TENANT = "bench-import"
TARGET_SECONDS = 60.0
FIRST = ("Ana", "Ben", "Chloé", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas")
LAST = ("Alvarez", "Brown", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "O'Brien", "Patel")
DOMAINS = ("example.com", "example.net", "example.org", "mail.example")
console = Console(width=None if sys.stdout.isatty() else 160)


def _url(database: str) -> str:
    return make_url(PG_SERVER).set(database=database).render_as_string(hide_password=False)


def _email(n: int) -> str:
    first, last = FIRST[n % len(FIRST)], LAST[(n // 7) % len(LAST)]
    local = f"{first}.{last}.{n}".replace("é", "e").replace("'", "")
    return f"{local}@{DOMAINS[n % len(DOMAINS)]}"


def write_csv(path: Path, rows: int) -> None:
    """A newsletter tool's export, written row by row."""
    rng = random.Random(6)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Email", "Full name", "Signed up at", "IP address"])
        for n in range(1, rows + 1):
            first, last = FIRST[n % len(FIRST)], LAST[(n // 7) % len(LAST)]
            email = _email(n)
            if n % 500 == 0:
                email = email.replace("@", " at ")  # invalid
            elif n % 500 == 250:
                email = _email(n - 1).upper()  # the row before, in capitals
            when = start + timedelta(seconds=rng.randrange(0, 480 * 86400))
            ip = f"203.0.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
            writer.writerow([email, f"{first} {last}", when.isoformat(), ip])


def fresh_database() -> None:
    admin = create_engine(_url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:  # only ever this benchmark's own database
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()


def _spec(disclosure: Any) -> imports.ImportSpec:
    return imports.ImportSpec(
        topic="newsletter",
        channel=Channel.EMAIL,
        attestation=Attestation(
            source="Newsletter box on every page of the shop",
            opt_in_method=OptInMethod.WEB_FORM,
            collected_from=date(2025, 1, 1),
            collected_to=date(2026, 6, 30),
            acquisition=Acquisition.COLLECTED,
            attested=True,
            attested_by="bench",
            website="https://shop.bench.example/newsletter",
            disclosure_document_id=disclosure,
        ),
        file_name="newsletter.csv",
        mapping={"signup_at": "Signed up at", "signup_ip": "IP address"},
        keep_good_rows=True,
    )


@contextmanager
def _phase(phases: dict[str, float], name: str) -> Any:
    started = time.perf_counter()
    yield
    phases[name] = round(time.perf_counter() - started, 2)


def child(path: Path) -> dict[str, Any]:
    """One import into a fresh database, timed by phase."""
    fresh_database()
    engine = make_engine(_url(DATABASE))
    upgrade(engine)
    new_uow = lambda: SqlUnitOfWork(engine, KEYS)  # noqa: E731
    create_tenant(
        new_uow(), slug=TENANT, name="Bench Shop",
        profile=BusinessProfile(legal_name="Bench Shop Ltd", country="GB"),
    )  # fmt: skip
    create_topic(new_uow(), TENANT, key="newsletter", name="News", category=Category.MARKETING)
    draft = draft_policy(
        new_uow(), TENANT, kind=PolicyKind.CONSENT_DISCLOSURE, title="Newsletter",
        body="Yes, email me the newsletter. Unsubscribe at any time.",
    )  # fmt: skip
    publish_policy(new_uow(), TENANT, draft.id)
    spec = _spec(draft.id)
    phases: dict[str, float] = {}
    total = time.perf_counter()
    with _phase(phases, "scan"), path.open("rb") as stream:
        scanned = import_file.scan(
            stream, channel=spec.channel, mapping=spec.mapping, max_bytes=1 << 40
        )
    cpu_before, busy_before = _own_cpu(), machine.busy_seconds()
    with _phase(phases, "import"):
        record = imports.start_import(new_uow(), TENANT, spec, scanned)

        @contextmanager
        def opener() -> Any:
            with path.open("rb") as stream:
                yield stream

        outcome = imports.run_import(new_uow, TENANT, record.id, opener)
        outcome.close()
    own_cpu = _own_cpu() - cpu_before
    busy = machine.busy_seconds() - busy_before
    phases["total"] = round(time.perf_counter() - total, 2)
    with engine.connect() as conn:
        rows = {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (contacts, consent_events, consent_states)
        }
    with new_uow() as uow:
        head_seq, _ = uow.ledger.head(record.tenant_id)
    engine.dispose()
    return {
        "rows": scanned.rows,
        "file_bytes": scanned.size,
        "status": outcome.status.value,
        "counts": asdict(outcome.counts),
        "phases_s": phases,
        "db_rows": rows,
        "chain_head_seq": head_seq,
        # CPU of the import phase: this process and its helpers, and the whole machine (the
        # difference is PostgreSQL's, and whatever else ran), in microseconds a row.
        "cpu_us_per_row": {
            "importer": round(own_cpu / scanned.rows * 1e6, 1),
            "machine": round(busy / scanned.rows * 1e6, 1),
        },
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # the largest of the helper processes that prepared the rows (0: none ran)
        "helper_peak_rss_mb": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1
        ),
    }


def _own_cpu() -> float:
    """User and system CPU seconds of this process and of the helper processes it has
    reaped."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    helpers = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + helpers.ru_utime + helpers.ru_stime


def run_child(path: Path) -> dict[str, Any]:
    done = subprocess.run(  # noqa: S603  (this file, with fixed arguments)
        [sys.executable, __file__, "--child", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"the import child failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--child", type=Path)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(child(args.child)))
        return
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="consentry-import-bench-") as tmp:
        for rows in (args.small, args.rows):
            path = Path(tmp) / f"list-{rows}.csv"
            started = time.perf_counter()
            write_csv(path, rows)
            console.log(f"{rows:,} rows written in {time.perf_counter() - started:.1f} s")
            result = run_child(path)
            console.log(f"{rows:,} rows imported: {result['phases_s']}")
            runs.append(result)
            path.unlink()
    table = Table("rows", "file MB", "scan s", "import s", "total s", "rows/s", "imported",
                  "errors", "skipped", "peak RSS MB", "helper RSS MB", "importer CPU µs/row",
                  "machine CPU µs/row", title="imports into PostgreSQL")  # fmt: skip
    for r in runs:
        table.add_row(
            f"{r['rows']:,}", f"{r['file_bytes'] / 1e6:.0f}", f"{r['phases_s']['scan']:.1f}",
            f"{r['phases_s']['import']:.1f}", f"{r['phases_s']['total']:.1f}",
            f"{r['rows'] / r['phases_s']['total']:,.0f}", f"{r['counts']['imported']:,}",
            f"{r['counts']['errors']:,}", f"{r['counts']['skipped']:,}", f"{r['peak_rss_mb']}",
            f"{r['helper_peak_rss_mb']}", f"{r['cpu_us_per_row']['importer']:.0f}",
            f"{r['cpu_us_per_row']['machine']:.0f}",
        )  # fmt: skip
    console.print(table)
    big = runs[-1]
    console.print(
        f"target: {args.rows:,} rows within {TARGET_SECONDS:.0f} s: "
        f"{'met' if big['phases_s']['total'] <= TARGET_SECONDS else 'NOT met'} "
        f"({big['phases_s']['total']:.1f} s); load average {machine.load_average()}"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    engine = make_engine(_url("postgres"))
    RESULTS.write_text(
        json.dumps(
            {"machine": machine.describe(), "postgres": machine.postgres_version(engine),
             "runs": runs, "load_average": machine.load_average()},
            indent=2,
        )
        + "\n"
    )  # fmt: skip
    engine.dispose()


if __name__ == "__main__":
    main()
