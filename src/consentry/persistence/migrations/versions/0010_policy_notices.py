"""policy notices: telling people a policy changed, and who accepted the new version

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.types import UTCDateTime

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_notices",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("document_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("ask_acceptance", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('sending', 'done')", name=op.f("ck_policy_notices_status_valid")
        ),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'whatsapp', 'voice', 'post')",
            name=op.f("ck_policy_notices_channel_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_policy_notices_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["policy_documents.id"],
            name=op.f("fk_policy_notices_document_id_policy_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_notices")),
    )
    op.create_index(
        "ix_policy_notices_document",
        "policy_notices",
        ["tenant_id", "document_id", "created_at"],
    )
    op.create_index("ix_policy_notices_status", "policy_notices", ["status"])
    op.create_table(
        "policy_notice_recipients",
        sa.Column("notice_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("point_key", sa.LargeBinary(length=16), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(length=100), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("acceptance_enc", sa.LargeBinary(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'sending', 'sent', 'refused', 'failed', 'accepted')",
            name=op.f("ck_policy_notice_recipients_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["notice_id"],
            ["policy_notices.id"],
            name=op.f("fk_policy_notice_recipients_notice_id_policy_notices"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_policy_notice_recipients_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_policy_notice_recipients_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint(
            "notice_id", "contact_id", name=op.f("pk_policy_notice_recipients")
        ),
    )
    op.create_index(
        "ix_policy_notice_recipients_due",
        "policy_notice_recipients",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_policy_notice_recipients_contact",
        "policy_notice_recipients",
        ["tenant_id", "contact_id"],
    )


def downgrade() -> None:
    op.drop_index("ix_policy_notice_recipients_contact", table_name="policy_notice_recipients")
    op.drop_index("ix_policy_notice_recipients_due", table_name="policy_notice_recipients")
    op.drop_table("policy_notice_recipients")
    op.drop_index("ix_policy_notices_status", table_name="policy_notices")
    op.drop_index("ix_policy_notices_document", table_name="policy_notices")
    op.drop_table("policy_notices")
