"""Engine construction per dialect: SQLite in WAL mode with foreign keys, or PostgreSQL."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.engine import make_url

READ_ONLY = "consentry_read_only"

# A pooled PostgreSQL connection idle for longer than this is pinged before it is handed out.
# One in steady use is not: a ping on every checkout costs a round trip, two per API request.
PING_AFTER_IDLE_SECONDS = 2.0
_IDLE_SINCE = "consentry_idle_since"


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN is deferred
    # and cannot be made IMMEDIATE).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=15000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    # Writers take the lock at BEGIN so that read-then-write transactions (the chain head)
    # wait for each other instead of failing; readers keep WAL's concurrent snapshots.
    if conn.get_execution_options().get(READ_ONLY):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(
    url: str,
    *,
    echo: bool = False,
    lock_timeout_ms: int | None = None,
    pool_size: int = 10,
    max_overflow: int = 10,
) -> Engine:
    """An engine for ``url``; SQLite gets its directory created and its pragmas set.

    On PostgreSQL, ``lock_timeout_ms`` makes every statement of its connections give up a lock
    wait after that long (SQLSTATE 55P03, ``lock_timed_out``) instead of waiting for as long as
    the holder needs; set at connect time, it costs no round trip."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, echo=echo, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_connect)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    connect_args: dict[str, Any] = {}
    if lock_timeout_ms is not None:
        # Added to the URL's own ``options`` (connect_args would replace them).
        given = parsed.query.get("options")
        setting = f"-c lock_timeout={int(lock_timeout_ms)}"
        connect_args["options"] = f"{given} {setting}" if isinstance(given, str) else setting
    engine = create_engine(
        url,
        echo=echo,
        hide_parameters=True,
        pool_size=pool_size,
        max_overflow=max_overflow,
        connect_args=connect_args,
    )
    _ping_when_idle(engine)
    return engine


def lock_timed_out(err: BaseException) -> bool:
    """Whether ``err`` is PostgreSQL giving up a lock wait under ``lock_timeout``."""
    orig = err.orig if isinstance(err, exc.DBAPIError) else err
    return getattr(orig, "sqlstate", None) == "55P03"


def _ping_when_idle(engine: Engine) -> None:
    """Pessimistic disconnect handling for connections that sat idle in the pool.

    A server restart or an idle timeout drops connections while they wait in the pool; the
    first checkout after such a pause pings, and a dead connection is replaced before any
    request sees it. A connection checked in moments ago was alive then and is handed out
    as it is: should the server go away in between, the statement fails, SQLAlchemy empties
    the pool, and the next checkout reconnects."""

    def connected(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    def checked_in(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_IDLE_SINCE] = time.monotonic()

    def checked_out(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is not None and time.monotonic() - since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as err:
            # The pool discards this connection and checks out another (or a new one).
            raise exc.DisconnectionError(f"pooled connection is gone: {err}") from err

    event.listen(engine, "connect", connected)
    event.listen(engine, "checkin", checked_in)
    event.listen(engine, "checkout", checked_out)
