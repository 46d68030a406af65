"""Repositories for operators, sessions, API keys, idempotency records and the audit log."""

from __future__ import annotations

import uuid
from collections.abc import Generator
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from consentry.domain.access import ApiKeyRecord, Role, Scope, UserRecord
from consentry.domain.audit import AuditEntry, canonical_audit
from consentry.domain.chain import ChainLink, link_hash
from consentry.domain.errors import AlreadyExists, NotFound
from consentry.persistence.driver import DriverStatement, insert_of
from consentry.persistence.guards import AUDIT_CONTENT
from consentry.persistence.refcache import RefChanges, ReferenceCache
from consentry.persistence.tables import (
    api_keys,
    audit_log,
    chain_heads,
    idempotency_keys,
    sessions,
    users,
)
from consentry.persistence.tenancy import AUDIT_CHAIN
from consentry.services.ports import IdempotencyRecord


def _user(row: Any) -> UserRecord:
    return UserRecord(
        row.id,
        row.email,
        row.password_hash,
        Role(row.role),
        row.tenant_id,
        row.created_at,
        row.disabled_at,
    )


def _key(row: Any) -> ApiKeyRecord:
    scopes = frozenset(Scope(s) for s in row.scopes.split(",") if s)
    return ApiKeyRecord(
        row.id,
        row.prefix,
        bytes(row.secret_hash),
        row.name,
        row.tenant_id,
        row.user_id,
        Role(row.role),
        scopes,
        row.created_at,
        row.created_by,
        row.revoked_at,
        row.last_used_at,
    )


