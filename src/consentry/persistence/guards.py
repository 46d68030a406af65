"""Database triggers that make ledgers append-only below the application.

Only the encrypted personal-data columns may ever be updated (erasure scrubs them); everything the
hash chain covers is frozen, and rows cannot be deleted. Someone with DDL rights can still drop a
trigger, which is what the hash chain is for.
"""

from __future__ import annotations

from collections.abc import Sequence


def append_only_ddl(dialect: str, table: str, frozen_columns: Sequence[str]) -> list[str]:
    """Statements creating the guard triggers for ``table`` on ``dialect``."""
    message = f"{table} is append-only"
    if dialect == "sqlite":
        cols = ", ".join(frozen_columns)
        return [
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {cols} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]
    new = ", ".join(f"NEW.{c}" for c in frozen_columns)
    old = ", ".join(f"OLD.{c}" for c in frozen_columns)
    return [
        f"""CREATE FUNCTION {table}_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;
  IF ROW({new}) IS DISTINCT FROM ROW({old}) THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$""",
        f"CREATE TRIGGER {table}_guard BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_guard()",
    ]


def drop_append_only_ddl(dialect: str, table: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"DROP TRIGGER IF EXISTS {table}_no_delete",
            f"DROP TRIGGER IF EXISTS {table}_no_update",
        ]
    return [
        f"DROP TRIGGER IF EXISTS {table}_guard ON {table}",
        f"DROP FUNCTION IF EXISTS {table}_guard()",
    ]


CONSENT_EVENT_FROZEN = (
    "id",
    "tenant_id",
    "seq",
    "contact_id",
    "point_key",
    "topic_id",
    "channel",
    "action",
    "basis",
    "method",
    "source_digest",
    "ip_digest",
    "user_agent_digest",
    "note_digest",
    "policy_document_id",
    "disclosure_hash",
    "actor",
    "import_batch_id",
    "inbound_message_id",
    "relationship",
    "occurred_at",
    "recorded_at",
    "expires_at",
    "prev_hash",
    "hash",
)


AUDIT_FROZEN = (
    "id",
    "tenant_id",
    "seq",
    "actor",
    "action",
    "object_type",
    "object_id",
    "ip_digest",
    "request_id",
    "at",
    "prev_hash",
    "hash",
)


# What an audit entry says, frozen from the moment it is written; its place in the chain (seq,
# prev_hash, hash) is written once, by the sealer, and frozen from then on.
AUDIT_CONTENT = (
    "id",
    "tenant_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "ip_digest",
    "request_id",
    "at",
)
AUDIT_LINK = ("seq", "prev_hash", "hash")


def sealed_once_ddl(
    dialect: str, table: str, frozen_columns: Sequence[str], link_columns: Sequence[str]
) -> list[str]:
    """Guard triggers for a table whose rows are written, then chained once: ``frozen_columns``
    never change, ``link_columns`` may be set while the row has none and never again, and rows
    cannot be deleted."""
    message = f"{table} is append-only"
    first = link_columns[0]
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {', '.join(frozen_columns)} "
            f"ON {table} BEGIN SELECT RAISE(ABORT, '{message}'); END",
            f"CREATE TRIGGER {table}_sealed_once BEFORE UPDATE OF {', '.join(link_columns)} "
            f"ON {table} WHEN OLD.{first} IS NOT NULL "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]
    new = ", ".join(f"NEW.{c}" for c in frozen_columns)
    old = ", ".join(f"OLD.{c}" for c in frozen_columns)
    new_link = ", ".join(f"NEW.{c}" for c in link_columns)
    old_link = ", ".join(f"OLD.{c}" for c in link_columns)
    return [
        f"""CREATE FUNCTION {table}_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;
  IF ROW({new}) IS DISTINCT FROM ROW({old}) THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;
  IF OLD.{first} IS NOT NULL AND ROW({new_link}) IS DISTINCT FROM ROW({old_link}) THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;
  RETURN NEW;
END $$""",
        f"CREATE TRIGGER {table}_guard BEFORE UPDATE OR DELETE ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {table}_guard()",
    ]


def drop_sealed_once_ddl(dialect: str, table: str) -> list[str]:
    extra = [f"DROP TRIGGER IF EXISTS {table}_sealed_once"] if dialect == "sqlite" else []
    return drop_append_only_ddl(dialect, table) + extra
