"""The unit of work: one connection, one transaction, the repositories bound to it."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from sqlalchemy import Connection, Engine, RootTransaction

from consentry.persistence.access import SqlAccessRepository, SqlAuditLog, SqlIdempotencyStore
from consentry.persistence.campaigns import (
    SqlCampaigns,
    SqlContactLists,
    SqlSenderDomains,
    SqlTemplates,
)
from consentry.persistence.contacts import SqlContactRepository
from consentry.persistence.deliveries import ONE_STATEMENT, PlanSplit, SqlDeliveries
from consentry.persistence.eligibility import SqlGateQueries
from consentry.persistence.engine import READ_ONLY
from consentry.persistence.fences import SqlFences
from consentry.persistence.forms import SqlForms
from consentry.persistence.import_prep import MAX_HELPERS
from consentry.persistence.imports import SqlImportRows, SqlImports
from consentry.persistence.keywords import SqlTenantKeywords
from consentry.persistence.ledger import SqlConsentLedger, SqlConsentStates
from consentry.persistence.notices import SqlPolicyNotices
from consentry.persistence.passes import SqlPermissionPasses
from consentry.persistence.refcache import RefChanges, ReferenceCache
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.signals import SqlSignals
from consentry.persistence.suppressions import SqlDncRegistry, SqlSuppressionRepository
from consentry.persistence.tenancy import (
    SqlPolicyRepository,
    SqlTenantRepository,
    SqlTopicRepository,
)
from consentry.services.ports import KeyRing


class SqlUnitOfWork:
    """``with uow:`` opens a transaction; ``commit()`` ends it; anything else rolls it back."""

    tenants: SqlTenantRepository
    topics: SqlTopicRepository
    contacts: SqlContactRepository
    policies: SqlPolicyRepository
    ledger: SqlConsentLedger
    consent_states: SqlConsentStates
    suppressions: SqlSuppressionRepository
    dnc: SqlDncRegistry
    gate: SqlGateQueries
    access: SqlAccessRepository
    idempotency: SqlIdempotencyStore
    audit: SqlAuditLog
    sender_domains: SqlSenderDomains
    templates: SqlTemplates
    lists: SqlContactLists
    campaigns: SqlCampaigns
    forms: SqlForms
    tenant_keywords: SqlTenantKeywords
    deliveries: SqlDeliveries
    fences: SqlFences
    signals: SqlSignals
    imports: SqlImports
    import_rows: SqlImportRows
    passes: SqlPermissionPasses
    notices: SqlPolicyNotices

    def __init__(
        self,
        engine: Engine,
        keys: KeyRing,
        *,
        read_only: bool = False,
        refs: ReferenceCache | None = None,
        import_helpers: int = MAX_HELPERS,
        plan_split: PlanSplit = ONE_STATEMENT,
    ) -> None:
        self._engine = engine
        self.keys = keys
        self._read_only = read_only
        self._refs = refs
        self._import_helpers = import_helpers
        self._plan_split = plan_split
        self._changes: RefChanges | None = None
        self._conn: Connection | None = None
        self._tx: RootTransaction | None = None

    @property
    def connection(self) -> Connection:
        if self._conn is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._conn

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        if self._read_only:
            conn = conn.execution_options(**{READ_ONLY: True})
        self._conn = conn
        self._tx = conn.begin()
        crypto = FieldCrypto(conn, self.keys)
        refs = self._refs
        changes = self._changes = RefChanges(conn, refs)
        self.tenants = SqlTenantRepository(conn, crypto, refs, changes)
        self.topics = SqlTopicRepository(conn, refs)
        self.contacts = SqlContactRepository(conn, self.keys, crypto)
        self.policies = SqlPolicyRepository(conn)
        self.ledger = SqlConsentLedger(conn, crypto)
        self.consent_states = SqlConsentStates(conn)
        self.suppressions = SqlSuppressionRepository(conn)
        self.dnc = SqlDncRegistry(conn)
        self.gate = SqlGateQueries(conn, self.contacts)
        self.access = SqlAccessRepository(conn, refs, changes)
        self.idempotency = SqlIdempotencyStore(conn)
        self.audit = SqlAuditLog(conn)
        self.sender_domains = SqlSenderDomains(conn, crypto)
        self.templates = SqlTemplates(conn)
        self.lists = SqlContactLists(conn)
        self.campaigns = SqlCampaigns(conn)
        self.forms = SqlForms(conn)
        self.tenant_keywords = SqlTenantKeywords(conn)
        self.deliveries = SqlDeliveries(conn, crypto, self._plan_split)
        self.fences = SqlFences(conn)
        self.signals = SqlSignals(conn, self.keys)
        self.imports = SqlImports(conn, crypto, self.keys)
        self.import_rows = SqlImportRows(conn, self.keys, crypto, helpers=self._import_helpers)
        self.passes = SqlPermissionPasses(conn)
        self.notices = SqlPolicyNotices(conn, crypto)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx is not None and self._tx.is_active:
                self._tx.rollback()
        finally:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._tx = None
            self._changes = None

    def commit(self) -> None:
        if self._tx is None:
            raise RuntimeError("nothing to commit")
        self._tx.commit()
        if self._changes is not None:
            self._changes.committed()

    def checkpoint(self) -> None:
        """Commit and begin a new transaction on the same connection: a long job (an import
        written batch by batch) releases its locks between batches."""
        self.commit()
        self._tx = self.connection.begin()

    def rollback(self) -> None:
        if self._tx is not None and self._tx.is_active:
            self._tx.rollback()
