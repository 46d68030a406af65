"""a campaign's untried deliveries out of the due index; claims take them by a cursor

Planning a campaign wrote one entry per recipient into ``ix_deliveries_due`` (status,
next_attempt_at), a sixth of a million-recipient plan's time. The index now holds only the rows
a claim looks up by time or that are transactional: those with a next attempt, and those of no
campaign. A campaign's untried deliveries are claimed in contact order from its cursor,
``campaigns.claimed_through``, through ``uq_deliveries_campaign_contact``; a claim gives each
row it leases a next attempt at its lease's end, so a row whose worker stopped is claimed again
by time. Rows leased when this migration runs get the same.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 16:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DUE_WHERE = "next_attempt_at IS NOT NULL OR campaign_id IS NULL"


def upgrade() -> None:
    op.execute(
        "UPDATE deliveries SET next_attempt_at = lease_until WHERE lease_until IS NOT NULL"
        " AND next_attempt_at IS NULL AND status IN ('queued', 'deferred', 'sending')"
    )
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    where = sa.text(DUE_WHERE)
    op.create_index(
        "ix_deliveries_due",
        "deliveries",
        ["status", "next_attempt_at"],
        postgresql_where=where,
        sqlite_where=where,
    )
    op.add_column("campaigns", sa.Column("claimed_through", sa.Uuid()))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("claimed_through")
    op.drop_index("ix_deliveries_due", table_name="deliveries")
    op.create_index("ix_deliveries_due", "deliveries", ["status", "next_attempt_at"])