class SqlAccessRepository:
    def __init__(
        self,
        conn: Connection,
        cache: ReferenceCache | None = None,
        changes: RefChanges | None = None,
    ) -> None:
        self._conn = conn
        # A server process keeps API keys while it hears of every change (persistence/refcache).
        self._cache = cache
        self._changes = changes

    def _changed(self) -> None:
        if self._changes is not None:
            self._changes.changed()

    # users and sessions
    def add_user(self, user: UserRecord) -> None:
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(users).values(
                        id=user.id,
                        email=user.email,
                        password_hash=user.password_hash,
                        role=user.role.value,
                        tenant_id=user.tenant_id,
                        created_at=user.created_at,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists("a user with this email exists", field="email") from exc

    def user_by_email(self, email: str) -> UserRecord | None:
        row = self._conn.execute(select(users).where(users.c.email == email)).one_or_none()
        return None if row is None else _user(row)

    def user(self, user_id: uuid.UUID) -> UserRecord:
        row = self._conn.execute(select(users).where(users.c.id == user_id)).one_or_none()
        if row is None:
            raise NotFound("user not found")
        return _user(row)

    def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None:
        self._conn.execute(
            update(users).where(users.c.id == user_id).values(password_hash=password_hash)
        )

    def add_session(
        self,
        session_id: uuid.UUID,
        token_hash: bytes,
        user_id: uuid.UUID,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        self._conn.execute(
            insert(sessions).values(
                id=session_id,
                token_hash=token_hash,
                user_id=user_id,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    def session_user(self, token_hash: bytes, now: datetime) -> UserRecord | None:
        row = self._conn.execute(
            select(users)
            .join(sessions, sessions.c.user_id == users.c.id)
            .where(
                sessions.c.token_hash == token_hash,
                sessions.c.revoked_at.is_(None),
                sessions.c.expires_at > now,
                users.c.disabled_at.is_(None),
            )
        ).one_or_none()
        return None if row is None else _user(row)

    def revoke_session(self, token_hash: bytes, now: datetime) -> None:
        self._conn.execute(
            update(sessions).where(sessions.c.token_hash == token_hash).values(revoked_at=now)
        )

    # API keys
    def add_key(self, key: ApiKeyRecord) -> None:
        self._changed()
        self._conn.execute(
            insert(api_keys).values(
                id=key.id,
                prefix=key.prefix,
                secret_hash=key.secret_hash,
                name=key.name,
                tenant_id=key.tenant_id,
                user_id=key.user_id,
                role=key.role.value,
                scopes=",".join(sorted(s.value for s in key.scopes)),
                created_at=key.created_at,
                created_by=key.created_by,
            )
        )

    def key_by_prefix(self, prefix: str) -> ApiKeyRecord | None:
        cache = self._cache
        # A transaction that changed keys reads its own writes from the database.
        if cache is None or (self._changes is not None and self._changes.pending):
            row = self._conn.execute(
                select(api_keys).where(api_keys.c.prefix == prefix)
            ).one_or_none()
            return None if row is None else _key(row)
        kept = cache.get(_key_ref(prefix))
        if kept is not None:
            return kept  # type: ignore[no-any-return]
        generation = cache.generation
        row = self._conn.execute(select(api_keys).where(api_keys.c.prefix == prefix)).one_or_none()
        if row is None:
            return None
        key = _key(row)
        cache.put(_key_ref(prefix), key, generation)
        return key

    def keys_of(self, tenant_id: uuid.UUID | None) -> list[ApiKeyRecord]:
        query = select(api_keys).order_by(api_keys.c.created_at)
        query = query.where(
            api_keys.c.tenant_id.is_(None)
            if tenant_id is None
            else api_keys.c.tenant_id == tenant_id
        )
        return [_key(r) for r in self._conn.execute(query)]

    def revoke_key(self, key_id: uuid.UUID, now: datetime) -> None:
        self._changed()
        self._conn.execute(
            update(api_keys)
            .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    def touch_key(self, key_id: uuid.UUID, now: datetime) -> None:
        """Record when a key was last used. Not a change other processes must hear of (each
        records it at most once a minute); this process reads the key anew next time."""
        self._conn.execute(update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now))
        if self._cache is not None:
            self._cache.drop_where(
                lambda kept: isinstance(kept, ApiKeyRecord) and kept.id == key_id
            )


def _key_ref(prefix: str) -> tuple[str, str]:
    return ("api-key", prefix)


class CachedKeys:
    """The API keys this process keeps (``KeptKeys``): what ``key_by_prefix`` put in the
    reference cache, while it listens for changes; nothing otherwise."""

    def __init__(self, cache: ReferenceCache) -> None:
        self._cache = cache

    def api_key(self, prefix: str) -> ApiKeyRecord | None:
        kept = self._cache.get(_key_ref(prefix))
        return kept if isinstance(kept, ApiKeyRecord) else None


class SqlIdempotencyStore:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, principal: str, key: str) -> IdempotencyRecord | None:
        row = self._conn.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.principal == principal, idempotency_keys.c.key == key
            )
        ).one_or_none()
        if row is None:
            return None
        return IdempotencyRecord(
            row.principal,
            row.key,
            row.method,
            row.path,
            row.request_hash,
            row.created_at,
            row.status_code,
            row.response_body,
        )

    def reserve(self, record: IdempotencyRecord) -> bool:
        """Claim the key; False if someone already holds it."""
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(idempotency_keys).values(
                        principal=record.principal,
                        key=record.key,
                        method=record.method,
                        path=record.path,
                        request_hash=record.request_hash,
                        created_at=record.created_at,
                    )
                )
        except IntegrityError:
            return False
        return True

    def complete(
        self, principal: str, key: str, status_code: int, body: str, now: datetime
    ) -> None:
        self._conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.principal == principal, idempotency_keys.c.key == key)
            .values(status_code=status_code, response_body=body, completed_at=now)
        )

    def release(self, principal: str, key: str) -> None:
        """Forget a reservation whose request failed without writing anything."""
        self._conn.execute(
            idempotency_keys.delete().where(
                idempotency_keys.c.principal == principal,
                idempotency_keys.c.key == key,
                idempotency_keys.c.status_code.is_(None),
            )
        )


# Built once: every request that reads personal data runs it.
_AUDIT_INSERT = DriverStatement(insert_of(audit_log, AUDIT_CONTENT))


