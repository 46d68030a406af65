"""what an inbound event was about and whom a captured message went to, for erasure

An inbound event keeps its provider's payload sealed (an SMS text and its sender, a mail's
headers). The addresses the pipeline read from it are now recorded by their blind index in
``inbound_event_points``; erasing a contact empties the payloads of the tenant's events about
any of its addresses. Events received before this migration are not linked.

The embedded ``capture`` channel keeps what it "sent", also messages that belong to no delivery
(confirmation requests, preference links); ``captured_messages.recipient_key`` (the recipient's
blind index) finds those too. Copies captured before this migration have none.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 03:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "inbound_event_points",
        sa.Column("point_key", sa.LargeBinary(16), nullable=False),
        sa.Column("inbound_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("point_key", "inbound_id", name=op.f("pk_inbound_event_points")),
    )
    op.add_column("captured_messages", sa.Column("recipient_key", sa.LargeBinary(16)))


def downgrade() -> None:
    with op.batch_alter_table("captured_messages") as batch:
        batch.drop_column("recipient_key")
    op.drop_table("inbound_event_points")
