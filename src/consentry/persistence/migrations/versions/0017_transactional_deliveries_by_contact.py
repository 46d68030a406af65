"""a contact's transactional messages are found through an index, for erasure

Erasing a person now also removes the data sealed in their transactional messages and stops the
ones not yet sent. Campaign deliveries are found through (campaign_id, contact_id); this partial
index finds the transactional ones (campaign_id IS NULL) without scanning every delivery, and
leaves campaign rows out, so planning writes no entry into it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 00:05:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_WHERE = sa.text("campaign_id IS NULL")


def upgrade() -> None:
    op.create_index(
        "ix_deliveries_transactional_contact",
        "deliveries",
        ["tenant_id", "contact_id"],
        unique=False,
        postgresql_where=_WHERE,
        sqlite_where=_WHERE,
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_transactional_contact", table_name="deliveries")
