"""permission pass members found by their address (a YES text renews)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 11:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_permission_pass_members_point",
        "permission_pass_members",
        ["point_key"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_permission_pass_members_point", table_name="permission_pass_members")
