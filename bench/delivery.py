"""Delivery on PostgreSQL: planning a 1,000,000-recipient campaign, and email dispatch end to end.

    .venv/bin/python bench/delivery.py [--only plan|dispatch] [--contacts 1000000] [--rebuild]
                                       [--plan-runs 3] [--planning-connections 2]
                                       [--dispatch-recipients 20000]
                                       [--windows 32,128] [--batches 500,2000] [--dkim off,on]
                                       [--smtp-connections 8] [--workers 1,2] [--profile]
                                       [--profile-recipients 5000]

**Planning.** A tenant with ``--contacts`` people, each with an email address and active express
consent to marketing email on the topic "promotions", some of them suppressed, a registered
sender domain and a marketing email template. ``services.campaigns.launch_campaign`` (content
review, the set-based ``INSERT ... SELECT`` of ``SqlDeliveries.plan``, queueing, commit) is timed
end to end, and ``SqlDeliveries.plan`` and each SQL statement inside it on their own. One untimed
run warms the caches; ``deliveries`` is truncated before each run. A large audience is planned
in parts on up to ``--planning-connections`` connections at once
(``CONSENTRY_PLANNING_CONNECTIONS``; 1: one statement), and the statement times shown are summed
over the parts.

**Dispatch.** For every combination of DKIM (off / on), window and batch size, a campaign to a list
of ``--dispatch-recipients`` eligible contacts is launched, then a separate worker process (this
file with ``--dispatch-child``) builds a ``Dispatcher`` the way a worker does
(``consentry.bootstrap`` from ``CONSENTRY_*`` settings, ``CONSENTRY_EMAIL_CHANNEL=smtp``) and runs
``run_until_idle`` against a local SMTP sink in a third process: Postfix's ``smtp-sink`` when it is
installed, else a minimal aiosmtpd server (on uvloop) that accepts and discards every message.
Reported: sent messages per second of wall time, the worker's peak RSS (``ru_maxrss``) and the CPU
seconds of the worker, of its PostgreSQL backends and of the sink. ``--profile`` adds, per DKIM
setting, two runs of ``--profile-recipients`` messages under cProfile (main thread and sending
threads): one timed by the wall clock (waits included), one by each thread's CPU time.
``--workers 1,2`` runs each combination with that many worker processes on the one campaign, as a
deployment runs several (each claims its own batches); they start sending together, the rate is
over the time from the first start to the last end, CPU seconds are summed and the peak RSS is
the largest worker's.

The database ``consentry_delivery_bench`` on 127.0.0.1:5432 is built on the first run (about four
minutes) and reused while its spec matches (a comment on the database); ``--rebuild`` recreates it.
Prints tables and writes bench/results/delivery.json; see docs/performance.md, section 4.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import cProfile
import hashlib
import inspect
import json
import os
import pstats
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url

import machine
import pg_load
from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.model import BusinessProfile, Category, Channel, PointKind
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.deliveries import SqlDeliveries
from consentry.persistence.engine import make_engine
from consentry.persistence.migrate import head_revision, upgrade
from consentry.persistence.tables import (
    consent_events,
    consent_states,
    contacts,
    suppressions,
    tenants,
)
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.campaigns import CampaignInput, create_campaign, launch_campaign
from consentry.services.messages import TemplateInput, create_template, register_sender_domain
from consentry.services.tenancy import create_tenant, create_topic

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "delivery.json"
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATABASE = "consentry_delivery_bench"
WORKER_APP = "consentry-delivery-bench-worker"  # application_name of the worker's connections
TENANT_SLUG = "bench-retail"
TOPIC_KEY = "promotions"
TEMPLATE_NAME = "winter-offers"
PLAIN_DOMAIN = "news.bench-retail.example"  # no DKIM key
SIGNED_DOMAIN = "mail.bench-retail.example"  # DKIM, RSA-2048
DKIM_SELECTOR = "cs2026"
PUBLIC_BASE_URL = "https://prefs.bench-retail.example"
MASTER_KEY, INDEX_KEY = b"\x11" * 32, b"\x12" * 32
KEYS = FileKeyRing({1: MASTER_KEY}, 1, INDEX_KEY)

PLAN_TARGET_SECONDS = 5.0
DISPATCH_TARGET_PER_SECOND = 3000.0
RSS_TARGET_MB = 250.0

SEED_START = datetime(2023, 1, 9, 8, 0, tzinfo=UTC)  # contacts were created over ~3 years
SEED_SPACING_MS = 90_000
UNSUBSCRIBED = 0.02  # share of contacts with a tenant unsubscribe (marketing scope)
HARD_BOUNCED = 0.005  # share of contacts with a platform-wide hard bounce
OTHER_SUPPRESSIONS = 25_000  # platform-wide entries for addresses of other tenants' contacts

FIRST = ("Ana", "Ben", "Chloé", "Dev", "Elena", "Farid", "Grace", "Hugo", "Ines", "Jonas",
         "Kai", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tomás",
         "Uma", "Viktor", "Wen", "Yusuf", "Zoe")  # fmt: skip
LAST = ("Alvarez", "Brown", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
        "Johnson", "Kowalski", "Lima", "Miller", "Nguyen", "O'Brien", "Patel", "Rossi", "Smith",
        "Tanaka", "Williams")  # fmt: skip
ASCII_LOCAL = str.maketrans({"é": "e", "á": "a", "'": None})  # addresses stay ASCII
MAIL_DOMAINS = ("example.com", "example.net", "example.org", "mail.example")
TIME_ZONES = (("America/New_York", 30), ("America/Chicago", 22), ("America/Denver", 7),
              ("America/Phoenix", 3), ("America/Los_Angeles", 24), ("America/Anchorage", 1),
              ("Pacific/Honolulu", 1), (None, 12))  # fmt: skip

TEMPLATE = TemplateInput(
    name=TEMPLATE_NAME,
    topic=TOPIC_KEY,
    channel=Channel.EMAIL,
    subject="{{ contact.first_name }}, winter tyres and batteries are 20% off this week",
    text=(
        "Hello {{ contact.first_name }},\n\n"
        + "Winter is coming early this year. Until Sunday every winter tyre, battery and wiper "
        "blade in our shop is 20% off, fitting included at any of our 40 service points. "
        "Book a slot online and skip the queue.\n\n" * 4 + "Thank you for shopping with us.\n"
    ),
    html=(
        "<html><body><table width='100%'><tr><td>"
        "<h1>Hello {{ contact.first_name }}</h1>"
        + "<p style='font-family:Arial,sans-serif;font-size:15px'>Winter is coming early this "
        "year. Until Sunday every <b>winter tyre, battery and wiper blade</b> in our shop is "
        "20% off, fitting included at any of our 40 service points. "
        "<a href='https://shop.bench-retail.example/winter'>Book a slot online</a> and skip "
        "the queue.</p>"
        * 4
        + "<p>Thank you for shopping with us.</p></td></tr></table></body></html>"
    ),
)

console = Console(width=None if sys.stdout.isatty() else 160)
Log = Callable[[str], None]


def _log(message: str) -> None:
    console.log(message)


def _url(database: str, **query: str) -> str:
    url = make_url(PG_SERVER).set(database=database, query=query)
    return url.render_as_string(hide_password=False)


# ---------------------------------------------------------------- the database


def _seed_version() -> str:
    """A digest of the code that decides what the database holds."""
    digest = hashlib.sha256()
    for part in (_seed_services, _contact_rows, _seed_sql, pg_load.consent_states_sql):
        digest.update(inspect.getsource(part).encode())
    digest.update(repr((TEMPLATE, FIRST, LAST, MAIL_DOMAINS, TIME_ZONES)).encode())
    digest.update(repr((UNSUBSCRIBED, HARD_BOUNCED, OTHER_SUPPRESSIONS, KEYS.digest("k"))).encode())
    return digest.hexdigest()[:16]


def _spec(contacts_count: int) -> dict[str, Any]:
    return {"contacts": contacts_count, "seed": _seed_version(), "migration": head_revision()}


def _row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (contacts, consent_events, consent_states, suppressions)
        }


def _seed_services(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    """Tenant, topic, sender domains and template, through the real services."""
    new_uow = lambda: SqlUnitOfWork(engine, KEYS)  # noqa: E731
    tenant = create_tenant(
        new_uow(),
        slug=TENANT_SLUG,
        name="Bench Retail",
        now=SEED_START,
        profile=BusinessProfile(
            legal_name="Bench Retail Inc.",
            country="US",
            postal_address="100 Commerce Way, Springfield, IL 62701",
            contact_email="hello@bench-retail.example",
        ),
    )
    topic = create_topic(
        new_uow(), TENANT_SLUG, key=TOPIC_KEY, name="Promotions", category=Category.MARKETING,
        now=SEED_START,
    )  # fmt: skip
    register_sender_domain(new_uow(), TENANT_SLUG, PLAIN_DOMAIN)
    register_sender_domain(new_uow(), TENANT_SLUG, SIGNED_DOMAIN, dkim_selector=DKIM_SELECTOR)
    create_template(new_uow(), TENANT_SLUG, TEMPLATE)
    return tenant.id, topic.id


def _uuid7(millis: int, n: int) -> uuid.UUID:
    rand = int.from_bytes(hashlib.md5(n.to_bytes(8, "big"), usedforsecurity=False).digest()[:10])
    value = (millis & ((1 << 48) - 1)) << 80 | 0x7 << 76 | ((rand >> 68) & 0xFFF) << 64
    return uuid.UUID(int=value | 0b10 << 62 | rand & ((1 << 62) - 1))


def _contact_rows(tenant_id: uuid.UUID, wrapped: bytes, count: int) -> Iterator[tuple[Any, ...]]:
    """Rows as ``SqlContactRepository.add`` writes them: AES-GCM sealed name and address under
    the tenant's data key, the email blind index over the lower-cased address."""
    zones = [zone for zone, weight in TIME_ZONES for _ in range(weight)]
    start_ms = int(SEED_START.timestamp() * 1000)
    for n in range(1, count + 1):
        first, last = FIRST[n % len(FIRST)], LAST[(n // len(FIRST)) % len(LAST)]
        local = f"{first}.{last}.{n}".translate(ASCII_LOCAL)
        email = f"{local}@{MAIL_DOMAINS[n % len(MAIL_DOMAINS)]}"
        millis = start_ms + n * SEED_SPACING_MS
        created = datetime.fromtimestamp(millis / 1000, UTC)
        yield (
            _uuid7(millis, n),
            tenant_id,
            f"crm-{n}",
            KEYS.encrypt(tenant_id, wrapped, "contacts.name", f"{first} {last}"),
            KEYS.encrypt(tenant_id, wrapped, "contacts.email", email),
            KEYS.blind_index(PointKind.EMAIL, email.lower()),
            "US",
            zones[(n * 7919) % len(zones)],
            "en-US",
            False,
            created,
            created,
        )


def _die(tag: str, threshold: float) -> str:
    """A condition true for a deterministic ``threshold`` share of contacts."""
    die = f"('x' || substr(md5('{tag}:' || c.id::text), 1, 8))::bit(32)::bigint"
    return f"{die} < {int(threshold * 2**32)}"


def _seed_sql(tenant_id: uuid.UUID, topic_id: uuid.UUID) -> list[tuple[str, str]]:
    """One granted express consent event per contact, the states folded from them
    (``pg_load.consent_states_sql``), and suppressions."""
    event_id = pg_load._uuid7(  # the eligibility loader's UUIDv7, in SQL
        "(extract(epoch FROM c.created_at) * 1000)::bigint + 3600000", "md5('ev:' || c.id::text)"
    )
    events = f"""
    INSERT INTO consent_events (id, tenant_id, seq, contact_id, point_key, topic_id, channel,
        action, basis, method, occurred_at, recorded_at, prev_hash, hash)
    SELECT {event_id}, c.tenant_id, row_number() OVER (ORDER BY c.id), c.id, c.email_key,
        '{topic_id}', 'email', 'granted', 'express', 'import',
        c.created_at + interval '1 hour', c.created_at + interval '1 hour',
        repeat('0', 64), md5('h1:' || c.id::text) || md5('h2:' || c.id::text)
    FROM contacts c WHERE c.tenant_id = '{tenant_id}'
    """
    suppressed = f"""
    INSERT INTO suppressions (id, tenant_id, point_key, channel, scope, reason, source,
        created_at)
    SELECT gen_random_uuid(), CASE WHEN unsub THEN '{tenant_id}'::uuid END, email_key, 'email',
        CASE WHEN unsub THEN 'marketing' ELSE 'all' END,
        CASE WHEN unsub THEN 'unsubscribed' ELSE 'hard_bounce' END, 'bench',
        created_at + interval '30 days'
    FROM (SELECT c.email_key, c.created_at, {_die("unsub", UNSUBSCRIBED)} AS unsub,
                 {_die("bounce", HARD_BOUNCED)} AS bounce
          FROM contacts c WHERE c.tenant_id = '{tenant_id}') x
    WHERE unsub OR bounce
    """
    others = f"""
    INSERT INTO suppressions (id, tenant_id, point_key, channel, scope, reason, source,
        created_at)
    SELECT gen_random_uuid(), NULL, decode(md5('other:' || j), 'hex'), 'email', 'all',
        CASE WHEN j % 4 = 0 THEN 'complaint' ELSE 'hard_bounce' END, 'bench',
        timestamptz '{SEED_START.isoformat()}' + j * interval '1 hour'
    FROM generate_series(1, {OTHER_SUPPRESSIONS}) AS j
    """
    return [
        ("consent_events", events),
        ("consent_states", pg_load.consent_states_sql(tenant_id)),
        ("suppressions", suppressed),
        ("other suppressions", others),
    ]


def _copy_contacts(engine: Engine, tenant_id: uuid.UUID, count: int, log: Log) -> float:
    started = time.perf_counter()
    with engine.connect() as conn:
        wrapped = conn.execute(select(tenants.c.data_key).where(tenants.c.id == tenant_id))
        data_key = wrapped.scalar_one()
        raw = conn.connection.driver_connection
        columns = ("id, tenant_id, external_ref, name_enc, email_enc, email_key, country, "
                   "time_zone, locale, age_attested, created_at, updated_at")  # fmt: skip
        with raw.cursor() as cursor, cursor.copy(f"COPY contacts ({columns}) FROM STDIN") as copy:
            for i, row in enumerate(_contact_rows(tenant_id, data_key, count), 1):
                copy.write_row(row)
                if i % 200_000 == 0:
                    log(f"contacts: {i:,} sealed and copied")
        raw.commit()
    return time.perf_counter() - started


def _pg_meta(admin: Engine, database: str = DATABASE) -> tuple[bool, dict[str, Any] | None]:
    """Whether ``database`` exists, and the JSON in its comment (its spec and row counts)."""
    with admin.connect() as conn:
        row = conn.execute(
            text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = :name"
            ),
            {"name": database},
        ).first()
    if row is None:
        return False, None
    return True, None if row[0] is None else dict(json.loads(row[0]))


def prepare_database(
    database: str,
    wanted: dict[str, Any],
    *,
    rebuild: bool,
    log: Log,
    row_counts: Callable[[Engine], dict[str, int]],
    seed_services: Callable[[Engine], tuple[uuid.UUID, uuid.UUID]],
    copy_contacts: Callable[[Engine, uuid.UUID], float],
    seed_sql: Callable[[uuid.UUID, uuid.UUID], list[tuple[str, str]]],
) -> tuple[Engine, dict[str, Any]]:
    """A benchmark's own database, reused while its spec (a comment on the database) and row
    counts match; else dropped and built: migrations, ``seed_services`` (tenant and topic ids),
    ``copy_contacts`` (seconds), each step of ``seed_sql``, then ``VACUUM (ANALYZE)``."""
    admin = create_engine(_url("postgres"), isolation_level="AUTOCOMMIT")
    exists, meta = _pg_meta(admin, database)
    if exists and not rebuild and meta is not None and meta.get("spec") == wanted:
        engine = make_engine(_url(database))
        if row_counts(engine) == meta.get("counts"):
            log(f"reusing database {database}")
            admin.dispose()
            return engine, {**meta, "reused": True}
        engine.dispose()
    with admin.connect() as conn:
        if exists:  # only ever this benchmark's own database
            conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    engine = make_engine(_url(database))
    started = time.perf_counter()
    upgrade(engine)
    tenant_id, topic_id = seed_services(engine)
    seconds = {"contacts": copy_contacts(engine, tenant_id)}
    log(f"contacts: copied in {seconds['contacts']:.1f} s")
    with engine.connect() as conn:
        for name, sql in seed_sql(tenant_id, topic_id):
            step = time.perf_counter()
            rows = conn.execute(text(sql)).rowcount
            conn.commit()
            seconds[name] = time.perf_counter() - step
            log(f"{name}: {rows:,} rows in {seconds[name]:.1f} s")
    step = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM (ANALYZE)")
    seconds["vacuum_analyze"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - started
    meta = {"spec": wanted, "counts": row_counts(engine), "load_seconds": seconds}
    with admin.connect() as conn:
        conn.execute(text(f"COMMENT ON DATABASE \"{database}\" IS '{json.dumps(meta)}'"))
    admin.dispose()
    log(f"built {database} in {seconds['total']:.1f} s: {meta['counts']}")
    return engine, {**meta, "reused": False}


def prepare(contacts_count: int, *, rebuild: bool, log: Log) -> tuple[Engine, dict[str, Any]]:
    """The benchmark database, reused when its spec and row counts match."""
    return prepare_database(
        DATABASE,
        _spec(contacts_count),
        rebuild=rebuild,
        log=log,
        row_counts=_row_counts,
        seed_services=_seed_services,
        copy_contacts=lambda engine, tenant_id: _copy_contacts(
            engine, tenant_id, contacts_count, log
        ),
        seed_sql=_seed_sql,
    )


def _reset(engine: Engine) -> None:
    """No deliveries and no campaigns: every run starts from the same state."""
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE deliveries")
        conn.exec_driver_sql("DELETE FROM campaigns")


def _dispatch_list(engine: Engine, recipients: int) -> str:
    """A contact list of the first ``recipients`` contacts that nothing suppresses."""
    name = f"dispatch-{recipients}"
    with engine.begin() as conn:
        tenant_id = conn.execute(
            select(tenants.c.id).where(tenants.c.slug == TENANT_SLUG)
        ).scalar_one()
        found = conn.execute(
            text("SELECT id FROM contact_lists WHERE tenant_id = :t AND name = :n"),
            {"t": tenant_id, "n": name},
        ).first()
        if found is not None:
            return name
        list_id = uuid.uuid4()
        conn.execute(
            text("INSERT INTO contact_lists (id, tenant_id, name, created_at) "
                 "VALUES (:id, :t, :n, now())"),
            {"id": list_id, "t": tenant_id, "n": name},
        )  # fmt: skip
        conn.execute(
            text(
                "INSERT INTO contact_list_members (list_id, contact_id) "
                "SELECT :id, c.id FROM contacts c WHERE c.tenant_id = :t AND NOT EXISTS ("
                "  SELECT 1 FROM suppressions s WHERE s.point_key = c.email_key) "
                "ORDER BY c.id LIMIT :n"
            ),
            {"id": list_id, "t": tenant_id, "n": recipients},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("ANALYZE contact_list_members")
    return name


# ---------------------------------------------------------------- 1. planning


class StatementTimer:
    """Each statement's server round trip (cursor execute to its return), while capturing."""

    def __init__(self, engine: Engine) -> None:
        self.entries: list[tuple[str, float]] = []
        self._engine = engine
        self._active = False
        self._started: dict[int, float] = {}
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, _conn: Any, cursor: Any, *_: Any) -> None:
        if self._active:
            self._started[id(cursor)] = time.perf_counter()

    def _after(self, _conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        started = self._started.pop(id(cursor), None)
        if self._active and started is not None:
            self.entries.append((" ".join(statement.split())[:70], time.perf_counter() - started))

    @contextmanager
    def capture(self) -> Iterator[list[tuple[str, float]]]:
        self.entries = []
        self._active = True
        try:
            yield self.entries
        finally:
            self._active = False

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)
        event.remove(self._engine, "after_cursor_execute", self._after)


@contextmanager
def _timed_plan() -> Iterator[list[float]]:
    """Times ``SqlDeliveries.plan`` while open (the benchmark's wrapper, restored after)."""
    original = SqlDeliveries.plan
    seconds: list[float] = []

    def plan(self: SqlDeliveries, *args: Any, **kwargs: Any) -> dict[str, int]:
        started = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - started)

    SqlDeliveries.plan = plan  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        SqlDeliveries.plan = original  # type: ignore[method-assign]


def _classify(statement: str) -> str:
    if statement.startswith(("INSERT INTO deliveries", "WITH written AS (INSERT INTO deliveries")):
        return "insert_select"  # on PostgreSQL, counted from its RETURNING in the same statement
    if statement.startswith("UPDATE deliveries SET status"):
        return "queue_update"
    if statement.startswith("SELECT deliveries.status, deliveries.reasons"):
        return "plan_counts"
    if statement.startswith("SELECT deliveries.status, count"):
        return "progress_counts"
    return "other"


def _plan_once(container: Container, timer: StatementTimer, name: str) -> dict[str, Any]:
    campaign = create_campaign(
        container.uow(),
        TENANT_SLUG,
        CampaignInput(name=name, topic=TOPIC_KEY, template=TEMPLATE_NAME,
                      from_address=f"offers@{PLAIN_DOMAIN}"),
        actor="bench",
    )  # fmt: skip
    review_seconds: list[float] = []
    composer = container.composer()

    def review(*args: Any) -> Any:
        started = time.perf_counter()
        try:
            return composer.reviewer(*args)
        finally:
            review_seconds.append(time.perf_counter() - started)

    with _timed_plan() as plan_seconds, timer.capture() as sent:
        started = time.perf_counter()
        progress = launch_campaign(container.uow(), TENANT_SLUG, str(campaign.id), review)
        elapsed = time.perf_counter() - started
    by_kind: dict[str, float] = {}
    for statement, seconds in sent:
        kind = _classify(statement)
        by_kind[kind] = by_kind.get(kind, 0.0) + seconds
    return {
        "launch_seconds": elapsed,
        "plan_seconds": plan_seconds[0],
        "review_seconds": review_seconds[0],
        "statements": len(sent),
        "statement_seconds": by_kind,
        "outside_statements_seconds": elapsed - sum(by_kind.values()),
        "plan_counts": progress.campaign.plan_counts,
        "by_status": progress.by_status,
    }


def measure_planning(engine: Engine, container: Container, runs: int, log: Log) -> dict[str, Any]:
    timer = StatementTimer(engine)
    stamp = datetime.now(UTC).strftime("%H%M%S")
    load_before = machine.load_average()
    done: list[dict[str, Any]] = []
    try:
        for i in range(runs + 1):
            _reset(engine)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("CHECKPOINT")  # no checkpoint left over from the last run
            run = _plan_once(container, timer, f"plan-{stamp}-{i}")
            run["load_average"] = machine.load_average()
            run["warmup"] = i == 0
            done.append(run)
            log(
                f"planning {'warm-up' if i == 0 else f'run {i}'}: launch_campaign "
                f"{run['launch_seconds']:.2f} s (plan {run['plan_seconds']:.2f} s, INSERT ... "
                f"SELECT {run['statement_seconds'].get('insert_select', 0):.2f} s, queueing "
                f"{run['statement_seconds'].get('queue_update', 0):.2f} s), {run['by_status']}"
            )
    finally:
        timer.close()
        _reset(engine)
    timed = [r for r in done if not r["warmup"]]
    launch = [r["launch_seconds"] for r in timed]
    plan = [r["plan_seconds"] for r in timed]
    return {
        "runs": done,
        "launch": {"best": min(launch), "median": statistics.median(launch)},
        "plan": {"best": min(plan), "median": statistics.median(plan)},
        "target_seconds": PLAN_TARGET_SECONDS,
        "met": statistics.median(launch) <= PLAN_TARGET_SECONDS,
        "load_average": {"before": load_before, "after": machine.load_average()},
    }


# ---------------------------------------------------------------- 2. dispatch: the sink


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def run_sink(port: int) -> None:
    """``--sink PORT``: accept every message and discard it (aiosmtpd on uvloop)."""
    import asyncio

    from aiosmtpd.smtp import SMTP

    class Discard:
        async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:  # noqa: N802  (aiosmtpd's hook name)
            return "250 2.0.0 Ok: discarded"

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            lambda: SMTP(Discard(), hostname="sink.bench.example", enable_SMTPUTF8=True),
            "127.0.0.1",
            port,
            backlog=512,
        )
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:
        asyncio.run(serve())


