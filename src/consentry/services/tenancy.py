"""Use cases for tenants, topics and policy documents."""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from datetime import datetime

from consentry.domain.errors import UnknownValue
from consentry.domain.ids import new_id
from consentry.domain.model import (
    ALL_MARKETING_KEY,
    ALL_SERVICE_KEY,
    BusinessProfile,
    Category,
    PolicyDocument,
    PolicyKind,
    PolicyStatus,
    Tenant,
    TenantStatus,
    Topic,
    content_hash,
)
from consentry.services.addresses import normalize_country, normalize_email
from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


def _slug(value: str, field: str) -> str:
    if not _SLUG.match(value):
        raise UnknownValue(
            f"{field} must be 2-63 lower-case letters, digits or dashes", field=field
        )
    return value


def create_tenant(
    uow: UnitOfWork,
    *,
    slug: str,
    name: str,
    profile: BusinessProfile,
    now: datetime | None = None,
) -> Tenant:
    """Create a tenant with its data key and its two umbrella topics; commits."""
    now = now or utcnow()
    country = normalize_country(profile.country)
    if country is None:
        raise UnknownValue("the business profile needs a country", field="country")
    if not name.strip() or not profile.legal_name.strip():
        raise UnknownValue("name and legal name are required", field="legal_name")
    tenant = Tenant(
        id=new_id(),
        slug=_slug(slug, "slug"),
        name=name.strip(),
        profile=BusinessProfile(
            legal_name=profile.legal_name.strip(),
            country=country,
            description=profile.description,
            contact_email=normalize_email(profile.contact_email) if profile.contact_email else None,
            contact_phone=profile.contact_phone,
            postal_address=profile.postal_address,
            website=profile.website,
        ),
        status=TenantStatus.ACTIVE,
        created_at=now,
    )
    with uow:
        uow.tenants.add(tenant, uow.keys.new_wrapped_data_key(tenant.id))
        for key, label, category in (
            (ALL_MARKETING_KEY, "All marketing", Category.MARKETING),
            (ALL_SERVICE_KEY, "All service messages", Category.SERVICE),
        ):
            uow.topics.add(
                Topic(
                    id=new_id(),
                    tenant_id=tenant.id,
                    key=key,
                    name=label,
                    category=category,
                    umbrella=True,
                    created_at=now,
                )
            )
        uow.commit()
    return tenant


def create_topic(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    *,
    key: str,
    name: str,
    category: Category,
    requires_double_opt_in: bool = False,
    description: str = "",
    now: datetime | None = None,
) -> Topic:
    """Add a topic to a tenant; commits."""
    topic_key = _slug(key, "key")
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        topic = Topic(
            id=new_id(),
            tenant_id=tenant.id,
            key=topic_key,
            name=name.strip() or topic_key,
            category=category,
            requires_double_opt_in=requires_double_opt_in,
            description=description,
            created_at=now or utcnow(),
        )
        uow.topics.add(topic)
        uow.commit()
    return topic


def list_topics(uow: UnitOfWork, tenant_slug: TenantRef) -> list[Topic]:
    with uow:
        return uow.topics.list(find_tenant(uow, tenant_slug).id)


def draft_policy(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    *,
    kind: PolicyKind,
    title: str,
    body: str,
    locale: str = "en",
    now: datetime | None = None,
) -> PolicyDocument:
    """Store a new draft version of a policy document; commits."""
    if not body.strip():
        raise UnknownValue("a policy document needs a body", field="body")
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        document = PolicyDocument(
            id=new_id(),
            tenant_id=tenant.id,
            kind=kind,
            version=uow.policies.latest_version(tenant.id, kind) + 1,
            title=title,
            body=body,
            locale=locale,
            content_hash=content_hash(body),
            status=PolicyStatus.DRAFT,
            created_at=now or utcnow(),
        )
        uow.policies.add(document)
        uow.commit()
    return document


def publish_policy(
    uow: UnitOfWork, tenant_slug: TenantRef, document_id: uuid.UUID, now: datetime | None = None
) -> PolicyDocument:
    """Publish a draft; from then on it is immutable and consent evidence may cite it; commits."""
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        document = uow.policies.publish(tenant.id, document_id, now or utcnow())
        uow.commit()
    return document


def list_policies(
    uow: UnitOfWork, tenant_ref: TenantRef, kind: PolicyKind | None = None
) -> list[PolicyDocument]:
    with uow:
        return uow.policies.list(find_tenant(uow, tenant_ref).id, kind)


def update_profile(
    uow: UnitOfWork, tenant_ref: TenantRef, profile: BusinessProfile, now: datetime | None = None
) -> Tenant:
    """Replace a tenant's business profile (what its messages show); commits."""
    country = normalize_country(profile.country)
    if country is None:
        raise UnknownValue("the business profile needs a country", field="country")
    if not profile.legal_name.strip():
        raise UnknownValue("the legal name is required", field="legal_name")
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        contact_email = normalize_email(profile.contact_email) if profile.contact_email else None
        uow.tenants.set_profile(
            tenant.id,
            replace(profile, country=country, contact_email=contact_email),
            now or utcnow(),
        )
        updated = uow.tenants.get(tenant.id)
        uow.commit()
    return updated
