"""Audit entries are written without a lock and chained by the sealer, in the order written."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DBAPIError
from tests.integration.helpers import NOW, UowFactory, shop

from consentry.domain.audit import AuditEntry
from consentry.persistence.tables import audit_log, chain_heads
from consentry.persistence.tenancy import AUDIT_CHAIN
from consentry.services.access import local_operator
from consentry.services.audit import RequestContext, record_access, verify_audit
from consentry.services.audit_seal import AuditSealer, seal_audit
from consentry.services.ledger import verify_ledger

SEAL_WAIT_SECONDS = 10.0


def _tenant(new_uow: UowFactory) -> uuid.UUID:
    slug = shop(new_uow)
    with new_uow() as uow:
        return uow.tenants.by_slug(slug).id


def _record(new_uow: UowFactory, tenant_id: uuid.UUID, count: int) -> list[AuditEntry]:
    context = RequestContext(local_operator(), "198.51.100.4", "req-1")
    with new_uow() as uow:
        written = [
            record_access(
                uow,
                context,
                tenant_id=tenant_id,
                action="contact.read",
                object_type="contact",
                object_id=f"c{n}",
                now=NOW + timedelta(seconds=n),
            )
            for n in range(count)
        ]
        uow.commit()
    return written


def _entries(new_uow: UowFactory, tenant_id: uuid.UUID) -> list[AuditEntry]:
    with new_uow() as uow:
        return uow.audit.entries(tenant_id, limit=1000)


def test_an_entry_is_stored_at_once_and_chained_by_the_sealer(new_uow: UowFactory) -> None:
    tenant_id = _tenant(new_uow)
    written = _record(new_uow, tenant_id, 3)
    assert all(not e.sealed for e in written)
    stored = _entries(new_uow, tenant_id)
    assert [e.object_id for e in stored] == ["c2", "c1", "c0"]  # newest first
    assert all(e.seq is None and e.hash is None for e in stored)

    assert seal_audit(new_uow(), tenant_id) == 3
    sealed = _entries(new_uow, tenant_id)
    assert [(e.seq, e.object_id) for e in sealed] == [(3, "c2"), (2, "c1"), (1, "c0")]
    assert sealed[0].prev_hash == sealed[1].hash
    with new_uow() as uow:
        assert uow.audit.head(tenant_id) == (3, sealed[0].hash)
    assert seal_audit(new_uow(), tenant_id) == 0

    _record(new_uow, tenant_id, 2)
    report = verify_audit(new_uow(), tenant_id)
    assert report.broken is None
    assert report.verified == report.head_seq == 5


def test_sealing_in_batches_keeps_one_chain(new_uow: UowFactory) -> None:
    tenant_id = _tenant(new_uow)
    _record(new_uow, tenant_id, 7)
    assert seal_audit(new_uow(), batch=3) == 7
    assert [e.seq for e in _entries(new_uow, tenant_id)] == [7, 6, 5, 4, 3, 2, 1]
    assert verify_audit(new_uow(), tenant_id).verified == 7


def test_verifying_the_ledger_seals_first(new_uow: UowFactory) -> None:
    tenant_id = _tenant(new_uow)
    _record(new_uow, tenant_id, 2)
    (report,) = verify_ledger(new_uow(), "shop")
    assert report.intact
    assert report.audit_verified == 2
    assert all(e.sealed for e in _entries(new_uow, tenant_id))


def test_what_an_entry_says_is_frozen_and_its_link_is_written_once(
    new_uow: UowFactory, engine: Engine
) -> None:
    tenant_id = _tenant(new_uow)
    (first,) = _record(new_uow, tenant_id, 1)
    with pytest.raises(DBAPIError), engine.begin() as conn:  # before sealing
        conn.execute(text("UPDATE audit_log SET actor = 'someone else'"))
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_log"))
    seal_audit(new_uow(), tenant_id)
    with pytest.raises(DBAPIError), engine.begin() as conn:  # after sealing
        conn.execute(text("UPDATE audit_log SET action = 'contact.list'"))
    with pytest.raises(DBAPIError), engine.begin() as conn:
        conn.execute(text("UPDATE audit_log SET seq = 9, hash = 'x'"))
    (kept,) = _entries(new_uow, tenant_id)
    assert (kept.id, kept.actor, kept.action, kept.seq) == (
        first.id,
        first.actor,
        "contact.read",
        1,
    )


# SQLite has no row locks: a second writer there waits for the whole database instead.
@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_a_sealer_that_finds_the_chain_held_leaves_it(new_uow: UowFactory, engine: Engine) -> None:
    tenant_id = _tenant(new_uow)
    _record(new_uow, tenant_id, 2)
    with engine.connect() as holder, holder.begin():
        holder.execute(
            select(chain_heads.c.seq)
            .where(chain_heads.c.chain == AUDIT_CHAIN, chain_heads.c.tenant_id == tenant_id)
            .with_for_update()
        )
        assert seal_audit(new_uow(), tenant_id, wait=False) == 0
    assert seal_audit(new_uow(), tenant_id, wait=False) == 2


def test_the_background_sealer_chains_what_is_written(new_uow: UowFactory, engine: Engine) -> None:
    tenant_id = _tenant(new_uow)
    sealer = AuditSealer(new_uow, interval=0.05)
    sealer.start()
    try:
        _record(new_uow, tenant_id, 4)
        deadline = time.monotonic() + SEAL_WAIT_SECONDS
        while not all(e.sealed for e in _entries(new_uow, tenant_id)):
            assert time.monotonic() < deadline, "the sealer did not chain the entries"
            time.sleep(0.02)
    finally:
        sealer.stop()
    _record(new_uow, tenant_id, 1)
    with engine.connect() as conn:
        unsealed = conn.execute(select(audit_log.c.id).where(audit_log.c.seq.is_(None))).all()
    assert len(unsealed) == 1
    assert [e.seq for e in _entries(new_uow, tenant_id)][1:] == [4, 3, 2, 1]
