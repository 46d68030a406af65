"""A tenant's own keyword lists and reply texts (the keywords-file JSON, stored as given)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from consentry.persistence.driver import DriverStatement
from consentry.persistence.tables import tenant_keywords

# Read for every SMS or WhatsApp keyword that reaches a tenant's number.
_CONFIG = DriverStatement(
    select(tenant_keywords.c.config).where(tenant_keywords.c.tenant_id == bindparam("tenant"))
)


class SqlTenantKeywords:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, tenant_id: uuid.UUID) -> dict[str, Any] | None:
        row = _CONFIG.one_or_none(self._conn, {"tenant": tenant_id})
        return None if row is None else dict(json.loads(row.config))

    def put(
        self, tenant_id: uuid.UUID, config: dict[str, Any], at: datetime, by: str | None
    ) -> None:
        values = {"config": json.dumps(config, sort_keys=True), "updated_at": at, "updated_by": by}
        changed = self._conn.execute(
            update(tenant_keywords).where(tenant_keywords.c.tenant_id == tenant_id).values(values)
        )
        if changed.rowcount == 0:
            self._conn.execute(insert(tenant_keywords).values(tenant_id=tenant_id, **values))

    def clear(self, tenant_id: uuid.UUID) -> bool:
        gone = self._conn.execute(
            delete(tenant_keywords).where(tenant_keywords.c.tenant_id == tenant_id)
        )
        return gone.rowcount > 0
