"""Suppressions and do-not-contact registry entries, keyed by blind index."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, or_, select, update

from consentry.domain.errors import SuppressionNotFound
from consentry.domain.ids import new_id
from consentry.domain.model import Channel
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.persistence.driver import DriverStatement, insert_of
from consentry.persistence.tables import dnc_entries, suppressions


def _suppression(row: Any) -> Suppression:
    return Suppression(
        id=row.id,
        tenant_id=row.tenant_id,
        point_key=bytes(row.point_key),
        channel=Channel(row.channel),
        scope=SuppressionScope(row.scope),
        reason=SuppressionReason(row.reason),
        created_at=row.created_at,
        source=row.source,
        note=row.note,
        actor=row.actor,
        lifted_at=row.lifted_at,
        lifted_by=row.lifted_by,
    )


def _visible_to(tenant_id: uuid.UUID | None) -> Any:
    """A tenant sees its own and platform-wide suppressions; None means platform-wide only."""
    if tenant_id is None:
        return suppressions.c.tenant_id.is_(None)
    return or_(suppressions.c.tenant_id == tenant_id, suppressions.c.tenant_id.is_(None))


# Read for every decision and every message checked, so built once: building a statement costs
# about as much CPU as running it.
_ACTIVE = select(suppressions).where(
    suppressions.c.point_key == bindparam("point_key"),
    suppressions.c.channel == bindparam("channel"),
    suppressions.c.lifted_at.is_(None),
)
_ACTIVE_PLATFORM = DriverStatement(_ACTIVE.where(suppressions.c.tenant_id.is_(None)))
_ACTIVE_FOR_TENANT = DriverStatement(
    _ACTIVE.where(
        or_(suppressions.c.tenant_id == bindparam("tenant"), suppressions.c.tenant_id.is_(None))
    )
)
_ADD = DriverStatement(
    insert_of(
        suppressions,
        (
            "id",
            "tenant_id",
            "point_key",
            "channel",
            "scope",
            "reason",
            "source",
            "note",
            "actor",
            "created_at",
        ),
    )
)
_LIFT = DriverStatement(
    update(suppressions)
    .where(suppressions.c.id == bindparam("b_id"), suppressions.c.lifted_at.is_(None))
    .values(lifted_at=bindparam("b_at"), lifted_by=bindparam("b_by"))
)
_DNC_LISTED = (
    select(dnc_entries.c.id)
    .where(dnc_entries.c.point_key == bindparam("point_key"), dnc_entries.c.removed_at.is_(None))
    .limit(1)
)


class SqlSuppressionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, suppression: Suppression) -> None:
        _ADD.execute(
            self._conn,
            {
                "id": suppression.id,
                "tenant_id": suppression.tenant_id,
                "point_key": suppression.point_key,
                "channel": suppression.channel.value,
                "scope": suppression.scope.value,
                "reason": suppression.reason.value,
                "source": suppression.source,
                "note": suppression.note,
                "actor": suppression.actor,
                "created_at": suppression.created_at,
            },
        )

    def active_for(
        self, tenant_id: uuid.UUID | None, point_key: bytes, channel: Channel
    ) -> list[Suppression]:
        params: dict[str, Any] = {"point_key": point_key, "channel": channel.value}
        if tenant_id is None:
            rows = _ACTIVE_PLATFORM.rows(self._conn, params)
        else:
            rows = _ACTIVE_FOR_TENANT.rows(self._conn, {**params, "tenant": tenant_id})
        return [_suppression(r) for r in rows]

    def list(self, tenant_id: uuid.UUID, include_lifted: bool = False) -> list[Suppression]:
        query = select(suppressions).where(_visible_to(tenant_id))
        if not include_lifted:
            query = query.where(suppressions.c.lifted_at.is_(None))
        query = query.order_by(suppressions.c.created_at.desc())
        return [_suppression(r) for r in self._conn.execute(query)]

    def get(self, tenant_id: uuid.UUID, suppression_id: uuid.UUID) -> Suppression:
        row = self._conn.execute(
            select(suppressions).where(suppressions.c.id == suppression_id, _visible_to(tenant_id))
        ).one_or_none()
        if row is None:
            raise SuppressionNotFound(f"suppression {suppression_id} not found")
        return _suppression(row)

    def lift(self, suppression_id: uuid.UUID, at: datetime, by: str) -> None:
        _LIFT.execute(self._conn, {"b_id": suppression_id, "b_at": at, "b_by": by})


class SqlDncRegistry:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, registry: str, point_key: bytes, at: datetime) -> bool:
        """List a number; False if it is already listed on that registry."""
        existing = self._conn.execute(
            select(dnc_entries.c.id, dnc_entries.c.removed_at).where(
                dnc_entries.c.registry == registry, dnc_entries.c.point_key == point_key
            )
        ).one_or_none()
        if existing is not None:
            if existing.removed_at is None:
                return False
            self._conn.execute(
                update(dnc_entries)
                .where(dnc_entries.c.id == existing.id)
                .values(removed_at=None, listed_at=at)
            )
            return True
        self._conn.execute(
            insert(dnc_entries).values(
                id=new_id(), registry=registry, point_key=point_key, listed_at=at
            )
        )
        return True

    def remove(self, registry: str, point_key: bytes, at: datetime) -> bool:
        result = self._conn.execute(
            update(dnc_entries)
            .where(
                dnc_entries.c.registry == registry,
                dnc_entries.c.point_key == point_key,
                dnc_entries.c.removed_at.is_(None),
            )
            .values(removed_at=at)
        )
        return result.rowcount > 0

    def listed(self, point_key: bytes) -> bool:
        row = self._conn.execute(_DNC_LISTED, {"point_key": point_key}).first()
        return row is not None
