"""Tenants are named by slug on the command line and by id inside the API."""

from __future__ import annotations

import uuid

from consentry.domain.model import Tenant
from consentry.services.ports import UnitOfWork

TenantRef = str | uuid.UUID


def find_tenant(uow: UnitOfWork, ref: TenantRef) -> Tenant:
    return uow.tenants.get(ref) if isinstance(ref, uuid.UUID) else uow.tenants.by_slug(ref)
