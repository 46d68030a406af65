"""Pooled PostgreSQL connections: pinged after sitting idle, handed out as they are when in use."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, create_engine, exc, text

from consentry.persistence import engine as engine_module
from consentry.persistence.engine import lock_timed_out, make_engine


def _kill_pooled_backend(url: str, backend_pid: int) -> None:
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            killed = conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": backend_pid})
            assert killed.scalar_one() is True
    finally:
        admin.dispose()


def _pooled_backend(url: str) -> tuple[Engine, int]:
    eng = make_engine(url)
    with eng.connect() as conn:  # one connection, checked in again at the end
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    return eng, pid


def test_a_connection_that_died_while_idle_is_replaced_before_use(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 0.0)
    eng, pid = _pooled_backend(pg_url)
    try:
        _kill_pooled_backend(pg_url, pid)
        with eng.connect() as conn:
            fresh = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
        assert fresh != pid
    finally:
        eng.dispose()


def test_a_connection_in_steady_use_is_not_pinged(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Within the idle allowance no ping precedes the statement: a connection killed in between
    fails once, the pool is emptied, and the next checkout reconnects."""
    monkeypatch.setattr(engine_module, "PING_AFTER_IDLE_SECONDS", 3600.0)
    eng, pid = _pooled_backend(pg_url)
    try:
        _kill_pooled_backend(pg_url, pid)
        with pytest.raises(exc.OperationalError), eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        with eng.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        eng.dispose()


@pytest.mark.postgres
def test_a_lock_timeout_engine_gives_a_held_lock_up_and_keeps_the_urls_options(
    pg_url: str,
) -> None:
    """``lock_timeout_ms`` is set at connect time, after whatever ``options`` the URL gives;
    a lock wait then fails with SQLSTATE 55P03, which ``lock_timed_out`` recognises."""
    url = f"{pg_url}{'&' if '?' in pg_url else '?'}options=-c%20application_name%3Dinline-test"
    impatient = make_engine(url, lock_timeout_ms=30, pool_size=1, max_overflow=0)
    patient = make_engine(pg_url)
    try:
        with impatient.connect() as conn:
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "30ms"
            assert conn.exec_driver_sql("SHOW application_name").scalar() == "inline-test"
        with patient.connect() as holder, holder.begin():
            holder.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
            with impatient.connect() as conn, pytest.raises(exc.DBAPIError) as caught:
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(4242)")
            assert lock_timed_out(caught.value)
        with patient.connect() as conn:
            assert conn.exec_driver_sql("SHOW lock_timeout").scalar() == "0"
    finally:
        impatient.dispose()
        patient.dispose()
