"""tenant keywords: a tenant's own keyword lists and reply texts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 10:35:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.types import UTCDateTime

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "tenant_keywords",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("config", sa.Text(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", sa.String(length=200), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_tenant_keywords_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_tenant_keywords")),
    )


def downgrade() -> None:
    op.drop_table("tenant_keywords")
