"""Bulk inserts inside the open transaction: binary COPY on PostgreSQL, executemany elsewhere."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from psycopg import Copy
from sqlalchemy import Connection, Table, insert, text

_TYPES = "copy_column_types"  # key of the per-connection cache in Connection.info


def column_types(conn: Connection, table: Table, columns: Sequence[str]) -> list[int]:
    """The type oids of ``columns`` as the server declares them, read once per connection and
    table: binary COPY sends values in the exact binary form of their column's type."""
    cache: dict[str, dict[str, int]] = conn.info.setdefault(_TYPES, {})
    types = cache.get(table.name)
    if types is None:
        rows = conn.execute(
            text(
                "SELECT attname, atttypid FROM pg_attribute "
                "WHERE attrelid = CAST(:table AS regclass) AND attnum > 0 AND NOT attisdropped"
            ),
            {"table": table.name},
        )
        types = cache[table.name] = {str(name): int(oid) for name, oid in rows}
    return [types[column] for column in columns]


def bulk_insert(
    conn: Connection, table: Table, columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """Insert ``rows`` (values in ``columns`` order). On PostgreSQL the rows stream through
    ``COPY FROM STDIN (FORMAT BINARY)`` on the connection's own transaction, about ten times
    faster than multi-row INSERTs, and the server parses no text (``bytea`` above all); values
    must then already be what the column stores (tz-aware datetimes, bytes, UUIDs, str for
    text), which is what every caller passes."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        types = column_types(conn, table, columns)
        with _copy(conn, table, columns) as copy:
            copy.set_types(types)
            write = copy.write_row
            for row in rows:
                write(row)
        return
    conn.execute(insert(table), [dict(zip(columns, row, strict=True)) for row in rows])


def copy_raw(conn: Connection, table: Table, columns: Sequence[str], data: bytes) -> None:
    """``COPY`` rows already encoded in the binary format (``copy_binary``, header and trailer
    included) into ``table`` on the connection's own transaction; PostgreSQL only."""
    with _copy(conn, table, columns) as copy:
        copy.write(data)


@contextmanager
def _copy(conn: Connection, table: Table, columns: Sequence[str]) -> Iterator[Copy]:
    """``COPY table (columns) FROM STDIN (FORMAT BINARY)`` on the driver's cursor of ``conn``,
    inside its transaction (begun here if none is)."""
    driver = conn.connection.driver_connection
    if driver is None:
        raise RuntimeError("the connection has no driver connection")
    if not conn.in_transaction():
        conn.begin()
    names = ", ".join(columns)
    with (
        driver.cursor() as cursor,
        cursor.copy(f"COPY {table.name} ({names}) FROM STDIN (FORMAT BINARY)") as copy,
    ):
        yield copy
