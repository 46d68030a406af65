"""deliveries without foreign keys: planning a campaign no longer checks five keys per row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 08:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, parent table): see persistence/tables.py for why deliveries carry none.
_KEYS = (
    ("campaign_id", "campaigns"),
    ("contact_id", "contacts"),
    ("template_id", "templates"),
    ("tenant_id", "tenants"),
    ("topic_id", "topics"),
)


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        for column, parent in _KEYS:
            batch_op.drop_constraint(f"fk_deliveries_{column}_{parent}", type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        for column, parent in _KEYS:
            batch_op.create_foreign_key(
                f"fk_deliveries_{column}_{parent}", parent, [column], ["id"]
            )
