"""Use cases for contacts: normalised, validated, and stored sealed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime

from consentry.domain.errors import (
    AlreadyExists,
    ContactNotFound,
    DateOfBirthInFuture,
    InvalidEmail,
    InvalidPhone,
)
from consentry.domain.ids import new_id
from consentry.domain.model import Contact, PhoneType, PointKind, Tenant
from consentry.domain.rules import majority_date, pack_for
from consentry.services.addresses import (
    normalize_country,
    normalize_email,
    normalize_phone,
    normalize_postal,
    validate_time_zone,
)
from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


@dataclass(frozen=True, slots=True)
class ContactInput:
    """A contact as a caller gives it, before normalisation."""

    name: str | None = None
    email: str | None = None
    phone: str | None = None
    whatsapp: str | None = None
    postal_address: str | None = None
    country: str | None = None
    time_zone: str | None = None
    locale: str | None = None
    date_of_birth: date | None = None
    age_attested: bool = False
    external_ref: str | None = None


def build_contact(
    tenant: Tenant, data: ContactInput, now: datetime, contact_id: uuid.UUID
) -> Contact:
    """Validate and normalise; raise an InvalidInput subclass naming the first bad field."""
    country = normalize_country(data.country)
    region = country or tenant.country
    phone: str | None = None
    phone_type: PhoneType | None = None
    if data.phone:
        phone, phone_type = normalize_phone(data.phone, region, field="phone")
    whatsapp = (
        normalize_phone(data.whatsapp, region, field="whatsapp")[0] if data.whatsapp else None
    )
    if data.date_of_birth is not None and data.date_of_birth > now.date():
        raise DateOfBirthInFuture("the date of birth is in the future", field="date_of_birth")
    adult_on = (
        majority_date(data.date_of_birth, pack_for(country, tenant.country))
        if data.date_of_birth is not None
        else None
    )
    return Contact(
        id=contact_id,
        tenant_id=tenant.id,
        name=(data.name or "").strip() or None,
        email=normalize_email(data.email) if data.email else None,
        phone=phone,
        phone_type=phone_type,
        whatsapp=whatsapp,
        postal_address=normalize_postal(data.postal_address) if data.postal_address else None,
        country=country,
        time_zone=validate_time_zone(data.time_zone),
        locale=(data.locale or "").strip() or None,
        date_of_birth=data.date_of_birth,
        age_attested=data.age_attested,
        adult_on=adult_on,
        external_ref=data.external_ref,
        created_at=now,
        updated_at=now,
    )


def add_contact(
    uow: UnitOfWork, tenant_slug: TenantRef, data: ContactInput, now: datetime | None = None
) -> Contact:
    """Create a contact; refuses a second contact with the same email address; commits."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        contact = build_contact(tenant, data, now, new_id())
        if contact.email and uow.contacts.find_by_point(tenant.id, PointKind.EMAIL, contact.email):
            raise AlreadyExists("a contact with this email address exists", field="email")
        uow.contacts.add(contact)
        uow.commit()
    return contact


def resolve_contact(uow: UnitOfWork, tenant: Tenant, reference: str) -> Contact:
    """Find a contact by id, email address or phone number (within an open unit of work)."""
    reference = reference.strip()
    try:
        return uow.contacts.get(tenant.id, uuid.UUID(reference))
    except ValueError:
        pass
    found: Contact | None
    if "@" in reference:
        try:
            found = uow.contacts.find_by_point(
                tenant.id, PointKind.EMAIL, normalize_email(reference)
            )
        except InvalidEmail as exc:
            raise ContactNotFound("no contact with that address", field="contact") from exc
    else:
        try:
            number, _ = normalize_phone(reference, tenant.country, field="contact")
        except InvalidPhone as exc:
            raise ContactNotFound("no contact with that reference", field="contact") from exc
        found = uow.contacts.find_by_point(tenant.id, PointKind.PHONE, number)
    if found is None:
        raise ContactNotFound("no contact with that reference", field="contact")
    return found


def get_contact(uow: UnitOfWork, tenant_slug: TenantRef, reference: str) -> Contact:
    with uow:
        return resolve_contact(uow, find_tenant(uow, tenant_slug), reference)
