"""Shared fixtures: real SQLite and PostgreSQL databases migrated by Alembic, and fixed keys."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from hypothesis import settings
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.engine import make_engine
from consentry.persistence.migrate import upgrade
from consentry.persistence.tables import metadata
from consentry.persistence.uow import SqlUnitOfWork

PG_ADMIN_URL = os.environ.get(
    "CONSENTRY_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
REDIS_URL = os.environ.get("CONSENTRY_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _pg_available() -> str | None:
    """None when PostgreSQL answers, else why not."""
    try:
        engine = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:  # noqa: BLE001  (any failure means: no server to test against)
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A Redis database for the test (number 15 unless CONSENTRY_TEST_REDIS_URL says
    otherwise), emptied before and after; required in CI."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        client.close()
        if IN_CI:
            pytest.fail(f"Redis is required in CI but unavailable: {exc}")
        pytest.skip(f"Redis not available, Redis tests skipped: {exc}")
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def keys() -> FileKeyRing:
    return FileKeyRing({1: b"\x01" * 32}, 1, b"\x02" * 32)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    engine = make_engine(f"sqlite+pysqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    problem = _pg_available()
    if problem is not None:
        if IN_CI:
            pytest.fail(f"PostgreSQL is required in CI but unavailable: {problem}")
        pytest.skip(f"PostgreSQL not available, PostgreSQL tests skipped: {problem}")
    name = f"consentry_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database of each kind; every test gets its own state."""
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "consentry.db"
        shutil.copyfile(template, path)
        eng = make_engine(f"sqlite+pysqlite:///{path}")
        yield eng
        eng.dispose()
        return
    url: str = request.getfixturevalue("pg_url")
    eng = make_engine(url)
    _truncate_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def new_uow(engine: Engine, keys: FileKeyRing) -> Callable[[], SqlUnitOfWork]:
    return lambda: SqlUnitOfWork(engine, keys)


# In CI the examples are derived from the test itself, so a run can be reproduced exactly.
settings.register_profile("ci", derandomize=True, database=None, deadline=None)
if IN_CI:
    settings.load_profile("ci")
