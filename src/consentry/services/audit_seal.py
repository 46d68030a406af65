"""Chaining audit entries: the sealer.

A request writes its audit entry without taking the tenant's audit chain (services/audit.py), so
requests of one tenant never queue on one row. The sealer chains what was written, oldest first,
in batches: one lock on the chain head and one commit per batch. Every ``consentry serve``
process runs one in the background (``CONSENTRY_AUDIT_SEAL_SECONDS`` apart); a process that
finds a chain being sealed by another skips it. Whoever reads or verifies the log, and every CLI
command on exit, seals first and waits for the chain, so what they see is chained to the end.
Until sealed (normally under a second), an entry is stored but not yet covered by the chain.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable

from consentry.services.ports import UnitOfWork

log = logging.getLogger(__name__)
SEAL_BATCH = 1000


def seal_audit(
    uow: UnitOfWork,
    tenant_id: uuid.UUID | None = None,
    *,
    wait: bool = True,
    batch: int = SEAL_BATCH,
) -> int:
    """Chain every unsealed entry (of one tenant, or of all); how many. Commits per batch (one
    transaction of ``uow`` each). With ``wait`` false, a chain another sealer holds is left to
    it."""
    with uow:
        tenants = [tenant_id] if tenant_id is not None else uow.audit.unsealed_tenants()
    sealed = 0
    for tenant in tenants:
        while True:
            with uow:
                count = uow.audit.seal(tenant, batch, wait=wait)
                uow.commit()
            if not count:
                break
            sealed += count
            if count < batch:
                break
    return sealed


class AuditSealer:
    """Seals the audit log every ``interval`` seconds on a daemon thread, and once more on
    ``stop``. It looks for waiting entries in a read-only unit of work (``read_uow``), so an idle
    round takes no write lock (SQLite's is the whole database)."""

    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        interval: float,
        read_uow: Callable[[], UnitOfWork] | None = None,
    ) -> None:
        self._new_uow = new_uow
        self._read_uow = read_uow or new_uow
        self._interval = interval
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        self._seal(wait=True)

    def _run(self) -> None:
        while not self._stopping.wait(self._interval):
            self._seal(wait=False)

    def _seal(self, *, wait: bool) -> None:
        try:
            with self._read_uow() as uow:
                tenants = uow.audit.unsealed_tenants()
            for tenant_id in tenants:
                seal_audit(self._new_uow(), tenant_id, wait=wait)
        except Exception:  # the next round tries again; the entries are stored meanwhile
            log.exception("sealing the audit log failed")
