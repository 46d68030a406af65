"""The hottest statements, run on the driver's own cursor on PostgreSQL.

A decision or a consent write runs a handful of small statements (the contact, its consent
states and suppressions, the audit entry). Through ``Connection.execute`` each costs about
210 µs of Python on the machines of docs/performance.md, of which the round trip and psycopg's
own work are 135 µs: the rest is SQLAlchemy's execution context and result metadata, built
afresh for every call. A ``DriverStatement`` compiles its statement once per dialect, with the
type conversions SQLAlchemy would apply (``UTCDateTime`` and the like), and on PostgreSQL runs
it on the psycopg cursor of the same connection, inside the same transaction. Its errors are
raised as SQLAlchemy's, and a lost connection is invalidated, as ``Connection.execute`` does.
On SQLite it is an ordinary ``Connection.execute``: its writers hold the whole database, and
the saving would not matter. It is one as well whenever something watches SQLAlchemy's
statements (a ``before_cursor_execute`` or ``after_cursor_execute`` listener, such as a tracer,
or an engine echoing its SQL), so that they see every statement, as before.

Only for statements whose parameters are plain bound values (``bindparam`` or ``insert``
columns): no expanding ``IN`` lists, no literal rendering.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql import CompoundSelect, Insert, Select, TextClause, Update
from sqlalchemy.sql.elements import ColumnElement

Processor = Callable[[Any], Any]


def insert_of(table: Table, names: Sequence[str]) -> Insert:
    """``INSERT`` of these columns of ``table``, each bound by its own name and type."""
    return insert(table).values({n: bindparam(n, type_=table.c[n].type) for n in names})


def insert_new(
    table: Table, names: Sequence[str], returning: ColumnElement[Any]
) -> dict[str, DriverStatement]:
    """Per dialect: ``INSERT`` of these columns that does nothing where the row would break a
    unique constraint (``ON CONFLICT DO NOTHING``) and returns ``returning`` of the row it
    inserted, so no row means "taken". A savepoint and a caught IntegrityError cost two round
    trips more; another constraint (a foreign key, NOT NULL) still raises."""
    values = {n: bindparam(n, type_=table.c[n].type) for n in names}
    pg = postgresql.insert(table).values(values).on_conflict_do_nothing()
    lite = sqlite.insert(table).values(values).on_conflict_do_nothing()
    return {
        "postgresql": DriverStatement(pg.returning(returning), columns=(returning,)),
        "sqlite": DriverStatement(lite.returning(returning), columns=(returning,)),
    }


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    constants: dict[str, Any]  # values fixed in the statement (``literal``)
    binds: tuple[tuple[str, Processor], ...]  # parameters that need converting
    results: tuple[tuple[int, Processor], ...]  # result columns that need converting
    row: Any  # a namedtuple class over the result columns, or None for DML


def on_driver(conn: Connection) -> bool:
    """Whether a ``DriverStatement`` goes to the driver on ``conn``: PostgreSQL, and nobody
    watching SQLAlchemy's statements."""
    watched = conn.dispatch
    return (
        conn.dialect.name == "postgresql"
        and not conn.engine.echo
        and not watched.before_cursor_execute
        and not watched.after_cursor_execute
    )


