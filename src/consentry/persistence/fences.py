"""Opt-out fences: an opt-out and a dispatch of the same address never overlap.

Guarantee 1 says an opt-out that commits before a delivery's final check stops it. The check and
the hand-over to the channel are not one atomic step, so on PostgreSQL the dispatcher holds a
*shared* transaction-level advisory lock on each recipient's address (its blind index) from its
final gate check until the messages are handed over, and every opt-out (a consent withdrawal, a
suppression) takes the *exclusive* lock on the address before it writes. An opt-out therefore
either commits before the check (which sees it) or waits until the message has left, and its
commit comes after the send.

SQLite has one writer at a time; an opt-out there is ordered by its commit alone, so the window
is one small dispatch window (see docs/concepts.md). The methods are no-ops there.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

from consentry.persistence.driver import DriverStatement
from consentry.persistence.types import pg_ints


def lock_key(point_key: bytes) -> int:
    """A signed 64-bit advisory-lock key from an address's blind index (itself an HMAC)."""
    return int.from_bytes(point_key[:8], "big", signed=True)


_ORDERED_KEYS = "FROM (SELECT unnest(CAST(:keys AS bigint[])) AS k ORDER BY 1) AS o"
_LOCKS = {
    "pg_advisory_xact_lock": DriverStatement(
        text("SELECT pg_advisory_xact_lock(k) " + _ORDERED_KEYS)
    ),
    "pg_advisory_xact_lock_shared": DriverStatement(
        text("SELECT pg_advisory_xact_lock_shared(k) " + _ORDERED_KEYS)
    ),
}


class SqlFences:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._postgres = conn.dialect.name == "postgresql"

    def _take(self, function: str, point_keys: Iterable[bytes]) -> None:
        if not self._postgres:
            return
        keys = sorted({lock_key(k) for k in point_keys})
        if not keys:
            return
        # Sorted, one statement: two dispatchers never wait on each other in a cycle.
        _LOCKS[function].execute(self._conn, {"keys": pg_ints(keys)})

    def exclusive(self, point_keys: Iterable[bytes]) -> None:
        """Before an opt-out writes: wait for dispatches in flight to these addresses."""
        self._take("pg_advisory_xact_lock", point_keys)

    def shared(self, point_keys: Iterable[bytes]) -> None:
        """Before a dispatch's final check: opt-outs to these addresses wait until it ends."""
        self._take("pg_advisory_xact_lock_shared", point_keys)
