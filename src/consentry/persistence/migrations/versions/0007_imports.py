"""imports: attested contact lists and their row-level reports

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 08:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.types import UTCDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("topic_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("keep_good_rows", sa.Boolean(), nullable=False),
        sa.Column("file_name", sa.String(length=300), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_bytes", sa.BigInteger(), nullable=False),
        sa.Column("rows_total", sa.BigInteger(), nullable=False),
        sa.Column("rows_done", sa.BigInteger(), nullable=False),
        sa.Column("mapping", sa.Text(), nullable=False),
        sa.Column("required", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=500), nullable=False),
        sa.Column("opt_in_method", sa.String(length=32), nullable=False),
        sa.Column("collected_from", sa.Date(), nullable=False),
        sa.Column("collected_to", sa.Date(), nullable=False),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("acquisition", sa.String(length=16), nullable=False),
        sa.Column("attested", sa.Boolean(), nullable=False),
        sa.Column("attested_by", sa.String(length=200), nullable=False),
        sa.Column("disclosure_document_id", sa.Uuid(), nullable=True),
        sa.Column("disclosure_text", sa.Text(), nullable=True),
        sa.Column("confirmation_required", sa.Boolean(), nullable=False),
        sa.Column("counts", sa.Text(), nullable=False),
        sa.Column("error_code", sa.String(length=64), nullable=True),
        sa.Column("error_detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'whatsapp', 'voice', 'post')",
            name=op.f("ck_imports_channel_valid"),
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'rejected', 'dry_run', 'failed')",
            name=op.f("ck_imports_status_valid"),
        ),
        sa.CheckConstraint(
            "acquisition IN ('collected', 'bought', 'rented', 'traded', 'appended')",
            name=op.f("ck_imports_acquisition_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["disclosure_document_id"],
            ["policy_documents.id"],
            name=op.f("fk_imports_disclosure_document_id_policy_documents"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_imports_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["topic_id"], ["topics.id"], name=op.f("fk_imports_topic_id_topics")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    op.create_index("ix_imports_tenant", "imports", ["tenant_id", "created_at"], unique=False)
    op.create_table(
        "import_issues",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("import_id", sa.Uuid(), nullable=False),
        sa.Column("line", sa.BigInteger(), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("value_enc", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint(
            "severity IN ('error', 'skipped', 'note')", name=op.f("ck_import_issues_severity_valid")
        ),
        sa.ForeignKeyConstraint(
            ["import_id"], ["imports.id"], name=op.f("fk_import_issues_import_id_imports")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_issues")),
    )
    op.create_index("ix_import_issues_import", "import_issues", ["import_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_import_issues_import", table_name="import_issues")
    op.drop_table("import_issues")
    op.drop_index("ix_imports_tenant", table_name="imports")
    op.drop_table("imports")