class DriverStatement:
    """``statement`` compiled once per dialect and run as described in the module docstring."""

    def __init__(
        self,
        statement: Select[Any] | CompoundSelect[Any] | Insert | Update | TextClause,
        columns: Sequence[ColumnElement[Any]] = (),
    ) -> None:
        self.statement = statement
        self._columns = tuple(columns) or tuple(getattr(statement, "selected_columns", ()))
        self._compiled: dict[tuple[str, str], _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        key = (dialect.name, dialect.driver)
        found = self._compiled.get(key)
        if found is not None:
            return found
        compiled = self.statement.compile(dialect=dialect)
        binds = []
        for name, param in compiled.binds.items():
            process = param.type.dialect_impl(dialect).bind_processor(dialect)
            if process is not None:
                binds.append((name, process))
        results = []
        for i, column in enumerate(self._columns):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            if process is not None:
                results.append((i, process))
        row = (
            namedtuple("Row", [str(c.key) for c in self._columns], rename=True)
            if self._columns
            else None
        )
        constants = {k: v for k, v in compiled.params.items() if v is not None}
        found = _Compiled(compiled.string, constants, tuple(binds), tuple(results), row)
        self._compiled[key] = found
        return found

    def rows(self, conn: Connection, params: Mapping[str, Any]) -> list[Any]:
        """Every row, each with its columns as attributes (like SQLAlchemy's rows)."""
        if not on_driver(conn):
            return list(conn.execute(self.statement, dict(params)).all())
        c = self._compile(conn.dialect)
        cursor = self._run(conn, c, params)
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        return self._made(c, fetched)

    @staticmethod
    def _made(c: _Compiled, fetched: list[Any]) -> list[Any]:
        make = c.row._make
        if not c.results:
            return [make(r) for r in fetched]
        out = []
        for r in fetched:
            values = list(r)
            for i, process in c.results:
                values[i] = process(values[i])
            out.append(make(values))
        return out

    def rows_committed(
        self, conn: Connection, params: Mapping[str, Any], retryable: str
    ) -> list[Any] | None:
        """``rows``, then the transaction commits, in one round trip (PostgreSQL, on the
        driver): the statement runs in a savepoint, and the savepoint's release and the commit
        follow it in a pipeline, so whatever the statement locks is held only while the server
        runs it and commits, however late this process reads the answer. If the statement
        fails with SQLSTATE ``retryable`` (its way of saying "not now", see the caller), nothing
        commits: the transaction is rolled back to the savepoint, still open and as before the
        statement, and None is returned. Only where ``on_driver(conn)``."""
        if not on_driver(conn):
            raise RuntimeError("a statement committed with its transaction needs the driver")
        c = self._compile(conn.dialect)
        params = self._bound(c, params)
        driver = self._driver(conn)
        cursor = driver.cursor()
        try:
            with driver.pipeline():
                driver.execute("SAVEPOINT committed_statement")
                cursor.execute(c.sql, params)
                driver.execute("RELEASE SAVEPOINT committed_statement")
                driver.commit()
        except conn.dialect.loaded_dbapi.Error as err:
            cursor.close()
            if getattr(err, "sqlstate", None) == retryable:
                driver.execute("ROLLBACK TO SAVEPOINT committed_statement")
                return None
            raise self._translated(conn, c, params, err, driver=driver, cursor=cursor) from err
        except BaseException:
            cursor.close()
            raise
        try:
            fetched = cursor.fetchall()
        finally:
            cursor.close()
        return self._made(c, fetched)

    def one_or_none(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        found = self.rows(conn, params)
        if len(found) > 1:
            raise LookupError("more than one row where at most one was expected")
        return found[0] if found else None

    def execute(self, conn: Connection, params: Mapping[str, Any]) -> None:
        """Run a statement for its effect (an insert, an update, a lock)."""
        if not on_driver(conn):
            conn.execute(self.statement, dict(params))
            return
        self._run(conn, self._compile(conn.dialect), params).close()

    @staticmethod
    def _driver(conn: Connection) -> Any:
        """The psycopg connection under ``conn``, in the transaction ``conn`` has begun."""
        if not conn.in_transaction():
            conn.begin()  # as ``Connection.execute`` would: its commit and rollback end this
        driver = conn.connection.driver_connection
        if driver is None:
            raise RuntimeError("the connection has no driver connection")
        return driver

    @staticmethod
    def _bound(c: _Compiled, params: Mapping[str, Any]) -> dict[str, Any]:
        params = c.constants | dict(params) if c.constants else dict(params)
        for name, process in c.binds:
            if name in params:
                params[name] = process(params[name])
        return params

    @staticmethod
    def _translated(
        conn: Connection, c: _Compiled, params: Mapping[str, Any], err: Any,
        *, driver: Any, cursor: Any,
    ) -> StatementError:  # fmt: skip
        """As SQLAlchemy would: a lost connection is invalidated (the pool replaces it), and
        the error is its DBAPIError subclass (IntegrityError, OperationalError, ...)."""
        gone = conn.dialect.is_disconnect(err, driver, cursor)
        if gone:
            conn.invalidate(err)
        translated: StatementError = DBAPIError.instance(
            c.sql,
            params,
            err,
            conn.dialect.loaded_dbapi.Error,
            hide_parameters=True,
            connection_invalidated=gone,
            dialect=conn.dialect,
        )
        return translated

    @classmethod
    def _run(cls, conn: Connection, c: _Compiled, params: Mapping[str, Any]) -> Any:
        params = cls._bound(c, params)
        driver = cls._driver(conn)
        cursor = driver.cursor()
        try:
            cursor.execute(c.sql, params)
        except conn.dialect.loaded_dbapi.Error as err:
            cursor.close()
            raise cls._translated(conn, c, params, err, driver=driver, cursor=cursor) from err
        except BaseException:
            cursor.close()
            raise
        return cursor
