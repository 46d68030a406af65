"""a function that refuses a consent append whose folded state moved (PostgreSQL)

A consent write appends its event and commits in one round trip (persistence/ledger.py), so the
tenant's chain head is held only while the server runs them. The append names the state it
folded into; if another append changed that state in between, ``consentry_state_moved()``
raises SQLSTATE ``CS409`` and nothing is written or committed: the writer folds again under the
lock and commits as before.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 17:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE FUNCTION consentry_state_moved() RETURNS boolean LANGUAGE plpgsql AS $$ BEGIN"
        " RAISE EXCEPTION 'the consent state moved since it was read' USING ERRCODE = 'CS409';"
        " END $$"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION consentry_state_moved()")
