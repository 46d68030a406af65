"""permission passes: reconfirmation with a deadline, and the members each pass asked

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.types import UTCDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "permission_passes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("topic_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("source_kind", sa.String(length=16), nullable=False),
        sa.Column("list_id", sa.Uuid(), nullable=True),
        sa.Column("import_id", sa.Uuid(), nullable=True),
        sa.Column("campaign_id", sa.Uuid(), nullable=False),
        sa.Column("disclosure_document_id", sa.Uuid(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "source_kind IN ('list', 'import')",
            name=op.f("ck_permission_passes_source_kind_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('running', 'ended')", name=op.f("ck_permission_passes_status_valid")
        ),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'whatsapp', 'voice', 'post')",
            name=op.f("ck_permission_passes_channel_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_permission_passes_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_permission_passes_topic_id_topics")
        ),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["contact_lists.id"],
            name=op.f("fk_permission_passes_list_id_contact_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["import_id"], ["imports.id"], name=op.f("fk_permission_passes_import_id_imports")
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_permission_passes_campaign_id_campaigns"),
        ),
        sa.ForeignKeyConstraint(
            ["disclosure_document_id"],
            ["policy_documents.id"],
            name=op.f("fk_permission_passes_disclosure_document_id_policy_documents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_permission_passes")),
        sa.UniqueConstraint("campaign_id", name="uq_permission_passes_campaign"),
    )
    op.create_index("ix_permission_passes_due", "permission_passes", ["status", "deadline"])
    op.create_index("ix_permission_passes_tenant", "permission_passes", ["tenant_id", "created_at"])
    op.create_table(
        "permission_pass_members",
        sa.Column("pass_id", sa.Uuid(), nullable=False),
        sa.Column("contact_id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("point_key", sa.LargeBinary(length=16), nullable=False),
        sa.Column("start_event_id", sa.Uuid(), nullable=False),
        sa.Column("renewed_event_id", sa.Uuid(), nullable=True),
        sa.Column("renewed_at", UTCDateTime(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.CheckConstraint(
            "outcome IN ('renewed', 'lapsed', 'other')",
            name=op.f("ck_permission_pass_members_outcome_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["pass_id"],
            ["permission_passes.id"],
            name=op.f("fk_permission_pass_members_pass_id_permission_passes"),
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_permission_pass_members_contact_id_contacts"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_permission_pass_members_tenant_id_tenants"),
        ),
        sa.PrimaryKeyConstraint("pass_id", "contact_id", name=op.f("pk_permission_pass_members")),
    )


def downgrade() -> None:
    op.drop_table("permission_pass_members")
    op.drop_index("ix_permission_passes_tenant", table_name="permission_passes")
    op.drop_index("ix_permission_passes_due", table_name="permission_passes")
    op.drop_table("permission_passes")
