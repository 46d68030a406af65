"""audit entries are written first and chained by a sealer

Every API request that touches personal data writes an audit entry. Chaining it in the request
meant taking the tenant's audit chain head row until commit, so every request of a tenant queued
on one row. Entries are now written without their place in the chain (``seq``, ``prev_hash`` and
``hash`` empty) and a sealer chains them in batches, in the order they were written; what an
entry says is frozen from the start, its link is written once and frozen from then on. The
partial index finds the entries waiting for the sealer.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.guards import (
    AUDIT_CONTENT,
    AUDIT_FROZEN,
    AUDIT_LINK,
    append_only_ddl,
    drop_append_only_ddl,
)

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNSEALED = sa.text("seq IS NULL")


def _link_columns(nullable: bool) -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=nullable)
        batch_op.alter_column("prev_hash", existing_type=sa.String(64), nullable=nullable)
        batch_op.alter_column("hash", existing_type=sa.String(64), nullable=nullable)


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    for statement in drop_append_only_ddl(dialect, "audit_log"):
        op.execute(statement)
    _link_columns(nullable=True)
    op.create_index(
        "ix_audit_log_unsealed",
        "audit_log",
        ["tenant_id", "at"],
        unique=False,
        postgresql_where=UNSEALED,
        sqlite_where=UNSEALED,
    )
    for statement in append_only_ddl(dialect, "audit_log", AUDIT_CONTENT, AUDIT_LINK):
        op.execute(statement)


def downgrade() -> None:
    # Fails while entries wait for the sealer: run ``consentry verify`` (which seals) first.
    dialect = op.get_bind().dialect.name
    for statement in drop_append_only_ddl(dialect, "audit_log"):
        op.execute(statement)
    op.drop_index("ix_audit_log_unsealed", table_name="audit_log")
    _link_columns(nullable=False)
    for statement in append_only_ddl(dialect, "audit_log", AUDIT_FROZEN):
        op.execute(statement)
