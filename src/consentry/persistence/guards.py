"""Database triggers that make ledgers append-only below the application.

Only the encrypted personal-data columns may ever be updated (erasure scrubs them); everything the
hash chain covers is frozen, and rows cannot be deleted. Someone with DDL rights can still drop a
trigger, which is what the hash chain is for.
"""

from __future__ import annotations

from collections.abc import Sequence


def append_only_ddl(
    dialect: str,
    table: str,
    frozen_columns: Sequence[str],
    written_once: Sequence[str] = (),
) -> list[str]:
    """Statements creating the guard triggers for ``table`` on ``dialect``: rows cannot be
    deleted, ``frozen_columns`` never change, and ``written_once`` (a row's chain link, set by
    a sealer after the insert) may be set while its first column is empty and never again."""
    message = f"{table} is append-only"
    if dialect == "sqlite":
        cols = ", ".join(frozen_columns)
        statements = [
            f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {cols} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, '{message}'); END",
        ]
        if written_once:
            statements.append(
                f"CREATE TRIGGER {table}_sealed_once BEFORE UPDATE OF {', '.join(written_once)} "
                f"ON {table} WHEN OLD.{written_once[0]} IS NOT NULL "
                f"BEGIN SELECT RAISE(ABORT, '{message}'); END"
            )
        return statements
    new = ", ".join(f"NEW.{c}" for c in frozen_columns)
    old = ", ".join(f"OLD.{c}" for c in frozen_columns)
    once = ""
    if written_once:
        new_link = ", ".join(f"NEW.{c}" for c in written_once)
        old_link = ", ".join(f"OLD.{c}" for c in written_once)
        once = f"""
  IF OLD.{written_once[0]} IS NOT NULL AND ROW({new_link}) IS DISTINCT FROM ROW({old_link}) THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;"""
    return [
        f"""CREATE FUNCTION {table}_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;
  IF ROW({new}) IS DISTINCT FROM ROW({old}) THEN
    RAISE EXCEPTION '{message}' USING ERRCODE = 'restrict_violation';
  END IF;{once}
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
            f"DROP TRIGGER IF EXISTS {table}_sealed_once",
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
