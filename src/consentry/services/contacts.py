"""Use cases for contacts: normalised, validated, and stored sealed."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime

from consentry.domain.errors import (
    AlreadyExists,
    ContactNotFound,
    DateOfBirthInFuture,
    InvalidEmail,
    InvalidPhone,
)
from consentry.domain.ids import new_id
from consentry.domain.model import (
    POINT_KIND,
    Channel,
    Contact,
    PhoneType,
    PointKind,
    Tenant,
    point_index_value,
)
from consentry.domain.rules import majority_date, pack_for
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.services.addresses import (
    normalize_country,
    normalize_email,
    normalize_phone,
    normalize_postal,
    validate_time_zone,
)
from consentry.services.audit import RequestContext, audit
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
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    data: ContactInput,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> Contact:
    """Create a contact; refuses a second contact with the same email address; commits."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        contact = build_contact(tenant, data, now, new_id())
        if contact.email and uow.contacts.find_by_point(tenant.id, PointKind.EMAIL, contact.email):
            raise AlreadyExists("a contact with this email address exists", field="email")
        uow.contacts.add(contact)
        audit(uow, context, tenant.id, "contact.create", "contact", contact.id)
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


def get_contact(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    reference: str,
    context: RequestContext | None = None,
) -> Contact:
    """One contact, decrypted; an API read is recorded in the audit log."""
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        contact = resolve_contact(uow, tenant, reference)
        if context is not None:
            audit(uow, context, tenant.id, "contact.read", "contact", contact.id)
            uow.commit()
        return contact


def update_contact(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    contact_id: uuid.UUID,
    data: ContactInput,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> Contact:
    """Replace a contact's details (validated like a new contact); commits.

    Consent stays with the addresses it was given for: a changed address has none until the
    person gives it again.
    """
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        current = uow.contacts.get(tenant.id, contact_id)
        if current.erased_at is not None:
            raise ContactNotFound("contact not found", field="contact")
        updated = replace(
            build_contact(tenant, data, now, contact_id),
            created_at=current.created_at,
            whatsapp_last_inbound_at=current.whatsapp_last_inbound_at,
        )
        if updated.email and updated.email.lower() != (current.email or "").lower():
            clash = uow.contacts.find_by_point(tenant.id, PointKind.EMAIL, updated.email)
            if clash is not None and clash.id != contact_id:
                raise AlreadyExists("a contact with this email address exists", field="email")
        uow.contacts.update(updated)
        audit(uow, context, tenant.id, "contact.update", "contact", contact_id)
        uow.commit()
    return updated


def list_contacts(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    *,
    after: uuid.UUID | None,
    limit: int,
    context: RequestContext | None = None,
) -> list[Contact]:
    """One page of contacts after a cursor; an API read is recorded (one entry per page)."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        found = uow.contacts.page(tenant.id, after, limit)
        if context is not None:
            audit(uow, context, tenant.id, "contact.list", "contact", None)
            uow.commit()
        return found


_ERASED_CHANNELS: tuple[tuple[str, tuple[Channel, ...]], ...] = (
    ("email", (Channel.EMAIL,)),
    ("phone", (Channel.SMS, Channel.VOICE)),
    ("whatsapp", (Channel.WHATSAPP,)),
    ("postal_address", (Channel.POST,)),
)


def erase_contact(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    contact_id: uuid.UUID,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> None:
    """Delete a contact's personal data; commits.

    What the law requires stays: the consent ledger (its chain covers only keyed digests), and a
    suppression tombstone per address (a blind index, not the address) so that the person is
    never messaged again by accident, e.g. when a list containing them is imported later.
    """
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        contact = uow.contacts.get(tenant.id, contact_id)
        keys: list[bytes] = []
        for attribute, channels in _ERASED_CHANNELS:
            if getattr(contact, attribute) is None:
                continue
            kind = POINT_KIND[channels[0]]
            value = point_index_value(kind, getattr(contact, attribute))
            key = uow.keys.blind_index(kind, value)
            keys.append(key)
            for channel in channels:
                uow.suppressions.add(
                    Suppression(
                        id=new_id(),
                        tenant_id=tenant.id,
                        point_key=key,
                        channel=channel,
                        scope=SuppressionScope.ALL,
                        reason=SuppressionReason.ERASED,
                        created_at=now,
                        source="erasure",
                        actor=context.principal.actor if context else None,
                    )
                )
        uow.ledger.scrub_evidence(tenant.id, contact.id)
        # Which confirmations and notices went to the person, kept for their bounces, goes too.
        uow.signals.forget_courtesy_to(tenant.id, keys)
        # What they sent (an SMS, a reply) and providers' reports about them: payloads emptied.
        uow.signals.forget_payloads(tenant.id, keys)
        uow.deliveries.forget_contact(tenant.id, contact.id, now)
        uow.deliveries.forget_captured_to(tenant.id, keys)
        uow.notices.forget_contact(tenant.id, contact.id, now)
        uow.lists.forget_contact(tenant.id, contact.id)
        # Cells of import reports that are one of their addresses (another contact's email,
        # a minor's address), linked since migration 0019.
        uow.imports.forget_values(tenant.id, keys)
        uow.contacts.erase(tenant.id, contact.id, now)
        audit(uow, context, tenant.id, "contact.erase", "contact", contact.id)
        uow.commit()