@contextmanager
def smtp_sink() -> Iterator[dict[str, Any]]:
    port = _free_port()
    postfix = Path("/usr/sbin/smtp-sink")
    if postfix.exists():
        # smtp-sink refuses to run as root without a user to drop to.
        user = ["-u", "nobody"] if os.geteuid() == 0 else []
        kind, command = "postfix smtp-sink", [str(postfix), *user, f"127.0.0.1:{port}", "1000"]
    else:
        console.print(
            "Postfix's smtp-sink is not installed ([bold]apt-get install postfix[/] provides "
            "/usr/sbin/smtp-sink); using a minimal aiosmtpd sink instead."
        )
        kind, command = (
            "aiosmtpd (uvloop), discards",
            [sys.executable, __file__, "--sink", str(port)],
        )
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603  (fixed commands)
    try:
        _wait_for(port)
        yield {"kind": kind, "port": port, "pid": process.pid}
    finally:
        process.terminate()
        process.wait(10)


def _process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- 2. dispatch: the worker process


def _profiler(timer: str) -> cProfile.Profile:
    """Wall-clock time (waits included), or the calling thread's own CPU time."""
    return cProfile.Profile(time.thread_time) if timer == "cpu" else cProfile.Profile()


def _profile_threads(timer: str) -> list[cProfile.Profile]:
    """A profiler for each thread started from now on (the dispatcher's sending threads)."""
    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def start(*_: Any) -> None:
        profile = _profiler(timer)
        with lock:
            profiles.append(profile)
        profile.enable()  # replaces this hook for the calling thread

    threading.setprofile(start)
    return profiles


