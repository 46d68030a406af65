"""Use cases for suppressions and do-not-contact registries."""

from __future__ import annotations

import uuid
from datetime import datetime

from consentry.domain.errors import SuppressionNotLiftable, UnknownValue
from consentry.domain.ids import new_id
from consentry.domain.model import POINT_KIND, Channel, PointKind, point_index_value
from consentry.domain.suppression import (
    LIFTABLE_REASONS,
    Suppression,
    SuppressionReason,
    SuppressionScope,
)
from consentry.services.addresses import normalize_email, normalize_phone, normalize_postal
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


def normalize_point(kind: PointKind, raw: str, default_region: str | None) -> str:
    if kind is PointKind.EMAIL:
        return normalize_email(raw)
    if kind is PointKind.PHONE:
        return normalize_phone(raw, default_region, field="address")[0]
    return normalize_postal(raw)


def add_suppression(
    uow: UnitOfWork,
    tenant_slug: TenantRef | None,
    *,
    address: str,
    channels: list[Channel],
    reason: SuppressionReason,
    scope: SuppressionScope = SuppressionScope.ALL,
    source: str | None = None,
    note: str | None = None,
    actor: str | None = None,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> list[Suppression]:
    """Suppress an address on each channel, for one tenant or (tenant None) platform-wide.

    Commits. The address is stored only as its blind index, so a suppression outlives the contact.
    """
    if not channels:
        raise UnknownValue("name at least one channel", field="channel")
    kinds = {POINT_KIND[c] for c in channels}
    if len(kinds) != 1:
        raise UnknownValue("channels must share one kind of address", field="channel")
    kind = kinds.pop()
    now = now or utcnow()
    created: list[Suppression] = []
    with uow:
        tenant = find_tenant(uow, tenant_slug) if tenant_slug else None
        normalized = normalize_point(kind, address, tenant.country if tenant else None)
        point_key = uow.keys.blind_index(kind, point_index_value(kind, normalized))
        uow.fences.exclusive([point_key])  # see record_consent: no message leaves after this
        for channel in channels:
            tenant_id = tenant.id if tenant else None
            existing = [
                s
                for s in uow.suppressions.active_for(tenant_id, point_key, channel)
                if s.reason is reason and s.scope is scope and s.tenant_id == tenant_id
            ]
            if existing:  # idempotent: the same block already stands
                created.append(existing[0])
                continue
            suppression = Suppression(
                id=new_id(),
                tenant_id=tenant_id,
                point_key=point_key,
                channel=channel,
                scope=scope,
                reason=reason,
                created_at=now,
                source=source,
                note=note,
                actor=actor,
            )
            uow.suppressions.add(suppression)
            created.append(suppression)
        if tenant is not None:
            audit(uow, context, tenant.id, "suppression.create", "suppression", created[0].id)
        uow.commit()
    return created


def list_suppressions(
    uow: UnitOfWork, tenant_slug: TenantRef, include_lifted: bool = False
) -> list[Suppression]:
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        return uow.suppressions.list(tenant.id, include_lifted)


def lift_suppression(
    uow: UnitOfWork,
    tenant_slug: TenantRef,
    suppression_id: uuid.UUID,
    actor: str,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> Suppression:
    """Lift a manual block or an unsubscribe; every other reason is permanent. Commits."""
    with uow:
        tenant = find_tenant(uow, tenant_slug)
        suppression = uow.suppressions.get(tenant.id, suppression_id)
        if suppression.tenant_id is None:
            raise SuppressionNotLiftable("a platform-wide suppression is lifted by the platform")
        if suppression.reason not in LIFTABLE_REASONS:
            raise SuppressionNotLiftable(
                f"a {suppression.reason.value} suppression cannot be lifted"
            )
        uow.suppressions.lift(suppression.id, now or utcnow(), actor)
        lifted = uow.suppressions.get(tenant.id, suppression.id)
        audit(uow, context, tenant.id, "suppression.lift", "suppression", suppression.id)
        uow.commit()
    return lifted


def list_on_registry(
    uow: UnitOfWork,
    registry: str,
    numbers: list[str],
    default_region: str | None,
    now: datetime | None = None,
) -> int:
    """Add phone numbers to a do-not-contact registry (platform-wide); commits; returns how many
    were newly listed."""
    if not registry.strip():
        raise UnknownValue("name the registry", field="registry")
    now = now or utcnow()
    added = 0
    with uow:
        for raw in numbers:
            number = normalize_phone(raw, default_region, field="number")[0]
            key = uow.keys.blind_index(PointKind.PHONE, point_index_value(PointKind.PHONE, number))
            added += uow.dnc.add(registry.strip(), key, now)
        uow.commit()
    return added
