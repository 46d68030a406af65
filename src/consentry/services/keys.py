"""Master-key rotation: every tenant's data key re-wrapped under the new master key.

The data keys themselves do not change, so no personal data is re-encrypted; the old master key
stays in the key ring until every wrapped key has moved to the new one.
"""

from __future__ import annotations

from datetime import datetime

from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork


def rewrap_data_keys(uow: UnitOfWork, now: datetime | None = None) -> int:
    """Re-wrap every tenant's data key under the key ring's active master key; commits."""
    now = now or utcnow()
    with uow:
        tenants = uow.tenants.list()
        for tenant in tenants:
            wrapped = uow.tenants.wrapped_key(tenant.id)
            uow.tenants.set_wrapped_key(tenant.id, uow.keys.rewrap(tenant.id, wrapped), now)
        uow.commit()
    return len(tenants)
