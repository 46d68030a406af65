"""Rows that change rarely but are read on every request, kept by a server process.

An API request reads its API key, its tenant and the topic it names before doing anything
else: three statements of the seven or eight a decision costs. A server process keeps those
rows in a :class:`ReferenceCache` for as long as it can learn of every change to them:

- **Topics** never change once created (there is no update or delete), so a topic read once
  is kept whatever happens.
- **API keys and tenants** change (a key is revoked, a tenant suspended, its profile edited or
  its data key rotated). They are kept only while the process listens on PostgreSQL's
  ``consentry_refs`` channel: every transaction that changes such a row sends a notification
  with its commit (``NOTIFY`` is delivered only if the transaction commits, and only after),
  whatever process it runs in, and the listener empties the cache when one arrives. The process
  that made the change empties its own cache at the commit itself, so it reads its own writes.
  While the listener is not connected (before it starts, after its connection is lost, on
  SQLite, in workers and commands that never start it) nothing of these is kept.

A read that started before a change and finishes after the cache was emptied must not put the
old row back: every put names the cache's generation as it was before its read, and a put
whose generation is no longer current is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.engine import URL

log = logging.getLogger(__name__)

CHANNEL = "consentry_refs"
MAX_ENTRIES = 20_000  # both kinds together; the cache empties itself rather than grow beyond
_RECONNECT_SECONDS = 1.0
_POLL_SECONDS = 0.2  # how soon the listener notices it was asked to stop


class ReferenceCache:
    """Per-process cache of topics (always) and of API keys and tenants (while listening)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._listening = False
        self._immutable: dict[Hashable, Any] = {}
        self._mutable: dict[Hashable, Any] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ reads and puts

    @property
    def listening(self) -> bool:
        return self._listening

    @property
    def generation(self) -> int:
        """Read before the database read whose result is then put."""
        return self._generation

    def get_immutable(self, key: Hashable) -> Any | None:
        return self._immutable.get(key)

    def put_immutable(self, key: Hashable, value: Any) -> None:
        with self._lock:
            if len(self._immutable) >= MAX_ENTRIES:
                self._immutable.clear()
            self._immutable[key] = value

    def get(self, key: Hashable) -> Any | None:
        """A kept API key or tenant, or None (also whenever nothing may be kept)."""
        if not self._listening:
            return None
        return self._mutable.get(key)

    def put(self, key: Hashable, value: Any, generation: int) -> None:
        with self._lock:
            if not self._listening or generation != self._generation:
                return
            if len(self._mutable) >= MAX_ENTRIES:
                self._mutable.clear()
            self._mutable[key] = value

    def drop_where(self, matches: Callable[[Any], bool]) -> None:
        """Forget the kept values ``matches`` picks (a change only this process needs to see)."""
        with self._lock:
            for key in [k for k, v in self._mutable.items() if matches(v)]:
                del self._mutable[key]

    def clear(self) -> None:
        """Forget every API key and tenant; puts of reads that started before are dropped."""
        with self._lock:
            self._generation += 1
            self._mutable.clear()

    # ------------------------------------------------------------------ the listener

    def start(self, url: URL) -> None:
        """Listen for changes on PostgreSQL (a thread with its own connection); a no-op on
        other databases, where nothing mutable is ever kept."""
        if url.get_backend_name() != "postgresql" or self._thread is not None:
            return
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._listen, args=(conninfo,), name="consentry-refs", daemon=True
        )
        self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once the listener is connected (tests and start-up checks)."""
        deadline = time.monotonic() + timeout
        while not self._listening and time.monotonic() < deadline:
            time.sleep(0.01)
        return self._listening

    def stop(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=5)
        self._set_listening(False)

    def _set_listening(self, listening: bool) -> None:
        with self._lock:
            self._listening = listening
            self._generation += 1
            self._mutable.clear()

    def _listen(self, conninfo: str) -> None:
        while not self._stop.is_set():
            try:
                # TCP keepalives notice a connection that died without closing (a network
                # partition) within about half a minute; a closed one fails at once.
                with psycopg.connect(
                    conninfo,
                    autocommit=True,
                    connect_timeout=5,
                    keepalives=1,
                    keepalives_idle=10,
                    keepalives_interval=5,
                    keepalives_count=3,
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Anything changed before LISTEN was read from the database anew.
                    self._set_listening(True)
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=_POLL_SECONDS):
                            self.clear()
            except psycopg.Error as exc:
                if not self._stop.is_set():
                    log.warning(
                        "reference cache: listener lost (%s); keys and tenants are read from "
                        "the database until it reconnects",
                        type(exc).__name__,
                    )
            finally:
                self._set_listening(False)
            self._stop.wait(_RECONNECT_SECONDS)


class RefChanges:
    """Handed to the repositories of one unit of work: a write to an API key or a tenant calls
    :meth:`changed`, which sends the notification with the transaction; the unit of work
    empties its process's cache when it commits."""

    __slots__ = ("_cache", "_conn", "pending")

    def __init__(self, conn: Connection, cache: ReferenceCache | None) -> None:
        self._conn = conn
        self._cache = cache
        self.pending = False

    def changed(self) -> None:
        if not self.pending and self._conn.dialect.name == "postgresql":
            self._conn.execute(text(f"NOTIFY {CHANNEL}"))
        self.pending = True

    def committed(self) -> None:
        if self.pending and self._cache is not None:
            self._cache.clear()
        self.pending = False
