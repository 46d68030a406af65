"""Repositories for tenants, topics and policy documents."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from consentry.domain.chain import GENESIS
from consentry.domain.errors import (
    AlreadyExists,
    PolicyDocumentImmutable,
    PolicyDocumentNotFound,
    TenantNotFound,
    TopicNotFound,
)
from consentry.domain.model import (
    ALL_MARKETING_KEY,
    ALL_SERVICE_KEY,
    BusinessProfile,
    Category,
    PolicyDocument,
    PolicyKind,
    PolicyStatus,
    Tenant,
    TenantStatus,
    Topic,
)
from consentry.persistence.driver import DriverStatement
from consentry.persistence.refcache import RefChanges, ReferenceCache
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import chain_heads, policy_documents, tenants, topics

CONSENT_CHAIN = "consent"
AUDIT_CHAIN = "audit"

# Read by consent writes and form posts, so built once.
_TOPIC_BY_ID = DriverStatement(
    select(topics).where(topics.c.tenant_id == bindparam("tenant"), topics.c.id == bindparam("id"))
)
_DOCUMENT_BY_ID = DriverStatement(
    select(policy_documents).where(
        policy_documents.c.tenant_id == bindparam("tenant"),
        policy_documents.c.id == bindparam("id"),
    )
)


def _tenant(row: Any) -> Tenant:
    return Tenant(
        id=row.id,
        slug=row.slug,
        name=row.name,
        profile=BusinessProfile(
            legal_name=row.legal_name,
            country=row.country,
            description=row.description,
            contact_email=row.contact_email,
            contact_phone=row.contact_phone,
            postal_address=row.postal_address,
            website=row.website,
        ),
        status=TenantStatus(row.status),
        created_at=row.created_at,
    )


class SqlTenantRepository:
    def __init__(
        self,
        conn: Connection,
        crypto: FieldCrypto | None = None,
        cache: ReferenceCache | None = None,
        changes: RefChanges | None = None,
    ) -> None:
        self._conn = conn
        # A tenant read here hands its wrapped data key to the unit of work's field crypto,
        # which would otherwise read the row again to open the tenant's personal data.
        self._crypto = crypto
        # A server process keeps tenants while it hears of every change (persistence/refcache).
        self._cache = cache
        self._changes = changes

    def _cached(self, key: tuple[str, object]) -> Tenant | None:
        # A transaction that changed tenants reads its own writes from the database.
        if self._cache is None or (self._changes is not None and self._changes.pending):
            return None
        kept = self._cache.get(key)
        if kept is None:
            return None
        tenant, wrapped = kept
        if self._crypto is not None:
            self._crypto.know(tenant.id, wrapped)
        return tenant  # type: ignore[no-any-return]

    def _loaded(self, row: Any, generation: int | None = None) -> Tenant:
        if self._crypto is not None:
            self._crypto.know(row.id, row.data_key)
        tenant = _tenant(row)
        # Nothing read by a transaction that changed tenants is kept: it may not commit.
        unchanged = self._changes is None or not self._changes.pending
        if self._cache is not None and generation is not None and unchanged:
            kept = (tenant, bytes(row.data_key))
            self._cache.put(("tenant", row.id), kept, generation)
            self._cache.put(("tenant-slug", row.slug), kept, generation)
        return tenant

    def _changed(self) -> None:
        if self._changes is not None:
            self._changes.changed()

    def add(self, tenant: Tenant, wrapped_key: bytes) -> None:
        self._changed()
        p = tenant.profile
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(tenants).values(
                        id=tenant.id,
                        slug=tenant.slug,
                        name=tenant.name,
                        legal_name=p.legal_name,
                        description=p.description,
                        contact_email=p.contact_email,
                        contact_phone=p.contact_phone,
                        postal_address=p.postal_address,
                        website=p.website,
                        country=p.country,
                        status=tenant.status.value,
                        data_key=wrapped_key,
                        created_at=tenant.created_at,
                        updated_at=tenant.created_at,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"a tenant with slug {tenant.slug!r} exists", field="slug") from exc
        # The chain heads exist from the start so that appends only ever update them.
        for chain in (CONSENT_CHAIN, AUDIT_CHAIN):
            self._conn.execute(
                insert(chain_heads).values(chain=chain, tenant_id=tenant.id, seq=0, hash=GENESIS)
            )

    def get(self, tenant_id: uuid.UUID) -> Tenant:
        kept = self._cached(("tenant", tenant_id))
        if kept is not None:
            return kept
        generation = self._cache.generation if self._cache is not None else None
        row = self._conn.execute(select(tenants).where(tenants.c.id == tenant_id)).one_or_none()
        if row is None:
            raise TenantNotFound(f"tenant {tenant_id} not found")
        return self._loaded(row, generation)

    def by_slug(self, slug: str) -> Tenant:
        kept = self._cached(("tenant-slug", slug))
        if kept is not None:
            return kept
        generation = self._cache.generation if self._cache is not None else None
        row = self._conn.execute(select(tenants).where(tenants.c.slug == slug)).one_or_none()
        if row is None:
            raise TenantNotFound(f"tenant {slug!r} not found", field="tenant")
        return self._loaded(row, generation)

    def list(self) -> list[Tenant]:
        return [_tenant(r) for r in self._conn.execute(select(tenants).order_by(tenants.c.slug))]

    def wrapped_key(self, tenant_id: uuid.UUID) -> bytes:
        key = self._conn.execute(
            select(tenants.c.data_key).where(tenants.c.id == tenant_id)
        ).scalar_one_or_none()
        if key is None:
            raise TenantNotFound(f"tenant {tenant_id} not found")
        return bytes(key)

    def set_wrapped_key(self, tenant_id: uuid.UUID, wrapped_key: bytes, at: datetime) -> None:
        self._changed()
        self._conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(data_key=wrapped_key, updated_at=at)
        )

    def set_profile(self, tenant_id: uuid.UUID, profile: BusinessProfile, at: datetime) -> None:
        self._changed()
        self._conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id)
            .values(
                legal_name=profile.legal_name,
                country=profile.country,
                description=profile.description,
                contact_email=profile.contact_email,
                contact_phone=profile.contact_phone,
                postal_address=profile.postal_address,
                website=profile.website,
                updated_at=at,
            )
        )

    def set_status(self, tenant_id: uuid.UUID, status: str, at: datetime) -> None:
        self._changed()
        self._conn.execute(
            update(tenants).where(tenants.c.id == tenant_id).values(status=status, updated_at=at)
        )


def _topic(row: Any) -> Topic:
    return Topic(
        id=row.id,
        tenant_id=row.tenant_id,
        key=row.key,
        name=row.name,
        category=Category(row.category),
        requires_double_opt_in=row.requires_double_opt_in,
        description=row.description,
        umbrella=row.umbrella,
        created_at=row.created_at,
    )


class SqlTopicRepository:
    def __init__(self, conn: Connection, cache: ReferenceCache | None = None) -> None:
        self._conn = conn
        # Topics read by key in this unit of work. A look-up by key also reads the tenant's two
        # umbrella topics, which the gate's intent needs next, in the same statement.
        self._by_key: dict[tuple[uuid.UUID, str], Topic] = {}
        # Topics never change once created: a process keeps those it has read, by key; but
        # none read by a transaction that created topics, which may not commit.
        self._cache = cache

    def add(self, topic: Topic) -> None:
        self._by_key.clear()
        self._cache = None
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(topics).values(
                        id=topic.id,
                        tenant_id=topic.tenant_id,
                        key=topic.key,
                        name=topic.name,
                        description=topic.description,
                        category=topic.category.value,
                        requires_double_opt_in=topic.requires_double_opt_in,
                        umbrella=topic.umbrella,
                        created_at=topic.created_at,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists(f"topic {topic.key!r} exists", field="key") from exc

    def get(self, tenant_id: uuid.UUID, topic_id: uuid.UUID) -> Topic:
        cache = self._cache
        if cache is not None:
            kept = cache.get_immutable(("topic-id", tenant_id, topic_id))
            if kept is not None:
                return kept  # type: ignore[no-any-return]
        row = _TOPIC_BY_ID.one_or_none(self._conn, {"tenant": tenant_id, "id": topic_id})
        if row is None:
            raise TopicNotFound(f"topic {topic_id} not found", field="topic")
        topic = _topic(row)
        if cache is not None:
            cache.put_immutable(("topic-id", tenant_id, topic_id), topic)
        return topic

    def by_key(self, tenant_id: uuid.UUID, key: str) -> Topic:
        found = self._by_key.get((tenant_id, key))
        if found is not None:
            return found
        cache = self._cache
        if cache is not None:
            kept = cache.get_immutable(("topic", tenant_id, key))
            if kept is not None:
                return kept  # type: ignore[no-any-return]
        wanted = {key, ALL_MARKETING_KEY, ALL_SERVICE_KEY}
        for row in self._conn.execute(
            select(topics).where(topics.c.tenant_id == tenant_id, topics.c.key.in_(wanted))
        ):
            topic = self._by_key[(tenant_id, row.key)] = _topic(row)
            if cache is not None:
                cache.put_immutable(("topic", tenant_id, row.key), topic)
        found = self._by_key.get((tenant_id, key))
        if found is None:
            raise TopicNotFound(f"topic {key!r} not found", field="topic")
        return found

    def list(self, tenant_id: uuid.UUID) -> list[Topic]:
        rows = self._conn.execute(
            select(topics)
            .where(topics.c.tenant_id == tenant_id)
            .order_by(topics.c.umbrella.desc(), topics.c.key)
        )
        return [_topic(r) for r in rows]


def _policy(row: Any) -> PolicyDocument:
    return PolicyDocument(
        id=row.id,
        tenant_id=row.tenant_id,
        kind=PolicyKind(row.kind),
        version=row.version,
        title=row.title,
        body=row.body,
        locale=row.locale,
        content_hash=row.content_hash,
        status=PolicyStatus(row.status),
        created_at=row.created_at,
        published_at=row.published_at,
    )


class SqlPolicyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, document: PolicyDocument) -> None:
        try:
            with self._conn.begin_nested():
                self._conn.execute(
                    insert(policy_documents).values(
                        id=document.id,
                        tenant_id=document.tenant_id,
                        kind=document.kind.value,
                        version=document.version,
                        title=document.title,
                        body=document.body,
                        locale=document.locale,
                        content_hash=document.content_hash,
                        status=document.status.value,
                        created_at=document.created_at,
                        published_at=document.published_at,
                    )
                )
        except IntegrityError as exc:
            raise AlreadyExists("that policy document version exists", field="version") from exc

    def get(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> PolicyDocument:
        row = _DOCUMENT_BY_ID.one_or_none(self._conn, {"tenant": tenant_id, "id": document_id})
        if row is None:
            raise PolicyDocumentNotFound(f"policy document {document_id} not found")
        return _policy(row)

    def latest_version(self, tenant_id: uuid.UUID, kind: PolicyKind) -> int:
        value = self._conn.execute(
            select(func.max(policy_documents.c.version)).where(
                policy_documents.c.tenant_id == tenant_id, policy_documents.c.kind == kind.value
            )
        ).scalar_one()
        return int(value or 0)

    def list(self, tenant_id: uuid.UUID, kind: PolicyKind | None = None) -> list[PolicyDocument]:
        query = select(policy_documents).where(policy_documents.c.tenant_id == tenant_id)
        if kind is not None:
            query = query.where(policy_documents.c.kind == kind.value)
        query = query.order_by(policy_documents.c.kind, policy_documents.c.version)
        return [_policy(r) for r in self._conn.execute(query)]

    def publish(self, tenant_id: uuid.UUID, document_id: uuid.UUID, at: datetime) -> PolicyDocument:
        document = self.get(tenant_id, document_id)
        if document.status is PolicyStatus.PUBLISHED:
            raise PolicyDocumentImmutable(f"version {document.version} is already published")
        self._conn.execute(
            update(policy_documents)
            .where(policy_documents.c.id == document_id)
            .values(status=PolicyStatus.PUBLISHED.value, published_at=at)
        )
        return self.get(tenant_id, document_id)
