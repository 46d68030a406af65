"""Shared helpers for repositories: tenant data keys and field encryption."""

from __future__ import annotations

import uuid

from sqlalchemy import Connection, select

from consentry.domain.errors import TenantNotFound
from consentry.persistence.tables import tenants
from consentry.services.ports import KeyRing


class FieldCrypto:
    """Encrypts and decrypts one tenant's personal-data columns, caching wrapped keys per unit
    of work."""

    def __init__(self, conn: Connection, keys: KeyRing) -> None:
        self._conn = conn
        self._keys = keys
        self._wrapped: dict[uuid.UUID, bytes] = {}

    def wrapped_key(self, tenant_id: uuid.UUID) -> bytes:
        key = self._wrapped.get(tenant_id)
        if key is None:
            key = self._conn.execute(
                select(tenants.c.data_key).where(tenants.c.id == tenant_id)
            ).scalar_one_or_none()
            if key is None:
                raise TenantNotFound(f"tenant {tenant_id} not found")
            self._wrapped[tenant_id] = key
        return key

    def know(self, tenant_id: uuid.UUID, wrapped_key: bytes) -> None:
        """The tenant's wrapped key, as just read with its row in this unit of work."""
        self._wrapped[tenant_id] = bytes(wrapped_key)

    def seal(self, tenant_id: uuid.UUID, purpose: str, value: str | None) -> bytes | None:
        if value is None:
            return None
        return self._keys.encrypt(tenant_id, self.wrapped_key(tenant_id), purpose, value)

    def open(self, tenant_id: uuid.UUID, purpose: str, value: bytes | None) -> str | None:
        if value is None:
            return None
        return self._keys.decrypt(tenant_id, self.wrapped_key(tenant_id), purpose, value)