def _code_key(function: Any) -> tuple[str, int, str]:
    code = function.__code__
    return code.co_filename, code.co_firstlineno, code.co_name


def _profile_buckets(container: Container) -> tuple[dict[str, Any], dict[str, Any]]:
    """Functions whose cumulative time says where the worker spends it: (main thread, senders)."""
    import smtplib
    from concurrent.futures import Future

    from consentry.channels import smtp
    from consentry.persistence.campaigns import SqlCampaigns
    from consentry.persistence.contacts import SqlContactRepository
    from consentry.persistence.eligibility import SqlGateQueries
    from consentry.persistence.fences import SqlFences
    from consentry.services.compose.dkim import DkimSigner
    from consentry.services.compose.email import EmailComposer
    from consentry.services.compose.templates import CompiledTemplate
    from consentry.services.compose.tokens import UnsubscribeTokens
    from consentry.services.dispatch import Dispatcher
    from consentry.services.outbound import OutboundComposer

    dialect = type(container.engine.dialect)
    main = {
        "compose (OutboundComposer.compose)": OutboundComposer.compose,
        "  render the template (CompiledTemplate.render)": CompiledTemplate.render,
        "  unsubscribe token (UnsubscribeTokens.mint)": UnsubscribeTokens.mint,
        "  MIME message (EmailComposer.compose)": EmailComposer.compose,
        "    DKIM signature (DkimSigner.sign)": DkimSigner.sign,
        "  campaign row, every message (SqlCampaigns.get)": SqlCampaigns.get,
        "  blind index (SqlContactRepository.point_key)": SqlContactRepository.point_key,
        "claim a batch (SqlDeliveries.claim)": SqlDeliveries.claim,
        "contacts, decrypted (SqlContactRepository.many)": SqlContactRepository.many,
        "opt-out fence (SqlFences.shared)": SqlFences.shared,
        "window's intent (Dispatcher._intent_of)": Dispatcher._intent_of,
        "gate for the window (SqlGateQueries.eligibility; calls: rows)": SqlGateQueries.eligibility,
        "mark sending (SqlDeliveries.mark_sending)": SqlDeliveries.mark_sending,
        "wait for the window's sends (Future.result)": Future.result,
        "record outcomes (SqlDeliveries.record)": SqlDeliveries.record,
        "SQL: execute (one round trip each)": dialect.do_execute,
        "SQL: executemany": dialect.do_executemany,
        "SQL: commit": dialect.do_commit,
        "SQL: rollback (read-only units of work)": dialect.do_rollback,
        "SQL: pool pre-ping": dialect.do_ping,
    }
    senders = {
        "SmtpChannel.send": smtp.SmtpChannel.send,
        "  wait for a pooled connection (_Pool.take)": smtp._Pool.take,
        "  MAIL FROM": smtplib.SMTP.mail,
        "  RCPT TO": smtplib.SMTP.rcpt,
        "  DATA": smtplib.SMTP.data,
    }
    return main, senders


