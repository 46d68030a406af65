"""The benchmark databases: built once, cached, and reused while they match the generator.

A database is reused when it was built by the same generator code (a hash of population.py,
pg_load.py and sqlite_load.py), for the same number of contacts and migration head, and still has
the row counts recorded after loading. SQLite records this in a JSON file beside the database;
PostgreSQL in a comment on the ``consentry_bench`` database.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select, text
from sqlalchemy.engine import make_url

import pg_load
import population as pop
import sqlite_load
from consentry.domain.model import ALL_MARKETING_KEY, BusinessProfile, Category
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.engine import make_engine
from consentry.persistence.migrate import head_revision, upgrade
from consentry.persistence.tables import (
    consent_events,
    consent_states,
    contacts,
    dnc_entries,
    suppressions,
)
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.tenancy import create_tenant, create_topic

BENCH_DIR = Path(__file__).resolve().parent
DATA_DIR = BENCH_DIR / ".data"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DATABASE = "consentry_bench"
TENANT_SLUG = "bench-audience"
TOPIC_KEY = "promotions"
TABLES = (contacts, consent_events, consent_states, suppressions, dnc_entries)
KEYS = FileKeyRing({1: b"\x01" * 32}, 1, b"\x02" * 32)

Log = Callable[[str], None]


@dataclass
class Audience:
    dialect: str
    engine: Engine
    reused: bool
    counts: dict[str, int]
    load_seconds: dict[str, float] = field(default_factory=dict)
    size_bytes: int = 0


def generator_version() -> str:
    digest = hashlib.sha256()
    for name in ("population.py", "pg_load.py", "sqlite_load.py"):
        digest.update((BENCH_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def spec(contacts_count: int) -> dict[str, Any]:
    return {
        "contacts": contacts_count,
        "generator": generator_version(),
        "migration": head_revision(),
    }


def row_counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
            for t in TABLES
        }


def _create_tenant(engine: Engine) -> pop.AudienceIds:
    """The tenant and its topics, through the real services (which create the umbrellas)."""
    created = pop.EPOCH
    tenant = create_tenant(
        SqlUnitOfWork(engine, KEYS),
        slug=TENANT_SLUG,
        name="Benchmark Parts Retailer",
        now=created,
        profile=BusinessProfile(legal_name="Benchmark Parts Retailer Inc.", country="US"),
    )
    topic = create_topic(
        SqlUnitOfWork(engine, KEYS),
        TENANT_SLUG,
        key=TOPIC_KEY,
        name="Promotions",
        category=Category.MARKETING,
        now=created,
    )
    with SqlUnitOfWork(engine, KEYS) as uow:
        umbrella = uow.topics.by_key(tenant.id, ALL_MARKETING_KEY)
    return pop.AudienceIds(tenant.id, topic.id, umbrella.id)


def prepare_sqlite(contacts_count: int, *, rebuild: bool, log: Log) -> Audience:
    DATA_DIR.mkdir(exist_ok=True)
    path = DATA_DIR / f"eligibility-{contacts_count}.db"
    meta_path = path.with_suffix(".json")
    wanted = spec(contacts_count)
    if not rebuild and path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        engine = make_engine(f"sqlite+pysqlite:///{path}")
        if meta.get("spec") == wanted and row_counts(engine) == meta.get("counts"):
            log(f"sqlite: reusing {path.relative_to(BENCH_DIR)}")
            return Audience(
                "sqlite", engine, True, meta["counts"], meta["load_seconds"], path.stat().st_size
            )
        engine.dispose()
    for stale in (path, meta_path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    started = time.perf_counter()
    upgrade(engine)
    ids = _create_tenant(engine)
    engine.dispose()  # the loader writes through its own connection
    seconds = sqlite_load.load(path, contacts_count, ids, log)
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    seconds["total"] = time.perf_counter() - started
    counts = row_counts(engine)
    meta_path.write_text(json.dumps({"spec": wanted, "counts": counts, "load_seconds": seconds}))
    log(f"sqlite: built in {seconds['total']:.1f} s: {counts}")
    return Audience("sqlite", engine, False, counts, seconds, path.stat().st_size)


def _pg_comment(admin: Engine) -> dict[str, Any] | None:
    with admin.connect() as conn:
        comment = conn.execute(
            text(
                "SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                "WHERE datname = :name"
            ),
            {"name": PG_DATABASE},
        ).scalar_one_or_none()
    return None if comment is None else dict(json.loads(comment))


def _pg_exists(admin: Engine) -> bool:
    with admin.connect() as conn:
        return (
            conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": PG_DATABASE}
            ).first()
            is not None
        )


def prepare_postgres(contacts_count: int, *, rebuild: bool, log: Log) -> Audience:
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    url = make_url(PG_ADMIN_URL).set(database=PG_DATABASE).render_as_string(hide_password=False)
    wanted = spec(contacts_count)
    exists = _pg_exists(admin)
    if exists and not rebuild:
        meta = _pg_comment(admin)
        engine = make_engine(url)
        if (
            meta is not None
            and meta.get("spec") == wanted
            and row_counts(engine) == meta.get("counts")
        ):
            log(f"postgresql: reusing database {PG_DATABASE}")
            admin.dispose()
            size = _pg_size(engine)
            return Audience("postgresql", engine, True, meta["counts"], meta["load_seconds"], size)
        engine.dispose()
    with admin.connect() as conn:
        if exists:  # only ever the benchmark's own database
            conn.execute(text(f'DROP DATABASE "{PG_DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{PG_DATABASE}"'))
    engine = make_engine(url)
    started = time.perf_counter()
    upgrade(engine)
    ids = _create_tenant(engine)
    with engine.connect() as conn:
        seconds = pg_load.load(conn, contacts_count, ids, log)
    analyze_started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # VACUUM sets the visibility map (index-only scans) as autovacuum soon would; ANALYZE
        # gives the planner statistics of the loaded data.
        conn.exec_driver_sql("VACUUM (ANALYZE)")
    seconds["vacuum_analyze"] = time.perf_counter() - analyze_started
    seconds["total"] = time.perf_counter() - started
    counts = row_counts(engine)
    comment = json.dumps({"spec": wanted, "counts": counts, "load_seconds": seconds})
    with admin.connect() as conn:
        conn.execute(text(f"COMMENT ON DATABASE \"{PG_DATABASE}\" IS '{comment}'"))
    admin.dispose()
    log(f"postgresql: built in {seconds['total']:.1f} s: {counts}")
    return Audience("postgresql", engine, False, counts, seconds, _pg_size(engine))


def postgres_engine(*session_settings: str) -> Engine:
    """An engine on the benchmark database whose connections run ``session_settings`` first."""
    url = make_url(PG_ADMIN_URL).set(database=PG_DATABASE).render_as_string(hide_password=False)
    engine = make_engine(url)

    def apply(dbapi_connection: Any, _record: Any) -> None:
        for setting in session_settings:
            dbapi_connection.execute(setting)
        dbapi_connection.commit()

    event.listen(engine, "connect", apply)
    return engine


def _pg_size(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one())


def fingerprint(engine: Engine) -> dict[str, int]:
    """Counts that describe the audience; equal on both databases when the twins agree."""
    c, s, x = contacts, consent_states, suppressions
    queries: dict[str, Any] = {
        "contacts.country": select(c.c.country, func.count()).group_by(c.c.country),
        "contacts.time_zone": select(c.c.time_zone, func.count()).group_by(c.c.time_zone),
        "contacts.phone_type": select(c.c.phone_type, func.count()).group_by(c.c.phone_type),
        "contacts.locale": select(c.c.locale, func.count()).group_by(c.c.locale),
        "contacts.columns": select(
            func.count(c.c.email_key),
            func.count(c.c.whatsapp_key),
            func.count(c.c.postal_key),
            func.count(c.c.adult_on),
            func.count(c.c.whatsapp_last_inbound_at),
            func.sum(func.length(c.c.name_enc) + func.coalesce(func.length(c.c.email_enc), 0)),
        ),
        "states": select(s.c.channel, s.c.status, s.c.basis, s.c.confirmed, func.count()).group_by(
            s.c.channel, s.c.status, s.c.basis, s.c.confirmed
        ),
        "states.expired": select(func.count()).where(s.c.expires_at <= pop.NOW),
        "suppressions": select(
            x.c.channel,
            x.c.reason,
            x.c.scope,
            x.c.tenant_id.is_(None),
            x.c.lifted_at.is_(None),
            func.count(),
        ).group_by(
            x.c.channel, x.c.reason, x.c.scope, x.c.tenant_id.is_(None), x.c.lifted_at.is_(None)
        ),
    }
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for name, query in queries.items():
            for row in conn.execute(query):
                *labels, value = row
                out[name + ":" + "/".join(str(v) for v in labels)] = int(value or 0)
    return dict(sorted(out.items()))
