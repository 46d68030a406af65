"""Statements run on the driver's cursor read and write exactly what SQLAlchemy would."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, bindparam, create_engine, event, insert, literal, select, text
from sqlalchemy.exc import IntegrityError, OperationalError, StatementError

from consentry.persistence import engine as engine_module
from consentry.persistence.driver import DriverStatement
from consentry.persistence.engine import make_engine
from consentry.persistence.tables import audit_log

_COLUMNS = ("id", "tenant_id", "actor", "action", "object_type", "object_id", "at")
_INSERT = DriverStatement(
    insert(audit_log).values(
        {name: bindparam(name, type_=audit_log.c[name].type) for name in _COLUMNS}
    )
)
_BY_TENANT = DriverStatement(
    select(literal("a").label("kind"), audit_log.c.id, audit_log.c.actor, audit_log.c.at)
    .where(audit_log.c.tenant_id == bindparam("tenant"))
    .order_by(audit_log.c.at)
)


def _entry(tenant: uuid.UUID, at: datetime, actor: str) -> dict[str, object]:
    return {
        "id": uuid.uuid4(),
        "tenant_id": tenant,
        "actor": actor,
        "action": "contact.read",
        "object_type": "contact",
        "object_id": None,
        "at": at,
    }


def test_rows_written_and_read_on_the_driver_match_sqlalchemys(engine: Engine) -> None:
    tenant = uuid.uuid4()
    india = timezone(timedelta(hours=5, minutes=30))
    first = _entry(tenant, datetime(2026, 12, 7, 14, 0, 0, 123456, tzinfo=india), "key:a")
    second = _entry(tenant, datetime(2026, 12, 7, 9, 0, tzinfo=UTC), "key:b ünï")
    with engine.begin() as conn:
        _INSERT.execute(conn, first)
        _INSERT.execute(conn, second)
    with engine.connect() as conn:
        mine = _BY_TENANT.rows(conn, {"tenant": tenant})
        theirs = conn.execute(_BY_TENANT.statement, {"tenant": tenant}).all()
        nobody = _BY_TENANT.one_or_none(conn, {"tenant": uuid.uuid4()})
    assert [tuple(r) for r in mine] == [tuple(r) for r in theirs]
    assert [(r.kind, r.id, r.actor) for r in mine] == [
        ("a", first["id"], "key:a"),
        ("a", second["id"], "key:b ünï"),
    ]
    # Stored in UTC and read back as aware UTC instants, whatever zone they were given in.
    assert mine[0].at == datetime(2026, 12, 7, 8, 30, 0, 123456, tzinfo=UTC)
    assert mine[0].at.utcoffset() == timedelta(0)
    assert nobody is None


def test_more_than_one_row_where_one_was_expected_is_an_error(engine: Engine) -> None:
    tenant = uuid.uuid4()
    with engine.begin() as conn:
        for actor in ("key:a", "key:b"):
            _INSERT.execute(conn, _entry(tenant, datetime.now(UTC), actor))
    with engine.connect() as conn, pytest.raises(LookupError):
        _BY_TENANT.one_or_none(conn, {"tenant": tenant})


def test_a_naive_instant_is_refused_and_nothing_written(engine: Engine) -> None:
    tenant = uuid.uuid4()
    with engine.connect() as conn:
        # The driver's own error on PostgreSQL; SQLAlchemy wraps it on SQLite.
        with pytest.raises((ValueError, StatementError), match="naive"):
            _INSERT.execute(conn, _entry(tenant, datetime(2026, 12, 7, 9, 0), "key:a"))
        conn.rollback()
        assert _BY_TENANT.rows(conn, {"tenant": tenant}) == []


def test_a_write_on_the_driver_belongs_to_the_connections_transaction(engine: Engine) -> None:
    tenant = uuid.uuid4()
    with engine.connect() as conn:
        _INSERT.execute(conn, _entry(tenant, datetime.now(UTC), "key:a"))
        assert len(_BY_TENANT.rows(conn, {"tenant": tenant})) == 1
        conn.rollback()
        assert _BY_TENANT.rows(conn, {"tenant": tenant}) == []


def test_a_constraint_violation_is_sqlalchemys_integrity_error(engine: Engine) -> None:
    tenant = uuid.uuid4()
    entry = _entry(tenant, datetime.now(UTC), "key:a")
    with engine.connect() as conn:
        _INSERT.execute(conn, entry)
        with pytest.raises(IntegrityError):
            _INSERT.execute(conn, entry)  # the same id again


def test_a_lost_connection_is_invalidated_and_the_next_checkout_reconnects(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 3600.0)  # no ping first
    eng = make_engine(pg_url)
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    try:
        with eng.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as a:
            a.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        with eng.connect() as conn:
            with pytest.raises(OperationalError) as raised:
                _BY_TENANT.rows(conn, {"tenant": uuid.uuid4()})
            assert raised.value.connection_invalidated
            assert conn.invalidated
        with eng.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
            assert _BY_TENANT.rows(conn, {"tenant": uuid.uuid4()}) == []
    finally:
        admin.dispose()
        eng.dispose()


def test_statements_stay_visible_to_whoever_watches_sqlalchemys(engine: Engine) -> None:
    """A tracer listening to cursor events still sees every statement, and the rows are
    the same."""
    tenant = uuid.uuid4()
    seen: list[str] = []

    def watch(_c: object, _cur: object, statement: str, *_: object) -> None:
        seen.append(statement)

    with engine.begin() as conn:
        _INSERT.execute(conn, _entry(tenant, datetime.now(UTC), "key:a"))
    event.listen(engine, "before_cursor_execute", watch)
    try:
        with engine.connect() as conn:
            rows = _BY_TENANT.rows(conn, {"tenant": tenant})
    finally:
        event.remove(engine, "before_cursor_execute", watch)
    assert [r.actor for r in rows] == ["key:a"]
    assert any("FROM audit_log" in s for s in seen), seen