def _bucket_seconds(stats: pstats.Stats, buckets: dict[str, Any]) -> dict[str, Any]:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    out: dict[str, Any] = {}
    for label, function in buckets.items():
        _cc, calls, own, cumulative, _callers = raw.get(_code_key(function), (0, 0, 0.0, 0.0, {}))
        out[label] = {"seconds": cumulative, "own_seconds": own, "calls": calls}
    return out


def _top(stats: pstats.Stats, limit: int = 25) -> list[dict[str, Any]]:
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:limit]
    return [
        {
            "function": f"{Path(filename).name}:{line}({name})",
            "calls": nc,
            "own_seconds": tt,
            "cumulative_seconds": ct,
        }
        for (filename, line, name), (_cc, nc, tt, ct, _callers) in rows
    ]


def _backend_cpu(container: Container, application_name: str = WORKER_APP) -> float:
    """CPU seconds of the PostgreSQL backends serving connections with this application name."""
    with container.engine.connect() as conn:
        pids = conn.execute(
            text("SELECT pid FROM pg_stat_activity WHERE application_name = :app"),
            {"app": application_name},
        ).scalars()
        return sum(_process_cpu(pid) for pid in pids)


def dispatch_child(spec_path: str) -> None:
    """``--dispatch-child SPEC``: a worker process. Settings come from CONSENTRY_* variables;
    the spec names the campaign, the profiling, and optionally the ``application_name`` of the
    worker's database connections (default ``WORKER_APP``)."""
    spec = json.loads(Path(spec_path).read_text())
    container = bootstrap(Settings(), migrate=False)
    dispatcher = container.dispatcher()
    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    before = resource.getrusage(resource.RUSAGE_SELF)
    profile = _profiler(spec["timer"]) if spec["profile"] else None
    threads: list[cProfile.Profile] = []
    if profile is not None:
        threads = _profile_threads(spec["timer"])
        profile.enable()
    if spec.get("wait_for_go"):  # several workers: all start together (see run_workers)
        print("ready", flush=True)
        sys.stdin.readline()
    started_at = time.time()
    started, main_started = time.perf_counter(), time.thread_time()
    report = dispatcher.run_until_idle(uuid.UUID(spec["campaign_id"]))
    wall, main_cpu = time.perf_counter() - started, time.thread_time() - main_started
    if profile is not None:
        profile.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
    # The sending threads end here, so each thread's profiler sees its calls return on its own
    # clock (stats taken from a running thread would close them with this thread's clock).
    dispatcher.close()
    after = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, Any] = {
        "wall_seconds": wall,
        "started_at": started_at,
        "ended_at": started_at + wall,
        "claimed": report.claimed,
        "sent": report.sent,
        "refused": report.refused,
        "deferred": report.deferred,
        "failed": report.failed,
        "retried": report.retried,
        "worker_cpu_seconds": (after.ru_utime - before.ru_utime)
        + (after.ru_stime - before.ru_stime),
        # The main thread claims, checks, composes and records; the rest of the worker's CPU
        # is its sending threads'.
        "main_thread_cpu_seconds": main_cpu,
        "peak_rss_mb": after.ru_maxrss / 1024,
        "rss_before_run_mb": baseline_kb / 1024,
        "backend_cpu_seconds": _backend_cpu(container, spec.get("application_name", WORKER_APP)),
        "settings": {
            "delivery_window": dispatcher.config.window,
            "delivery_batch_size": dispatcher.config.batch_size,
            "smtp_connections": container.settings.smtp_connections,
        },
    }
    if profile is not None:
        main_buckets, send_buckets = _profile_buckets(container)
        main = pstats.Stats(profile)
        main.dump_stats(spec["profile"] + "-main.prof")
        out["profile"] = {
            "timer": "thread CPU time" if spec["timer"] == "cpu" else "wall clock",
            "main_total_seconds": main.total_tt,  # type: ignore[attr-defined]
            "main": _bucket_seconds(main, main_buckets),
            "top": _top(main),
        }
        if threads:
            sends = pstats.Stats(threads[0])
            for other in threads[1:]:
                sends.add(other)
            sends.dump_stats(spec["profile"] + "-send-threads.prof")
            out["profile"]["send_threads_total_seconds"] = sends.total_tt  # type: ignore[attr-defined]
            out["profile"]["send_threads"] = _bucket_seconds(sends, send_buckets)
            out["profile"]["send_threads_top"] = _top(sends, 12)
    container.close()
    print(json.dumps(out))


