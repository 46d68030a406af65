"""import-report cells that are addresses, by their blind index, for erasure

A row-level import report keeps the offending cell of each problem, sealed. When that cell is an
address (an email address, or a phone number in international form: another contact's email,
a minor's address), ``import_issues.value_key`` now holds its blind index, and erasing the
contact that has the address empties the cell in the tenant's reports. Reports written before
this migration are not linked.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("import_issues", sa.Column("value_key", sa.LargeBinary(16)))
    where = sa.text("value_key IS NOT NULL")
    op.create_index(
        "ix_import_issues_value_key",
        "import_issues",
        ["value_key"],
        postgresql_where=where,
        sqlite_where=where,
    )


def downgrade() -> None:
    op.drop_index("ix_import_issues_value_key", table_name="import_issues")
    with op.batch_alter_table("import_issues") as batch:
        batch.drop_column("value_key")
