"""email sent outside campaigns is kept by Message-ID for its bounces and complaints

Confirmation requests, preference-centre links, policy notices and import confirmations are not
deliveries, so a bounce or complaint about one could not be tied to anyone: a dead address kept
receiving them. Their Message-IDs are now kept for 30 days with the tenant and the recipient's
blind index.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 21:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.types import UTCDateTime

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "courtesy_messages",
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("point_key", sa.LargeBinary(16), nullable=False),
        sa.Column("sent_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_courtesy_messages_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_courtesy_messages")),
    )
    op.create_index("ix_courtesy_messages_sent", "courtesy_messages", ["sent_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_courtesy_messages_sent", table_name="courtesy_messages")
    op.drop_table("courtesy_messages")
