"""the ledger without foreign keys, and fewer contact indexes to keep up to date

Every consent event and state the ledger writes refers to rows its writer read in the same
transaction (the tenant, the contact, the topic, the disclosure, the governing event), and none
of these parents is ever deleted: tenants, topics and published documents stay, contacts are
erased in place, events are append-only. The eight foreign-key checks of each appended event
and its folded state could therefore only ever pass; PostgreSQL ran them as one query each per
row, three of them locking a row the same transaction had just written. They were half of the
database's work in a large import. ``consentry verify-ledger`` now checks the references itself,
and more strictly: each event's contact, topic and disclosure must exist *in the event's
tenant* (the stored states are already checked against the fold of the events).

Contacts: the per-tenant unique constraint on the email blind index now leads with the address
(``(email_key, tenant_id)``), so it also serves the look-up of an address across tenants, and
the separate index on ``email_key`` is gone. The phone and WhatsApp indexes keep only contacts
that have a number.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from consentry.persistence.guards import (
    CONSENT_EVENT_FROZEN,
    append_only_ddl,
    drop_append_only_ddl,
)

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Each ledger table's keys: (column, parent table).
_KEYS = {
    "consent_events": (
        ("contact_id", "contacts"),
        ("policy_document_id", "policy_documents"),
        ("tenant_id", "tenants"),
        ("topic_id", "topics"),
    ),
    "consent_states": (
        ("contact_id", "contacts"),
        ("event_id", "consent_events"),
        ("tenant_id", "tenants"),
        ("topic_id", "topics"),
    ),
}

_NUMBERS = (("ix_contacts_phone", "phone_key"), ("ix_contacts_whatsapp", "whatsapp_key"))


def _ledger_keys(*, present: bool) -> None:
    """Drop the ledger's keys, or create them again; on SQLite batch mode copies each table,
    which loses its triggers, so the append-only guard of the events is taken off and put
    back around it."""
    dialect = op.get_bind().dialect.name
    for statement in drop_append_only_ddl(dialect, "consent_events"):
        op.execute(statement)
    for table, keys in _KEYS.items():
        with op.batch_alter_table(table) as batch:
            for column, parent in keys:
                name = f"fk_{table}_{column}_{parent}"
                if present:
                    batch.create_foreign_key(name, parent, [column], ["id"])
                else:
                    batch.drop_constraint(name, type_="foreignkey")
    for statement in append_only_ddl(dialect, "consent_events", CONSENT_EVENT_FROZEN):
        op.execute(statement)


def upgrade() -> None:
    _ledger_keys(present=False)
    with op.batch_alter_table("contacts") as batch:
        batch.drop_constraint("uq_contacts_tenant_email", type_="unique")
        batch.create_unique_constraint("uq_contacts_email_tenant", ["email_key", "tenant_id"])
    op.drop_index("ix_contacts_email", table_name="contacts")
    for name, column in _NUMBERS:
        op.drop_index(name, table_name="contacts")
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            name,
            "contacts",
            [column, "tenant_id"],
            postgresql_where=where,
            sqlite_where=where,
        )


def downgrade() -> None:
    for name, column in _NUMBERS:
        op.drop_index(name, table_name="contacts")
        op.create_index(name, "contacts", [column, "tenant_id"])
    op.create_index("ix_contacts_email", "contacts", ["email_key"])
    with op.batch_alter_table("contacts") as batch:
        batch.drop_constraint("uq_contacts_email_tenant", type_="unique")
        batch.create_unique_constraint("uq_contacts_tenant_email", ["tenant_id", "email_key"])
    _ledger_keys(present=True)