class SqlAuditLog:
    """The audit log: entries are inserted as they happen, with no lock, and chained in batches
    by ``seal`` under the tenant's audit chain head (one lock and one commit per batch)."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, entry: AuditEntry) -> AuditEntry:
        entry = replace(entry, seq=None, prev_hash=None, hash=None)
        _AUDIT_INSERT.execute(
            self._conn,
            {
                "id": entry.id,
                "tenant_id": entry.tenant_id,
                "actor": entry.actor,
                "action": entry.action,
                "object_type": entry.object_type,
                "object_id": entry.object_id,
                "ip_digest": entry.ip_digest,
                "request_id": entry.request_id,
                "at": entry.at,
            },
        )
        return entry

    def unsealed_tenants(self) -> list[uuid.UUID]:
        rows = self._conn.execute(
            select(audit_log.c.tenant_id).where(audit_log.c.seq.is_(None)).distinct()
        )
        return [r.tenant_id for r in rows]

    def seal(self, tenant_id: uuid.UUID, limit: int, *, wait: bool) -> int | None:
        head = self._conn.execute(
            select(chain_heads.c.seq, chain_heads.c.hash)
            .where(chain_heads.c.chain == AUDIT_CHAIN, chain_heads.c.tenant_id == tenant_id)
            .with_for_update(skip_locked=not wait)
        ).one_or_none()
        if head is None:
            return None
        rows = self._conn.execute(
            select(audit_log)
            .where(audit_log.c.tenant_id == tenant_id, audit_log.c.seq.is_(None))
            .order_by(audit_log.c.at, audit_log.c.id)
            .limit(limit)
        ).all()
        if not rows:
            return 0
        seq, prev = int(head.seq), str(head.hash)
        links: list[dict[str, Any]] = []
        for row in rows:
            seq += 1
            entry = replace(self._entry(row), seq=seq, prev_hash=prev)
            prev = link_hash(prev, canonical_audit(entry))
            links.append(
                {"entry_id": row.id, "seq": seq, "prev_hash": entry.prev_hash, "hash": prev}
            )
        self._conn.execute(
            update(audit_log)
            .where(audit_log.c.id == bindparam("entry_id"))
            .values(seq=bindparam("seq"), prev_hash=bindparam("prev_hash"), hash=bindparam("hash")),
            links,
        )
        self._conn.execute(
            update(chain_heads)
            .where(chain_heads.c.chain == AUDIT_CHAIN, chain_heads.c.tenant_id == tenant_id)
            .values(seq=seq, hash=prev)
        )
        return len(links)

    def entries(self, tenant_id: uuid.UUID, limit: int = 100) -> list[AuditEntry]:
        rows = self._conn.execute(
            select(audit_log)
            .where(audit_log.c.tenant_id == tenant_id)
            # Unsealed entries are the newest: first, newest first; then the chain backwards.
            .order_by(
                audit_log.c.seq.is_(None).desc(),
                audit_log.c.seq.desc(),
                audit_log.c.at.desc(),
                audit_log.c.id.desc(),
            )
            .limit(limit)
        )
        return [self._entry(r) for r in rows]

    @staticmethod
    def _entry(row: Any) -> AuditEntry:
        return AuditEntry(
            row.id,
            row.tenant_id,
            row.actor,
            row.action,
            row.object_type,
            row.object_id,
            row.at,
            row.ip_digest,
            row.request_id,
            row.seq,
            row.prev_hash,
            row.hash,
        )

    def links(self, tenant_id: uuid.UUID) -> Generator[ChainLink, None, None]:
        result = self._conn.execute(
            select(audit_log)
            .where(audit_log.c.tenant_id == tenant_id, audit_log.c.seq.is_not(None))
            .order_by(audit_log.c.seq),
            execution_options={"yield_per": 2000},
        )
        try:
            for row in result:
                yield ChainLink(
                    int(row.seq),
                    str(row.id),
                    str(row.prev_hash),
                    str(row.hash),
                    canonical_audit(self._entry(row)),
                )
        finally:
            result.close()

    def head(self, tenant_id: uuid.UUID) -> tuple[int, str]:
        row = self._conn.execute(
            select(chain_heads.c.seq, chain_heads.c.hash).where(
                chain_heads.c.chain == AUDIT_CHAIN, chain_heads.c.tenant_id == tenant_id
            )
        ).one()
        return int(row.seq), str(row.hash)
