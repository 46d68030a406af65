"""Personal data is stored encrypted and found through blind indexes (guarantee 4)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, select, text
from tests.integration.helpers import UowFactory, disclosure, grant, person, shop

from consentry.domain.errors import ContactNotFound, KeyUnavailable
from consentry.domain.model import PointKind
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.tables import metadata
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.keys import rewrap_data_keys

SECRETS = (
    "ana@example.com",
    "+16175550142",
    "6175550142",
    "Ana Lima",
    "203.0.113.9",
    "Mozilla/5.0 test",
    "1990-02-03",
)


def _all_stored_text(engine: Engine) -> str:
    """Every value of every table, as the database returns it, rendered to text."""
    chunks: list[str] = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        chunks.append(bytes(value).decode("latin-1"))
                    else:
                        chunks.append(str(value))
    return "\n".join(chunks)


def test_no_plaintext_personal_data_in_any_table(new_uow: UowFactory, engine: Engine) -> None:
    slug = shop(new_uow)
    person(new_uow, slug, date_of_birth=date(1990, 2, 3))
    grant(new_uow, slug, "ana@example.com", disclosure(new_uow, slug))
    stored = _all_stored_text(engine)
    for secret in SECRETS:
        assert secret not in stored, secret
    # The values are there, sealed: the repository opens them again.
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        found = uow.contacts.find_by_point(tenant.id, PointKind.EMAIL, "ANA@example.com")
        assert found is not None
        assert (found.email, found.phone, found.name) == (
            "ana@example.com",
            "+16175550142",
            "Ana Lima",
        )
        history = uow.ledger.history(tenant.id, found.id)
        assert history[0].evidence.ip_address == "203.0.113.9"


def test_sqlite_file_holds_no_plaintext(new_uow: UowFactory, engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        return  # the table-level check above covers PostgreSQL
    slug = shop(new_uow)
    person(new_uow, slug)
    engine.dispose()  # checkpoint the WAL into the main file
    path = Path(str(engine.url.database))
    raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
    for secret in SECRETS[:4]:
        assert secret.encode() not in raw, secret


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        assert inspect(engine).has_table("consent_events")
        return
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_contacts_of_one_tenant_are_invisible_to_another(new_uow: UowFactory) -> None:
    shop(new_uow, "one")
    shop(new_uow, "two")
    ana = person(new_uow, "one")
    with new_uow() as uow:
        two = uow.tenants.by_slug("two")
        assert uow.contacts.find_by_point(two.id, PointKind.EMAIL, "ana@example.com") is None
        with pytest.raises(ContactNotFound):
            uow.contacts.get(two.id, ana.id)


def test_master_key_rotation_rewraps_data_keys_without_losing_data(engine: Engine) -> None:
    old = FileKeyRing({1: b"\x05" * 32}, 1, b"\x06" * 32)
    both = FileKeyRing({1: b"\x05" * 32, 2: b"\x07" * 32}, 2, b"\x06" * 32)
    only_new = FileKeyRing({2: b"\x07" * 32}, 2, b"\x06" * 32)
    slug = shop(lambda: SqlUnitOfWork(engine, old))
    person(lambda: SqlUnitOfWork(engine, old), slug)
    with SqlUnitOfWork(engine, only_new) as uow, pytest.raises(KeyUnavailable):
        uow.contacts.find_by_point(uow.tenants.by_slug(slug).id, PointKind.EMAIL, "ana@example.com")
    assert rewrap_data_keys(SqlUnitOfWork(engine, both)) == 1
    with SqlUnitOfWork(engine, only_new) as uow:
        found = uow.contacts.find_by_point(
            uow.tenants.by_slug(slug).id, PointKind.EMAIL, "ana@example.com"
        )
        assert found is not None
        assert found.email == "ana@example.com"


def test_signals_in_keep_their_payloads_sealed(new_uow: UowFactory, engine: Engine) -> None:
    """A webhook's raw payload names the person (their number, their words, their address): it
    is kept sealed, and what is recorded beside it names no one."""
    from consentry.domain.model import Channel
    from consentry.domain.signals import Keyword, KeywordKind, ParsedInput, SignalSource
    from consentry.services.signals import SignalPolicy, ingest, keep_rejected

    slug = shop(new_uow)
    person(new_uow, slug)
    payload = b"From=%2B16175550142&Body=STOP+Ana+Lima&To=%2B15005550006"
    stop = Keyword(Channel.SMS, "+16175550142", "+15005550006", KeywordKind.OPT_OUT, "STOP")
    parsed = ParsedInput(SignalSource.TWILIO, "SM" + "1" * 32, (stop,))
    assert ingest(new_uow(), parsed, payload, "application/x-www-form-urlencoded",
                  policy=SignalPolicy()).status == "applied"  # fmt: skip
    keep_rejected(new_uow(), SignalSource.INBOUND_SMTP, b"To: ana@example.com\r\n\r\nhi",
                  "message/rfc822", why="not a report")  # fmt: skip
    stored = _all_stored_text(engine)
    for secret in (*SECRETS, "Ana%20Lima", "%2B16175550142", "STOP+Ana"):
        assert secret not in stored, secret
    with new_uow() as uow:  # the payload is there, sealed
        (record,) = uow.signals.inbound(status="applied")
        assert uow.signals.payload(record.id) == payload
