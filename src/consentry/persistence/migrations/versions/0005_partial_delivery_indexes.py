"""partial delivery indexes: campaign rows without keys, ids or send times are left out

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 07:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (name, columns, unique): each indexes the rows whose last column is set.
_PARTIAL = (
    ("uq_deliveries_tenant_idempotency", ["tenant_id", "idempotency_key"], True),
    ("ix_deliveries_contact_sent", ["contact_id", "sent_at"], False),
    ("ix_deliveries_provider", ["provider_message_id"], False),
    ("ix_deliveries_message_id", ["message_id"], False),
)


def upgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_deliveries_tenant_idempotency", type_="unique")
        for name, _, _ in _PARTIAL[1:]:
            batch_op.drop_index(name)
    for name, columns, unique in _PARTIAL:
        where = sa.text(f"{columns[-1]} IS NOT NULL")
        op.create_index(
            name,
            "deliveries",
            columns,
            unique=unique,
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for name, _, _ in _PARTIAL:
        op.drop_index(name, table_name="deliveries")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            "uq_deliveries_tenant_idempotency", ["tenant_id", "idempotency_key"]
        )
        for name, columns, _ in _PARTIAL[1:]:
            batch_op.create_index(name, columns, unique=False)
