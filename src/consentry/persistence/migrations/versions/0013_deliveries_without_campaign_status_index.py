"""deliveries lose their (campaign, status) index

Planning writes a row per recipient into every index of ``deliveries``; this one cost about a
second of a million-recipient plan. What it served is served as well without it: a campaign's
pending rows are found through the (status, next attempt) index, its progress by one scan of
its rows (docs/performance.md, section 4).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 13:20:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_campaign_status", table_name="deliveries")


def downgrade() -> None:
    op.create_index(
        "ix_deliveries_campaign_status", "deliveries", ["campaign_id", "status"], unique=False
    )