# ---------------------------------------------------------------- 2. dispatch: the orchestrator


_SUMMED = ("claimed", "sent", "refused", "deferred", "failed", "retried", "worker_cpu_seconds",
           "main_thread_cpu_seconds", "backend_cpu_seconds")  # fmt: skip


def _start_worker(stack: contextlib.ExitStack, script: str, spec: dict[str, Any],
                  env: dict[str, str], *, application_name: str, n: int,
                  workers: int) -> tuple[subprocess.Popen[str], IO[str]]:  # fmt: skip
    """Worker ``n`` of ``workers`` (its connections named apart when there are several) and the
    file its standard error goes to; killed when ``stack`` closes if it is still running then."""
    name = application_name if workers == 1 else f"{application_name}-{n}"
    child_env = dict(env)
    child_env["CONSENTRY_DATABASE_URL"] = env["CONSENTRY_DATABASE_URL"].replace(
        f"application_name={application_name}", f"application_name={name}"
    )
    child_spec = {**spec, "application_name": name, "wait_for_go": workers > 1}
    spec_file = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".json"))  # noqa: SIM115  (closed by the stack)
    json.dump(child_spec, spec_file)
    spec_file.flush()
    # A file, not a pipe: a worker that logs a lot cannot block on it.
    errors = stack.enter_context(tempfile.TemporaryFile("w+"))  # noqa: SIM115  (closed by the stack)
    process = subprocess.Popen(  # noqa: S603  (this bench's own script, fixed arguments)
        [sys.executable, script, "--dispatch-child", spec_file.name],
        env=child_env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    stack.callback(_kill_if_running, process)
    return process, errors


def _kill_if_running(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait()


def _read_back(errors: IO[str]) -> str:
    errors.seek(0)
    return errors.read()


def run_workers(script: str, spec: dict[str, Any], env: dict[str, str], workers: int,
                application_name: str) -> dict[str, Any]:  # fmt: skip
    """``workers`` worker processes (``script --dispatch-child``) on one campaign, as a
    deployment runs several: each claims its own batches (``FOR UPDATE SKIP LOCKED``). They
    start sending together once every one has bootstrapped; the wall time runs from the first
    start to the last end, counts and CPU seconds are summed (each worker's PostgreSQL backends
    apart, through their own ``application_name``), the peak RSS is the largest worker's."""
    with contextlib.ExitStack() as stack:
        children = [
            _start_worker(
                stack, script, spec, env, application_name=application_name, n=n, workers=workers
            )
            for n in range(workers)
        ]
        if workers > 1:
            for process, errors in children:
                if process.stdout is None or process.stdout.readline().strip() != "ready":
                    raise RuntimeError(f"a worker did not start:\n{_read_back(errors)[-4000:]}")
            for process, _ in children:
                if process.stdin is not None:
                    process.stdin.write("go\n")
                    process.stdin.flush()
        results = []
        for process, errors in children:
            out, _ = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"a worker failed:\n{_read_back(errors)[-4000:]}")
            results.append(json.loads(out.strip().splitlines()[-1]))
    if workers == 1:
        return dict(results[0])
    merged: dict[str, Any] = {key: sum(r[key] for r in results) for key in _SUMMED}
    merged["wall_seconds"] = max(r["ended_at"] for r in results) - min(
        r["started_at"] for r in results
    )
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    merged["rss_before_run_mb"] = max(r["rss_before_run_mb"] for r in results)
    merged["settings"] = results[0]["settings"]
    merged["per_worker"] = results
    return merged


def _launch_dispatch(container: Container, list_name: str, dkim: bool, name: str) -> str:
    domain = SIGNED_DOMAIN if dkim else PLAIN_DOMAIN
    campaign = create_campaign(
        container.uow(),
        TENANT_SLUG,
        CampaignInput(name=name, topic=TOPIC_KEY, template=TEMPLATE_NAME, list=list_name,
                      from_address=f"offers@{domain}"),
        actor="bench",
    )  # fmt: skip
    progress = launch_campaign(
        container.uow(), TENANT_SLUG, str(campaign.id), container.composer().reviewer
    )
    if set(progress.by_status) != {"queued"}:
        raise RuntimeError(f"the dispatch campaign did not plan as expected: {progress.by_status}")
    return str(campaign.id)


def _worker_env(sink_port: int, window: int, batch: int, connections: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(
        CONSENTRY_DATABASE_URL=_url(DATABASE, application_name=WORKER_APP),
        CONSENTRY_MASTER_KEY=base64.b64encode(MASTER_KEY).decode(),
        CONSENTRY_INDEX_KEY=base64.b64encode(INDEX_KEY).decode(),
        CONSENTRY_DATA_DIR=tempfile.gettempdir(),
        CONSENTRY_PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        CONSENTRY_EMAIL_CHANNEL="smtp",
        CONSENTRY_SMTP_URLS=f"smtp://127.0.0.1:{sink_port}",
        CONSENTRY_SMTP_CONNECTIONS=str(connections),
        CONSENTRY_DELIVERY_WINDOW=str(window),
        CONSENTRY_DELIVERY_BATCH_SIZE=str(batch),
    )
    return env


def _dispatch_once(
    container: Container,
    sink: dict[str, Any],
    config: dict[str, Any],
    profile: str | None = None,
    timer: str = "wall",
) -> dict[str, Any]:
    campaign_id = _launch_dispatch(container, config["list"], config["dkim"], config["name"])
    env = _worker_env(sink["port"], config["window"], config["batch"], config["connections"])
    spec = {"campaign_id": campaign_id, "profile": profile, "timer": timer}
    load_before = machine.load_average()
    sink_before = _process_cpu(sink["pid"])
    workers = 1 if profile else config.get("workers", 1)
    result = run_workers(__file__, spec, env, workers, WORKER_APP)
    result["sink_cpu_seconds"] = _process_cpu(sink["pid"]) - sink_before
    result["per_second"] = result["sent"] / result["wall_seconds"]
    result["load_average"] = {"before": load_before, "after": machine.load_average()}
    return {**config, **result}


def _profile_runs(engine: Engine, container: Container, sink: dict[str, Any],
                  args: argparse.Namespace, stamp: str, *, log: Log) -> dict[str, Any]:  # fmt: skip
    """Per DKIM setting, the first window and batch size profiled twice: wall clock (where the
    time goes, waits included) and each thread's CPU time (what the process computes)."""
    RESULTS.parent.mkdir(exist_ok=True)
    recipients = min(args.profile_recipients, args.dispatch_recipients)
    list_name = _dispatch_list(engine, recipients)
    profiles: dict[str, Any] = {}
    for dkim in args.dkim:
        for timer in ("wall", "cpu"):
            config = {"dkim": dkim == "on", "window": args.windows[0], "batch": args.batches[0],
                      "list": list_name, "connections": args.smtp_connections,
                      "name": f"profile-{stamp}-{dkim}-{timer}"}  # fmt: skip
            _reset(engine)
            path = str(RESULTS.parent / f"delivery-profile-dkim-{dkim}-{timer}")
            name = f"DKIM {dkim}, {'wall clock' if timer == 'wall' else 'thread CPU time'}"
            profiles[name] = _dispatch_once(container, sink, config, path, timer)
            log(f"profiled {name}: {profiles[name]['per_second']:,.0f}/s (under the profiler)")
    return profiles


def measure_dispatch(engine: Engine, container: Container, args: argparse.Namespace,
                     log: Log) -> dict[str, Any]:  # fmt: skip
    list_name = _dispatch_list(engine, args.dispatch_recipients)
    stamp = datetime.now(UTC).strftime("%H%M%S")
    runs: list[dict[str, Any]] = []
    profiles: dict[str, Any] = {}
    with smtp_sink() as sink:
        log(f"SMTP sink: {sink['kind']} on port {sink['port']}")
        configs = [
            {"dkim": dkim == "on", "window": window, "batch": batch, "workers": workers}
            for dkim in args.dkim
            for workers in args.workers
            for window in args.windows
            for batch in args.batches
        ]
        for i, config in enumerate(configs):
            config.update(list=list_name, connections=args.smtp_connections,
                          name=f"dispatch-{stamp}-{i}")  # fmt: skip
            _reset(engine)
            run = _dispatch_once(container, sink, config)
            runs.append(run)
            log(
                f"dispatch: DKIM {'on' if run['dkim'] else 'off'}, {run['workers']} worker(s), "
                f"window {run['window']}, batch {run['batch']}: {run['sent']:,} sent in "
                f"{run['wall_seconds']:.2f} s = {run['per_second']:,.0f}/s, "
                f"peak RSS {run['peak_rss_mb']:.0f} MB"
            )
        if args.profile:
            profiles = _profile_runs(engine, container, sink, args, stamp, log=log)
    _reset(engine)
    return {
        "sink": sink["kind"],
        "recipients": args.dispatch_recipients,
        "runs": runs,
        "profiles": profiles,
        "target_per_second": DISPATCH_TARGET_PER_SECOND,
        "rss_target_mb": RSS_TARGET_MB,
    }


# ---------------------------------------------------------------- output


def _print_planning(result: dict[str, Any], contacts_count: int) -> None:
    table = Table(
        title=f"Planning a campaign to {contacts_count:,} contacts (PostgreSQL, "
        f"{result['planning_connections']} connection(s) at most; statement seconds are summed "
        "over the parts planned at once)"
    )
    for column in ("run", "launch_campaign s", "plan() s", "INSERT…SELECT s", "plan counts s",
                   "queue UPDATE s", "review s", "other s", "by status"):  # fmt: skip
        table.add_column(column, justify="left" if column in {"run", "by status"} else "right")
    for i, run in enumerate(result["runs"]):
        s = run["statement_seconds"]
        table.add_row(
            "warm-up" if run["warmup"] else str(i),
            f"{run['launch_seconds']:.2f}",
            f"{run['plan_seconds']:.2f}",
            f"{s.get('insert_select', 0):.2f}",
            f"{s.get('plan_counts', 0):.2f}",
            f"{s.get('queue_update', 0):.2f}",
            f"{run['review_seconds']:.3f}",
            f"{run['launch_seconds'] - run['plan_seconds'] - run['review_seconds']:.2f}",
            ", ".join(f"{k} {v:,}" for k, v in sorted(run["by_status"].items())),
        )
    console.print(table)
    verdict = "MET" if result["met"] else "MISSED"
    console.print(
        f"launch_campaign best {result['launch']['best']:.2f} s, median "
        f"{result['launch']['median']:.2f} s (target ≤ {PLAN_TARGET_SECONDS:.0f} s: "
        f"[bold]{verdict}[/]); SqlDeliveries.plan best {result['plan']['best']:.2f} s, median "
        f"{result['plan']['median']:.2f} s"
    )


def _print_dispatch(result: dict[str, Any]) -> None:
    table = Table(
        title=f"Email dispatch, {result['recipients']:,} recipients, SMTP sink: {result['sink']}"
    )
    for column in ("DKIM", "workers", "window", "batch", "sent", "wall s", "messages/s",
                   "peak RSS MB",
                   "CPU s worker", "of which main thread", "worker CPU ms/message",
                   "CPU s PostgreSQL", "CPU s sink", "load before"):  # fmt: skip
        table.add_column(column, justify="right")
    for run in result["runs"]:
        table.add_row(
            "on" if run["dkim"] else "off",
            str(run.get("workers", 1)),
            str(run["window"]),
            str(run["batch"]),
            f"{run['sent']:,}",
            f"{run['wall_seconds']:.2f}",
            f"{run['per_second']:,.0f}",
            f"{run['peak_rss_mb']:.0f}",
            f"{run['worker_cpu_seconds']:.1f}",
            f"{run.get('main_thread_cpu_seconds', 0.0):.1f}",
            f"{1000 * run['worker_cpu_seconds'] / max(run['sent'], 1):.2f}",
            f"{run['backend_cpu_seconds']:.1f}",
            f"{run['sink_cpu_seconds']:.1f}",
            f"{run['load_average']['before'][0]:.2f}",
        )
    console.print(table)
    best = max(result["runs"], key=lambda r: r["per_second"])
    rss = max(r["peak_rss_mb"] for r in result["runs"])
    console.print(
        f"best {best['per_second']:,.0f} messages/s (target ≥ {DISPATCH_TARGET_PER_SECOND:,.0f}: "
        f"[bold]{'MET' if best['per_second'] >= DISPATCH_TARGET_PER_SECOND else 'MISSED'}[/]); "
        f"highest peak RSS {rss:.0f} MB (target < {RSS_TARGET_MB:.0f} MB: "
        f"[bold]{'MET' if rss < RSS_TARGET_MB else 'MISSED'}[/])"
    )
    for name, run in result["profiles"].items():
        _print_profile(name, run)


def _print_profile(name: str, run: dict[str, Any]) -> None:
    profile = run["profile"]
    total = profile["main_total_seconds"]
    table = Table(
        title=f"cProfile, {name}, window {run['window']}, batch {run['batch']}: "
        f"{run['sent']:,} sent in {run['wall_seconds']:.2f} s under the profiler; main thread "
        f"{total:.1f} s, send threads {profile.get('send_threads_total_seconds', 0):.1f} s"
    )
    for column in ("worker main thread: cumulative", "seconds", "share", "calls"):
        table.add_column(column, justify="left" if column.startswith("worker") else "right")
    for label, bucket in profile["main"].items():
        table.add_row(
            label,
            f"{bucket['seconds']:.2f}",
            f"{100 * bucket['seconds'] / total:.0f}%",
            f"{bucket['calls']:,}",
        )
    for label, bucket in profile.get("send_threads", {}).items():
        table.add_row(f"[dim]send threads, summed:[/] {label}", f"{bucket['seconds']:.2f}", "",
                      f"{bucket['calls']:,}")  # fmt: skip
    console.print(table)
    top = Table(title=f"Top functions by own time, {name}, worker main thread")
    for column in ("function", "calls", "own s", "cumulative s"):
        top.add_column(column, justify="left" if column == "function" else "right")
    for row in profile["top"][:15]:
        top.add_row(row["function"], f"{row['calls']:,}", f"{row['own_seconds']:.2f}",
                    f"{row['cumulative_seconds']:.2f}")  # fmt: skip
    console.print(top)


# ---------------------------------------------------------------- main


def _source() -> dict[str, Any]:
    files = (
        "src/consentry/services/dispatch.py",
        "src/consentry/services/campaigns.py",
        "src/consentry/services/outbound.py",
        "src/consentry/persistence/deliveries.py",
        "src/consentry/persistence/eligibility.py",
        "src/consentry/channels/smtp.py",
        "src/consentry/services/compose/email.py",
        "src/consentry/services/compose/dkim.py",
        "src/consentry/services/compose/templates.py",
        "src/consentry/services/compose/tokens.py",
    )
    state = machine.source_state()
    state["sha256"] = {
        name: hashlib.sha256((machine.REPO / name).read_bytes()).hexdigest()[:12]
        for name in files
        if (machine.REPO / name).exists()
    }
    return state


def _numbers(value: str) -> list[int]:
    return [int(v) for v in value.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=("plan", "dispatch"))
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--plan-runs", type=int, default=3)
    parser.add_argument(
        "--planning-connections",
        type=int,
        default=2,
        help="CONSENTRY_PLANNING_CONNECTIONS (1: one statement)",
    )
    parser.add_argument("--dispatch-recipients", type=int, default=20_000)
    parser.add_argument("--windows", type=_numbers, default=[32, 128])
    parser.add_argument("--batches", type=_numbers, default=[500, 2000])
    parser.add_argument("--dkim", type=lambda v: v.split(","), default=["off", "on"])
    parser.add_argument("--smtp-connections", type=int, default=Settings().smtp_connections)
    parser.add_argument("--workers", type=_numbers, default=[1],
                        help="worker processes sharing each campaign, e.g. 1,2")  # fmt: skip
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-recipients", type=int, default=5_000)
    parser.add_argument("--sink", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dispatch-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink is not None:
        run_sink(args.sink)
        return
    if args.dispatch_child is not None:
        dispatch_child(args.dispatch_child)
        return

    out: dict[str, Any] = {"machine": machine.describe(), "source": _source()}
    out["machine"]["load_average_start"] = machine.load_average()
    engine, database = prepare(args.contacts, rebuild=args.rebuild, log=_log)
    out["database"] = {"name": DATABASE, **database, "server": machine.postgres_version(engine)}
    with engine.connect() as conn:
        out["database"]["server"]["synchronous_commit"] = conn.exec_driver_sql(
            "SHOW synchronous_commit"
        ).scalar_one()
    settings = Settings(
        public_base_url=PUBLIC_BASE_URL, planning_connections=args.planning_connections
    )
    container = Container(settings=settings, engine=engine, keys=KEYS)
    try:
        if args.only in (None, "plan"):
            out["planning"] = measure_planning(engine, container, args.plan_runs, _log)
            out["planning"]["planning_connections"] = args.planning_connections
        if args.only in (None, "dispatch"):
            out["dispatch"] = measure_dispatch(engine, container, args, _log)
    finally:
        container.close()
    out["machine"]["load_average_end"] = machine.load_average()
    out["machine"]["date_utc_end"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, default=str) + "\n")
    if "planning" in out:
        _print_planning(out["planning"], args.contacts)
    if "dispatch" in out:
        _print_dispatch(out["dispatch"])
    console.print(f"wrote {RESULTS.relative_to(BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()
