"""The system under test for ``api_load.py``: a seeded PostgreSQL database and the HTTP server.

The database ``consentry_api_bench`` holds the demo tenant plus ``contacts`` people, each with
service consent by email and every second one with express marketing consent, all written
through the real services (the ledger and its hash chain are what the writes contend on). It is
built once, copied to ``consentry_api_bench_seeded``, and restored from that copy before each
run while its spec matches, so that every run starts from the seeded state (a one-click run
withdraws real consents only while they stand); its data directory (the key file that seals the
contacts) lives beside it in ``bench/.data/api``. The server is ``consentry serve`` in a
subprocess of its own, with the rate limit lifted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, func, select, text
from sqlalchemy.engine import make_url

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.access import Role
from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, Evidence
from consentry.domain.model import Channel, PolicyKind
from consentry.persistence.migrate import head_revision
from consentry.persistence.tables import consent_events, contacts
from consentry.services.access import issue_api_key, local_operator
from consentry.services.clock import utcnow
from consentry.services.consent import ConsentRequest, record_consent
from consentry.services.contacts import ContactInput, add_contact
from consentry.services.demo import DEMO_SLUG, seed_demo

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data" / "api"
META = BENCH_DIR / ".data" / "api.json"
PG_ADMIN_URL = os.environ.get(
    "CONSENTRY_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
DATABASE = "consentry_api_bench"
SEED_VERSION = 1  # bump when the seed below changes

Log = Callable[[str], None]


def database_url() -> str:
    return make_url(PG_ADMIN_URL).set(database=DATABASE).render_as_string(hide_password=False)


def _settings() -> Settings:
    return Settings(data_dir=DATA_DIR, database_url=database_url())


def _spec(contacts_count: int) -> dict[str, Any]:
    return {"contacts": contacts_count, "seed": SEED_VERSION, "migration": head_revision()}


def _recreate_database() -> None:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()


TEMPLATE = f"{DATABASE}_seeded"


def _copy_database(source: str, target: str) -> None:
    """``target`` dropped and made again as a copy of ``source`` (a file copy in the server)."""
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)'))
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
            {"d": source},
        )
        conn.execute(text(f'CREATE DATABASE "{target}" TEMPLATE "{source}"'))
    admin.dispose()


def _database_exists(name: str) -> bool:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        found = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": name}
        ).first()
    admin.dispose()
    return found is not None


def _no_synchronous_commit(dbapi_connection: Any, _record: Any) -> None:
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO off")
    dbapi_connection.commit()


def _person(n: int) -> ContactInput:
    # 617-2xx-xxxx: valid US numbers by phonenumbers' rules, one per person.
    return ContactInput(
        email=f"person{n}@bench.example",
        phone=f"+1 617 {200 + n // 10_000:03d} {n % 10_000:04d}",
        country="US",
        time_zone="America/New_York",
    )


def _seed(container: Container, contacts_count: int, log: Log) -> None:
    seed_demo(container.uow)
    with container.read_uow() as uow:
        tenant = uow.tenants.by_slug(DEMO_SLUG)
        disclosure = next(d for d in uow.policies.list(tenant.id, PolicyKind.CONSENT_DISCLOSURE)).id
    earlier = utcnow() - timedelta(days=30)
    service = Evidence(method=ConsentMethod.API, actor="bench seed")
    form = Evidence(
        method=ConsentMethod.WEB_FORM,
        source="https://harbourauto.example/signup",
        ip_address="203.0.113.24",
        user_agent="Mozilla/5.0 (bench)",
        policy_document_id=disclosure,
    )
    started = time.perf_counter()
    for n in range(contacts_count):
        contact = str(add_contact(container.uow(), DEMO_SLUG, _person(n)).id)
        grants = [("all-service", ConsentBasis.SERVICE_NECESSITY, service)]
        if n % 2 == 0:
            grants.append(("promotions", ConsentBasis.EXPRESS, form))
        for topic, basis, evidence in grants:
            record_consent(
                container.uow(),
                DEMO_SLUG,
                ConsentRequest(
                    contact, topic, Channel.EMAIL, ConsentAction.GRANTED, basis, evidence, earlier
                ),
            )
        if (n + 1) % 2000 == 0:
            log(f"seeded {n + 1:,} of {contacts_count:,} contacts")
    log(f"seeded {contacts_count:,} contacts in {time.perf_counter() - started:.0f} s")


@dataclass
class Seeded:
    contact_ids: list[str]
    emailable_ids: list[str]  # consent by email needs an email address
    token: str
    reused: bool
    rows: dict[str, int]


def prepare(contacts_count: int, *, rebuild: bool, log: Log, restore: bool = True) -> Seeded:
    """The seeded database (built, or restored as seeded from its template copy, or with
    ``restore`` false reused as the last run left it) and a fresh tenant-operator API key for
    the run."""
    wanted = _spec(contacts_count)
    reused = not rebuild and META.exists() and json.loads(META.read_text()) == wanted
    if reused:
        try:
            container = bootstrap(_settings())
        except Exception as exc:  # noqa: BLE001  (a missing or broken cache is rebuilt)
            log(f"cached database unusable ({type(exc).__name__}); rebuilding")
            reused = False
    if not reused:
        log(f"building {DATABASE} with {contacts_count:,} extra contacts")
        META.unlink(missing_ok=True)
        shutil.rmtree(DATA_DIR, ignore_errors=True)
        _recreate_database()
        container = bootstrap(_settings(), create_keys=True)
        # Seeding only: a crash would lose the cache, not the measurement.
        event.listen(container.engine, "connect", _no_synchronous_commit)
        container.engine.dispose()
        _seed(container, contacts_count, log)
        container.close()
        # Kept as a template: every later run starts from the seeded state, so the opt-outs
        # and consent writes of one run do not change what the next one measures.
        _copy_database(DATABASE, TEMPLATE)
        container = bootstrap(_settings())
        META.write_text(json.dumps(wanted))
    elif restore and _database_exists(TEMPLATE):
        container.close()
        _copy_database(TEMPLATE, DATABASE)
        container = bootstrap(_settings())
        log(f"restored {DATABASE} from {TEMPLATE}, as seeded (pass --rebuild to seed again)")
    else:
        log(f"reusing {DATABASE} as the last run left it (delete {META.relative_to(BENCH_DIR)} "
            "or pass --rebuild)")  # fmt: skip
    try:
        issued = issue_api_key(
            container.uow(),
            local_operator(),
            tenant_slug=DEMO_SLUG,
            name="api load benchmark",
            role=Role.TENANT_OPERATOR,
        )
        with container.engine.connect() as conn:
            found = conn.execute(
                select(contacts.c.id, contacts.c.email_key.is_not(None))
                .where(contacts.c.tenant_id == issued.record.tenant_id)
                .where(contacts.c.erased_at.is_(None))
                .order_by(contacts.c.id)
            ).all()
            contact_ids = [str(i) for i, _ in found]
            emailable = [str(i) for i, has_email in found if has_email]
            rows = {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (contacts, consent_events)
            }
    finally:
        container.close()
    return Seeded(contact_ids, emailable, issued.token, reused, rows)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``consentry serve --workers N`` on 127.0.0.1 in its own process group."""

    def __init__(self, workers: int, log_path: Path) -> None:
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        command = [
            str(Path(sys.executable).with_name("consentry")),
            "--data-dir",
            str(DATA_DIR),
            "--database-url",
            database_url(),
            "serve",
            "--workers",
            str(self.workers),
            "--port",
            str(self.port),
        ]
        env = {
            **os.environ,
            # The limiter is per process and per key; lift it, it is not what is measured.
            "CONSENTRY_API_RATE_PER_SECOND": "1000000",
            "CONSENTRY_API_RATE_BURST": "1000000",
        }
        with self.log_path.open("wb") as out:
            self._process = subprocess.Popen(  # noqa: S603  (fixed command, our own venv)
                command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server was not ready within {timeout:.0f} s; see {self.log_path}")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        os.killpg(self._process.pid, signal.SIGINT)  # uvicorn shuts its workers down
        try:
            self._process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()

    def cpu_seconds(self) -> dict[str, dict[int, float]]:
        """CPU used so far by each of the server's processes and this database's backends.

        Per process, so that a caller can subtract two readings process by process: pooled
        connections above the pool size come and go during a run, and a backend that exited
        in between is left out (its last share goes uncounted) instead of making a sum shrink.
        """
        return {"server": _cpu(self._tree()), "postgres": _cpu(_backends_of(DATABASE))}

    def _tree(self) -> list[int]:
        if self._process is None:
            return []
        parents = _parents()
        found, frontier = [self._process.pid], [self._process.pid]
        while frontier:
            frontier = [pid for pid, parent in parents.items() if parent in frontier]
            found += frontier
        return found


def _parents() -> dict[int, int]:
    out = {}
    for path in Path("/proc").glob("[0-9]*/stat"):
        try:
            out[int(path.parent.name)] = int(path.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
    return out


def _backends_of(database: str) -> list[int]:
    marker = f" {database} ".encode()
    out = []
    for path in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            cmdline = path.read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres:") and marker in cmdline:
            out.append(int(path.parent.name))
    return out


def _cpu(pids: list[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime+stime
    return out


def cpu_between(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds used between two readings by the processes alive at the second."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
