"""An import's new contacts, sealed away from the connection, are stored exactly as the
contacts repository stores them: same columns, readable back, found by the same indexes."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select
from tests.integration.helpers import UowFactory, shop

from consentry.domain.ids import new_id
from consentry.domain.model import Contact, PhoneType
from consentry.persistence.tables import contacts
from consentry.persistence.uow import SqlUnitOfWork

INDEXED = ("email_key", "phone_key", "whatsapp_key", "postal_key")


def test_a_sealed_contact_reads_back_as_the_repository_would_store_it(
    new_uow: UowFactory,
) -> None:
    shop(new_uow)
    now = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    uow = new_uow()
    assert isinstance(uow, SqlUnitOfWork)
    with uow:
        tenant = uow.tenants.by_slug("shop")
        sealed = Contact(
            id=new_id(), tenant_id=tenant.id, name="Ana Lima", email="Ana.Lima@example.com",
            phone="+14155550123", phone_type=PhoneType.MOBILE, whatsapp="+14155550124",
            postal_address="1 Main St", country="US", time_zone="America/New_York", locale="en",
            date_of_birth=date(1990, 5, 17), age_attested=True, adult_on=date(2008, 5, 17),
            external_ref="C-1", created_at=now, updated_at=now,
        )  # fmt: skip
        added = Contact(
            id=new_id(), tenant_id=tenant.id, name="Ben", email="ben@example.com",
            phone="+14155550125", whatsapp="+14155550126", postal_address="2 Main St",
            created_at=now, updated_at=now,
        )  # fmt: skip
        sealer = uow.import_rows.sealer(tenant.id)
        uow.import_rows.add_contacts([sealer.contact(sealed, None)])
        uow.contacts.add(added)
        assert uow.contacts.get(tenant.id, sealed.id) == sealed
        rows = {
            r.id: r
            for r in uow.connection.execute(
                select(contacts).where(contacts.c.id.in_([sealed.id, added.id]))
            )
        }
        for column in INDEXED:
            expected = uow.contacts.columns(sealed)[column]
            assert expected is not None
            assert bytes(getattr(rows[sealed.id], column)) == expected
