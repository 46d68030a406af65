"""Migrations on databases that hold data: what a user upgrading an existing install runs."""

from __future__ import annotations

import uuid

import pytest
from alembic import command
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.exc import DBAPIError
from tests.integration.helpers import UowFactory, disclosure, grant, person, shop

from consentry.domain.model import Channel
from consentry.persistence.migrate import alembic_config, current_revision, upgrade
from consentry.persistence.tables import contacts
from consentry.services.ledger import verify_ledger

_COUNTED = ("contacts", "consent_events", "consent_states")


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one()) for t in _COUNTED
        }


def _downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)


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
    before = _counts(engine)
    assert before == {"contacts": 2, "consent_events": 3, "consent_states": 3}

    _downgrade(engine, "0019")  # the ledger's keys back, so the upgrade has them to drop
    assert current_revision(engine) == "0019"
    upgrade(engine)

    assert current_revision(engine) == "0020"
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
