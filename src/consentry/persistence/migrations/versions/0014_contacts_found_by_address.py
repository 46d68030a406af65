"""contacts found by their address across tenants

An inbound STOP, a bounce or a complaint names an address, not a tenant: the signal pipeline
looks up every contact with that address in any tenant, and an inbound WhatsApp message opens
the service window of every contact with that number. Indexes led by ``tenant_id`` cannot serve
those lookups, which scanned the whole table per event. The phone and WhatsApp indexes now lead
with the address (and still serve lookups within a tenant); email gets its own index beside the
per-tenant unique constraint.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 13:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_contacts_tenant_phone", table_name="contacts")
    op.drop_index("ix_contacts_tenant_whatsapp", table_name="contacts")
    op.create_index("ix_contacts_phone", "contacts", ["phone_key", "tenant_id"], unique=False)
    op.create_index("ix_contacts_whatsapp", "contacts", ["whatsapp_key", "tenant_id"], unique=False)
    op.create_index("ix_contacts_email", "contacts", ["email_key"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_contacts_email", table_name="contacts")
    op.drop_index("ix_contacts_whatsapp", table_name="contacts")
    op.drop_index("ix_contacts_phone", table_name="contacts")
    op.create_index(
        "ix_contacts_tenant_whatsapp", "contacts", ["tenant_id", "whatsapp_key"], unique=False
    )
    op.create_index(
        "ix_contacts_tenant_phone", "contacts", ["tenant_id", "phone_key"], unique=False
    )
