"""Migrations on databases that hold data: what a user upgrading an existing install runs."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import DBAPIError
from tests.integration.helpers import NOW, UowFactory, disclosure, grant, person, shop

from consentry.domain.model import Channel
from consentry.persistence.migrate import current_revision, downgrade, upgrade
from consentry.persistence.tables import contact_list_members, contact_lists, contacts
from consentry.services.ledger import verify_ledger

_COUNTED = ("contacts", "consent_events", "consent_states", "contact_list_members")


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in _COUNTED
        }


def test_the_ledger_keeps_its_rows_and_guard_across_migration_0020(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug = shop(new_uow)
    person(new_uow, slug)
    person(new_uow, slug, email="bo@example.com", phone=None)
    evidence = disclosure(new_uow, slug)
    grant(new_uow, slug, "ana@example.com", evidence)
    grant(new_uow, slug, "ana@example.com", evidence, channel=Channel.SMS)
    grant(new_uow, slug, "bo@example.com", evidence)
    with engine.begin() as conn:  # rows of another table refer to the contacts rebuilt
        tenant_id = conn.execute(select(contacts.c.tenant_id)).scalars().first()
        list_id = uuid.uuid4()
        conn.execute(
            insert(contact_lists).values(
                id=list_id, tenant_id=tenant_id, name="regulars", created_at=NOW
            )
        )
        for contact_id in conn.execute(select(contacts.c.id)).scalars().all():
            conn.execute(
                insert(contact_list_members).values(list_id=list_id, contact_id=contact_id)
            )
    before = _counts(engine)
    assert before == {
        "contacts": 2,
        "consent_events": 3,
        "consent_states": 3,
        "contact_list_members": 2,
    }

    downgrade(engine, "0019")  # the ledger's keys back, so the upgrade has them to drop
    assert _counts(engine) == before
    assert current_revision(engine) == "0019"
    upgrade(engine, "0020")
    assert current_revision(engine) == "0020"
    upgrade(engine)  # the later migrations too: this database serves the tests after this one

    assert _counts(engine) == before
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact
    assert report.verified == 3
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text("UPDATE consent_events SET action = 'withdrawn'"))
    if engine.dialect.name == "sqlite":  # switched off for the rebuild, and on again after
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
    with engine.connect() as conn:
        ana = conn.execute(select(contacts).where(contacts.c.phone_key.is_not(None))).one()
    twin = insert(contacts).values({**ana._asdict(), "id": uuid.uuid4()})
    with pytest.raises(DBAPIError), engine.begin() as conn:  # an address stays unique
        conn.execute(twin)
