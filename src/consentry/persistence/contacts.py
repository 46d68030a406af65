"""Contacts repository: personal data sealed per tenant, found through blind indexes."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, update
from sqlalchemy.exc import IntegrityError

from consentry.domain.errors import AlreadyExists, ContactNotFound
from consentry.domain.model import (
    POINT_KIND,
    Channel,
    Contact,
    PhoneType,
    PointKind,
    point_index_value,
)
from consentry.persistence.driver import DriverStatement, insert_new
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import contacts
from consentry.persistence.types import uuid_among
from consentry.services.ports import KeyRing

_KEY_COLUMN = {
    Channel.EMAIL: contacts.c.email_key,
    Channel.SMS: contacts.c.phone_key,
    Channel.VOICE: contacts.c.phone_key,
    Channel.WHATSAPP: contacts.c.whatsapp_key,
    Channel.POST: contacts.c.postal_key,
}


def key_column(channel: Channel) -> Any:
    """The blind-index column a channel delivers to."""
    return _KEY_COLUMN[channel]


# Every stored column of a contact, in the order bulk writes use.
CONTACT_COLUMNS = (
    "id", "tenant_id", "created_at", "updated_at", "external_ref", "name_enc", "email_enc",
    "email_key", "phone_enc", "phone_key", "phone_type", "whatsapp_enc", "whatsapp_key",
    "postal_enc", "postal_key", "country", "time_zone", "locale", "dob_enc", "adult_on",
    "age_attested", "whatsapp_last_inbound_at", "erased_at",
)  # fmt: skip
# A new contact (a form's subscriber, an API call), unless its address is taken.
_ADD = insert_new(contacts, CONTACT_COLUMNS, contacts.c.id)

# Read for every decision and consent write, so built once: building a statement costs about
# as much CPU as running it.
_CONTACT_BY_ID = DriverStatement(
    select(contacts).where(
        contacts.c.tenant_id == bindparam("tenant"),
        contacts.c.id == bindparam("id"),
        contacts.c.erased_at.is_(None),
    )
)


def _by_key(column: Any) -> DriverStatement:
    return DriverStatement(
        select(contacts)
        .where(contacts.c.tenant_id == bindparam("tenant"), column == bindparam("key"))
        .order_by(contacts.c.created_at)
        .limit(1)
    )


# The oldest contact with a blind index, per index column: a form's subscriber, an inbound
# message's sender and a look-up by address all start with one.
_BY_KEY = {
    column.name: _by_key(column)
    for column in (contacts.c.email_key, contacts.c.phone_key, contacts.c.whatsapp_key,
                   contacts.c.postal_key)
}  # fmt: skip


class SqlContactRepository:
    def __init__(self, conn: Connection, keys: KeyRing, crypto: FieldCrypto) -> None:
        self._conn = conn
        self._keys = keys
        self._crypto = crypto

    def _index(self, kind: PointKind, value: str | None) -> bytes | None:
        if value is None:
            return None
        return self._keys.blind_index(kind, point_index_value(kind, value))

    def columns(self, contact: Contact) -> dict[str, Any]:
        """The stored columns of a contact besides its ids and times: sealed and indexed."""
        seal = self._crypto.seal
        tid = contact.tenant_id
        dob = None if contact.date_of_birth is None else contact.date_of_birth.isoformat()
        return {
            "external_ref": contact.external_ref,
            "name_enc": seal(tid, "contacts.name", contact.name),
            "email_enc": seal(tid, "contacts.email", contact.email),
            "email_key": self._index(PointKind.EMAIL, contact.email),
            "phone_enc": seal(tid, "contacts.phone", contact.phone),
            "phone_key": self._index(PointKind.PHONE, contact.phone),
            "phone_type": None if contact.phone_type is None else contact.phone_type.value,
            "whatsapp_enc": seal(tid, "contacts.whatsapp", contact.whatsapp),
            "whatsapp_key": self._index(PointKind.PHONE, contact.whatsapp),
            "postal_enc": seal(tid, "contacts.postal", contact.postal_address),
            "postal_key": self._index(PointKind.POSTAL, contact.postal_address),
            "country": contact.country,
            "time_zone": contact.time_zone,
            "locale": contact.locale,
            "dob_enc": seal(tid, "contacts.dob", dob),
            "adult_on": contact.adult_on,
            "age_attested": contact.age_attested,
            "whatsapp_last_inbound_at": contact.whatsapp_last_inbound_at,
            "erased_at": contact.erased_at,
        }

    def add(self, contact: Contact) -> None:
        values = {
            "id": contact.id,
            "tenant_id": contact.tenant_id,
            "created_at": contact.created_at,
            "updated_at": contact.created_at,
            **self.columns(contact),
        }
        if not _ADD[self._conn.dialect.name].rows(self._conn, values):
            raise AlreadyExists("a contact with this email address exists", field="email")

    def update(self, contact: Contact) -> None:
        values = self.columns(contact)
        try:
            with self._conn.begin_nested():
                result = self._conn.execute(
                    update(contacts)
                    .where(contacts.c.tenant_id == contact.tenant_id, contacts.c.id == contact.id)
                    .values(updated_at=contact.updated_at or contact.created_at, **values)
                )
        except IntegrityError as exc:
            raise AlreadyExists("a contact with this email address exists", field="email") from exc
        if result.rowcount != 1:
            raise ContactNotFound(f"contact {contact.id} not found", field="contact")

    def _contact(self, row: Any) -> Contact:
        tid = row.tenant_id
        open_ = self._crypto.open
        dob = open_(tid, "contacts.dob", row.dob_enc)
        return Contact(
            id=row.id,
            tenant_id=tid,
            name=open_(tid, "contacts.name", row.name_enc),
            email=open_(tid, "contacts.email", row.email_enc),
            phone=open_(tid, "contacts.phone", row.phone_enc),
            phone_type=None if row.phone_type is None else PhoneType(row.phone_type),
            whatsapp=open_(tid, "contacts.whatsapp", row.whatsapp_enc),
            postal_address=open_(tid, "contacts.postal", row.postal_enc),
            country=row.country,
            time_zone=row.time_zone,
            locale=row.locale,
            date_of_birth=None if dob is None else date.fromisoformat(dob),
            age_attested=row.age_attested,
            adult_on=row.adult_on,
            whatsapp_last_inbound_at=row.whatsapp_last_inbound_at,
            external_ref=row.external_ref,
            created_at=row.created_at,
            updated_at=row.updated_at,
            erased_at=row.erased_at,
        )

    def get(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> Contact:
        row = _CONTACT_BY_ID.one_or_none(self._conn, {"tenant": tenant_id, "id": contact_id})
        if row is None:
            raise ContactNotFound(f"contact {contact_id} not found", field="contact")
        return self._contact(row)

    def many(self, tenant_id: uuid.UUID, contact_ids: list[uuid.UUID]) -> list[Contact]:
        """The contacts among ``contact_ids`` that exist and are not erased."""
        among = uuid_among(self._conn.dialect.name, contacts.c.id, contact_ids, "many_ids")
        rows = self._conn.execute(
            select(contacts).where(
                contacts.c.tenant_id == tenant_id, among, contacts.c.erased_at.is_(None)
            )
        ).all()
        return [self._contact(r) for r in rows]

    def find_by_address(
        self, tenant_id: uuid.UUID, channel: Channel, normalized: str
    ) -> Contact | None:
        """The (oldest) contact whose address *on this channel* is ``normalized``: a WhatsApp
        number is looked up among WhatsApp numbers, not among phone numbers for SMS."""
        key = self._index(POINT_KIND[channel], normalized)
        statement = _BY_KEY[key_column(channel).name]
        row = statement.one_or_none(self._conn, {"tenant": tenant_id, "key": key})
        return None if row is None else self._contact(row)

    def find_by_point(
        self, tenant_id: uuid.UUID, kind: PointKind, normalized: str
    ) -> Contact | None:
        key = self._index(kind, normalized)
        columns = (
            [contacts.c.email_key]
            if kind is PointKind.EMAIL
            else [contacts.c.postal_key]
            if kind is PointKind.POSTAL
            else [contacts.c.phone_key, contacts.c.whatsapp_key]
        )
        for column in columns:
            row = _BY_KEY[column.name].one_or_none(self._conn, {"tenant": tenant_id, "key": key})
            if row is not None:
                return self._contact(row)
        return None

    def point_key(self, contact: Contact, channel: Channel) -> bytes | None:
        return self._index(POINT_KIND[channel], contact.address_for(channel))

    def erase(self, tenant_id: uuid.UUID, contact_id: uuid.UUID, at: datetime) -> None:
        """Scrub every piece of personal data from the row; the row stays as a tombstone."""
        self._conn.execute(
            update(contacts)
            .where(contacts.c.tenant_id == tenant_id, contacts.c.id == contact_id)
            .values(
                name_enc=None,
                email_enc=None,
                email_key=None,
                phone_enc=None,
                phone_key=None,
                phone_type=None,
                whatsapp_enc=None,
                whatsapp_key=None,
                postal_enc=None,
                postal_key=None,
                dob_enc=None,
                adult_on=None,
                external_ref=None,
                locale=None,
                time_zone=None,
                country=None,
                whatsapp_last_inbound_at=None,
                erased_at=at,
                updated_at=at,
            )
        )

    def page(self, tenant_id: uuid.UUID, after: uuid.UUID | None, limit: int) -> list[Contact]:
        """Contacts in id order (ids are time-ordered), after a cursor."""
        query = select(contacts).where(
            contacts.c.tenant_id == tenant_id, contacts.c.erased_at.is_(None)
        )
        if after is not None:
            query = query.where(contacts.c.id > after)
        rows = self._conn.execute(query.order_by(contacts.c.id).limit(limit))
        return [self._contact(r) for r in rows]

    def count(self, tenant_id: uuid.UUID) -> int:
        return int(
            self._conn.execute(
                select(func.count()).select_from(contacts).where(contacts.c.tenant_id == tenant_id)
            ).scalar_one()
        )
