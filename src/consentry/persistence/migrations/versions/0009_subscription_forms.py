"""subscription forms and their submissions

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 10:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.types import UTCDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subscription_forms",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("intro", sa.Text(), nullable=False),
        sa.Column("choices", sa.Text(), nullable=False),
        sa.Column("disclosure_kind", sa.String(length=32), nullable=False),
        sa.Column("privacy_url", sa.String(length=500), nullable=True),
        sa.Column("confirm", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'archived')", name=op.f("ck_subscription_forms_status_valid")
        ),
        sa.CheckConstraint(
            "disclosure_kind IN ('privacy_policy', 'anti_spam_policy', 'consent_disclosure', "
            "'whatsapp_opt_in')",
            name=op.f("ck_subscription_forms_disclosure_kind_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_subscription_forms_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscription_forms")),
        sa.UniqueConstraint("tenant_id", "key", name="uq_subscription_forms_tenant_key"),
    )
    op.create_table(
        "form_submissions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("form_id", sa.Uuid(), nullable=False),
        sa.Column("dedupe_key", sa.LargeBinary(length=32), nullable=False),
        sa.Column("ticked", sa.Text(), nullable=False),
        sa.Column("outcomes", sa.Text(), nullable=False),
        sa.Column("disclosure_document_id", sa.Uuid(), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["disclosure_document_id"],
            ["policy_documents.id"],
            name=op.f("fk_form_submissions_disclosure_document_id_policy_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["form_id"],
            ["subscription_forms.id"],
            name=op.f("fk_form_submissions_form_id_subscription_forms"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_form_submissions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_form_submissions")),
        sa.UniqueConstraint("form_id", "dedupe_key", name="uq_form_submissions_form_dedupe"),
    )
    op.create_index(
        "ix_form_submissions_form", "form_submissions", ["form_id", "received_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_form_submissions_form", table_name="form_submissions")
    op.drop_table("form_submissions")
    op.drop_table("subscription_forms")
