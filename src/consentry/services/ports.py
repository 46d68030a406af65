"""The Protocols that services depend on; persistence and channels implement them."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self

from consentry.domain.access import ApiKeyRecord, UserRecord
from consentry.domain.audit import AuditEntry
from consentry.domain.campaigns import (
    Campaign,
    ClaimedDelivery,
    Delivery,
    Outcome,
    PlanCounts,
    SenderDomain,
    Simulation,
)
from consentry.domain.chain import ChainLink
from consentry.domain.consent import ConsentEvent, ConsentState, ConsentStatus, EvidenceDigests
from consentry.domain.delivery import (
    CampaignStatus,
    DeliveryStatus,
    OutboundMessage,
    ProviderEvent,
    SendResult,
)
from consentry.domain.forms import FormStatus, SubscriptionForm
from consentry.domain.gate import Decision, Intent, RecipientFacts
from consentry.domain.imports import ImportCounts, ImportRecord, ImportStatus, RowIssue
from consentry.domain.model import (
    BusinessProfile,
    Category,
    Channel,
    Contact,
    PointKind,
    PolicyDocument,
    PolicyKind,
    Tenant,
    Topic,
)
from consentry.domain.notices import NoticeRecipient, PolicyNotice, RecipientStatus
from consentry.domain.passes import MemberOutcome, PassMember, PermissionPass
from consentry.domain.signals import (
    ComplaintCase,
    CourtesyMessage,
    InboundRecord,
    SentDelivery,
    SignalSource,
)
from consentry.domain.suppression import Suppression
from consentry.domain.templates import Template

if TYPE_CHECKING:
    from consentry.services.import_file import RawRow
    from consentry.services.import_rows import PreparedBatch, RowContext


class KeyRing(Protocol):
    """Keys for personal data at rest: per-tenant data keys wrapped by a master key, and a
    platform-wide key for blind indexes and keyed digests."""

    def new_wrapped_data_key(self, tenant_id: uuid.UUID) -> bytes:
        """A fresh random data key for a tenant, wrapped (encrypted) under the master key."""
        ...

    def encrypt(
        self, tenant_id: uuid.UUID, wrapped_key: bytes, purpose: str, plaintext: str
    ) -> bytes:
        """AES-GCM ciphertext bound to the tenant and ``purpose`` (a column name)."""
        ...

    def decrypt(
        self, tenant_id: uuid.UUID, wrapped_key: bytes, purpose: str, ciphertext: bytes
    ) -> str:
        """Inverse of ``encrypt``; raises KeyUnavailable if the data or purpose do not match."""
        ...

    def rewrap(self, tenant_id: uuid.UUID, wrapped_key: bytes) -> bytes:
        """The same data key wrapped under the active master key (for master-key rotation)."""
        ...

    def blind_index(self, kind: PointKind, normalized: str) -> bytes:
        """A keyed HMAC of a normalised contact point, for equality lookups without plaintext."""
        ...

    def derive(self, purpose: str) -> bytes:
        """A key for ``purpose``, alike in every process (minted by one, read by another)."""
        ...

    def digest(self, value: str | None) -> str | None:
        """A keyed hash (hex) of a piece of personal data, for hash chains and evidence."""
        ...

    def sealing_keys(self, tenant_id: uuid.UUID, wrapped_key: bytes) -> SealingKeys:
        """One tenant's keys for sealing many values (a bulk import), picklable for a helper
        process: the same ciphertext format, blind indexes and digests as the methods above."""
        ...


class SealingKeys(Protocol):
    """One tenant's data key and the platform's index and digest keys (``KeyRing.sealing_keys``)."""

    def seal(self, purpose: str, plaintext: str | None) -> bytes | None: ...
    def blind_index(self, kind: PointKind, normalized: str) -> bytes: ...
    def digest(self, value: str | None) -> str | None: ...


@dataclass(frozen=True, slots=True)
class EligibilityRow:
    contact_id: uuid.UUID
    decision: Decision


@dataclass(frozen=True, slots=True)
class EligibilitySummary:
    total: int
    eligible: int
    by_reason: dict[str, int]  # primary reason (first reported) -> contacts; "ALLOW" for allowed


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    principal: str
    key: str
    method: str
    path: str
    request_hash: str
    created_at: datetime
    status_code: int | None = None
    response_body: str | None = None


class TenantRepository(Protocol):
    def add(self, tenant: Tenant, wrapped_key: bytes) -> None: ...
    def get(self, tenant_id: uuid.UUID) -> Tenant: ...
    def by_slug(self, slug: str) -> Tenant: ...
    def list(self) -> list[Tenant]: ...
    def wrapped_key(self, tenant_id: uuid.UUID) -> bytes: ...
    def set_status(self, tenant_id: uuid.UUID, status: str, at: datetime) -> None: ...
    def set_profile(self, tenant_id: uuid.UUID, profile: BusinessProfile, at: datetime) -> None: ...
    def set_wrapped_key(self, tenant_id: uuid.UUID, wrapped_key: bytes, at: datetime) -> None: ...


class TopicRepository(Protocol):
    def add(self, topic: Topic) -> None: ...
    def get(self, tenant_id: uuid.UUID, topic_id: uuid.UUID) -> Topic: ...
    def by_key(self, tenant_id: uuid.UUID, key: str) -> Topic: ...
    def list(self, tenant_id: uuid.UUID) -> list[Topic]: ...


class ContactRepository(Protocol):
    def add(self, contact: Contact) -> None: ...
    def update(self, contact: Contact) -> None: ...
    def page(self, tenant_id: uuid.UUID, after: uuid.UUID | None, limit: int) -> list[Contact]: ...
    def erase(self, tenant_id: uuid.UUID, contact_id: uuid.UUID, at: datetime) -> None: ...
    def get(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> Contact: ...
    def many(self, tenant_id: uuid.UUID, contact_ids: list[uuid.UUID]) -> list[Contact]: ...
    def find_by_point(
        self, tenant_id: uuid.UUID, kind: PointKind, normalized: str
    ) -> Contact | None: ...
    def find_by_address(
        self, tenant_id: uuid.UUID, channel: Channel, normalized: str
    ) -> Contact | None:
        """The contact whose address on ``channel`` (not any phone column) is ``normalized``."""
        ...

    def point_key(self, contact: Contact, channel: Channel) -> bytes | None: ...


class PolicyRepository(Protocol):
    def add(self, document: PolicyDocument) -> None: ...
    def get(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> PolicyDocument: ...
    def latest_version(self, tenant_id: uuid.UUID, kind: PolicyKind) -> int: ...
    def list(
        self, tenant_id: uuid.UUID, kind: PolicyKind | None = None
    ) -> list[PolicyDocument]: ...
    def publish(
        self, tenant_id: uuid.UUID, document_id: uuid.UUID, at: datetime
    ) -> PolicyDocument: ...


class Unread:
    """Stands for a consent state the caller has not read."""


UNREAD = Unread()


class ConsentLedger(Protocol):
    def append(self, event: ConsentEvent, digests: EvidenceDigests) -> ConsentEvent:
        """Assign the next sequence number and chain hash of the tenant, insert, return it."""
        ...

    def append_folded(
        self,
        event: ConsentEvent,
        digests: EvidenceDigests,
        fold: Callable[[ConsentState | None, ConsentEvent], ConsentState],
        previous: ConsentState | Unread | None = UNREAD,
        *,
        commit: bool = False,
    ) -> tuple[ConsentEvent, ConsentState]:
        """``append``, and store the event's state as ``fold(previous, event)`` folds it (the
        state is read unless ``previous`` is given), holding the tenant's chain for as short a
        time as the database allows: the event as chained and its new state. With ``commit``
        the append is the transaction's last write and may commit it (the caller then calls
        ``commit`` on its unit of work, which is needed in any case)."""
        ...

    def append_many(
        self, events: Sequence[tuple[ConsentEvent, EvidenceDigests]]
    ) -> list[ConsentEvent]:
        """Append one tenant's events in order, chained as ``append`` would, in one batch."""
        ...

    def append_sealed(self, events: Sequence[SealedEvent]) -> list[ConsentEvent]:
        """``append_many`` for events sealed beforehand (``seal_event`` of the ledger's store):
        the chain head stays locked only while they are chained and written."""
        ...

    def history(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> list[ConsentEvent]: ...
    def get(self, tenant_id: uuid.UUID, event_id: uuid.UUID) -> ConsentEvent: ...
    def links(self, tenant_id: uuid.UUID) -> Generator[ChainLink, None, None]: ...
    def scrub_evidence(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> None: ...

    def events(self, tenant_id: uuid.UUID) -> Generator[ConsentEvent, None, None]:
        """Every event of the tenant in sequence order, without its personal data."""
        ...

    def dangling_references(self, tenant_id: uuid.UUID) -> list[str]:
        """Events whose contact, topic or disclosure is not a row of the event's tenant."""
        ...

    def without_tenant(self) -> list[str]:
        """Events and states whose tenant does not exist."""
        ...

    def head(self, tenant_id: uuid.UUID) -> tuple[int, str]:
        """The sequence number and hash the chain head records."""
        ...

    def tenants_with_events(self) -> list[uuid.UUID]: ...


class ConsentStates(Protocol):
    def get(
        self, tenant_id: uuid.UUID, contact_id: uuid.UUID, topic_id: uuid.UUID, channel: Channel
    ) -> ConsentState | None: ...
    def put(self, state: ConsentState) -> None: ...
    def add_many(self, states: Sequence[ConsentState]) -> None:
        """Insert states of contact points that have none yet, in bulk."""
        ...

    def for_contact(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> list[ConsentState]: ...
    def for_tenant(self, tenant_id: uuid.UUID) -> list[ConsentState]: ...


class SuppressionRepository(Protocol):
    def add(self, suppression: Suppression) -> None: ...
    def active_for(
        self, tenant_id: uuid.UUID | None, point_key: bytes, channel: Channel
    ) -> list[Suppression]: ...
    def list(self, tenant_id: uuid.UUID, include_lifted: bool = False) -> list[Suppression]: ...
    def get(self, tenant_id: uuid.UUID, suppression_id: uuid.UUID) -> Suppression: ...
    def lift(self, suppression_id: uuid.UUID, at: datetime, by: str) -> None: ...


class DncRegistry(Protocol):
    """Do-not-contact registries (national do-not-call lists), platform-wide, by blind index."""

    def add(self, registry: str, point_key: bytes, at: datetime) -> bool: ...
    def remove(self, registry: str, point_key: bytes, at: datetime) -> bool: ...
    def listed(self, point_key: bytes) -> bool: ...


class GateQueries(Protocol):
    """The facts the gate needs, per recipient and set-based."""

    def facts(
        self, tenant: Tenant, contact: Contact, intent: Intent, now: datetime
    ) -> RecipientFacts: ...

    def eligibility(
        self,
        tenant: Tenant,
        intent: Intent,
        now: datetime,
        contact_ids: Sequence[uuid.UUID] | None = None,
    ) -> Iterator[EligibilityRow]: ...

    def eligibility_summary(
        self, tenant: Tenant, intent: Intent, now: datetime
    ) -> EligibilitySummary: ...


class AccessRepository(Protocol):
    """Operators, their browser sessions, and API keys (secrets stored only as hashes)."""

    def add_user(self, user: UserRecord) -> None: ...
    def user_by_email(self, email: str) -> UserRecord | None: ...
    def user(self, user_id: uuid.UUID) -> UserRecord: ...
    def set_password_hash(self, user_id: uuid.UUID, password_hash: str) -> None: ...
    def add_session(
        self,
        session_id: uuid.UUID,
        token_hash: bytes,
        user_id: uuid.UUID,
        created_at: datetime,
        expires_at: datetime,
    ) -> None: ...
    def session_user(self, token_hash: bytes, now: datetime) -> UserRecord | None: ...
    def revoke_session(self, token_hash: bytes, now: datetime) -> None: ...
    def add_key(self, key: ApiKeyRecord) -> None: ...
    def key_by_prefix(self, prefix: str) -> ApiKeyRecord | None: ...
    def keys_of(self, tenant_id: uuid.UUID | None) -> list[ApiKeyRecord]: ...
    def revoke_key(self, key_id: uuid.UUID, now: datetime) -> None: ...
    def touch_key(self, key_id: uuid.UUID, now: datetime) -> None: ...


class KeptKeys(Protocol):
    """API keys a server process keeps between requests (persistence/refcache.py): a key found
    here is checked without a database connection."""

    def api_key(self, prefix: str) -> ApiKeyRecord | None: ...


class IdempotencyStore(Protocol):
    def get(self, principal: str, key: str) -> IdempotencyRecord | None: ...
    def reserve(self, record: IdempotencyRecord) -> bool:
        """Claim the key; False if it is already held."""
        ...

    def complete(
        self, principal: str, key: str, status_code: int, body: str, now: datetime
    ) -> None: ...
    def release(self, principal: str, key: str) -> None: ...


class AuditLog(Protocol):
    def append(self, entry: AuditEntry) -> AuditEntry:
        """Store one entry, unsealed: no lock, no chain head; ``seal`` chains it later."""
        ...

    def unsealed_tenants(self) -> list[uuid.UUID]:
        """The chains (tenant ids, the nil id for the platform) with entries to seal."""
        ...

    def seal(self, tenant_id: uuid.UUID, limit: int, *, wait: bool) -> int | None:
        """Chain up to ``limit`` unsealed entries of one tenant, oldest first, onto its head;
        how many. ``None`` when another sealer holds the chain and ``wait`` is false."""
        ...

    def entries(self, tenant_id: uuid.UUID, limit: int = 100) -> list[AuditEntry]: ...
    def links(self, tenant_id: uuid.UUID) -> Generator[ChainLink, None, None]: ...
    def head(self, tenant_id: uuid.UUID) -> tuple[int, str]: ...


class ChannelAdapter(Protocol):
    """One provider of one channel (``channels/<provider>.py``). Thread-safe: the dispatcher
    calls ``send`` from several threads at once.

    An adapter may also offer ``send_many(messages) -> list[SendResult | DeliveryError]``:
    each message's ``send`` answer (its error given, not raised), in order, the batch sent at
    once. The dispatcher then hands it a whole window (services/sending.py)."""

    channel: Channel

    def send(self, message: OutboundMessage) -> SendResult:
        """Hand one message to the provider. Raises PermanentDeliveryError (not retried) or
        TransientDeliveryError (retried); never any other exception for a provider's answer."""
        ...

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether a webhook request really comes from the provider (its signature)."""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        """Delivery reports in a verified webhook body; malformed input raises InvalidInput."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    """A message the embedded ``capture`` channel kept instead of sending."""

    id: int
    tenant_id: uuid.UUID
    delivery_id: int
    channel: Channel
    recipient: str
    summary: str  # the subject, or the first words of a text
    captured_at: datetime
    raw: bytes  # exactly what would have been sent (an RFC 5322 message, or the JSON request)


class OutboxStore(Protocol):
    """Where the ``capture`` channel keeps messages (encrypted at rest like all personal data).
    Each call commits on its own: capturing is the send."""

    def capture(
        self, message: OutboundMessage, captured_at: datetime, raw: bytes | None = None
    ) -> int: ...
    def list(
        self, tenant_id: uuid.UUID | None, limit: int = 50, before: int | None = None
    ) -> list[CapturedMessage]: ...
    def get(self, capture_id: int, tenant_id: uuid.UUID | None = None) -> CapturedMessage: ...


class SenderDomains(Protocol):
    def add(self, domain: SenderDomain, dkim_private_pem: str | None) -> None: ...
    def list(self, tenant_id: uuid.UUID) -> list[SenderDomain]: ...
    def get(self, tenant_id: uuid.UUID, domain: str) -> tuple[SenderDomain, str | None] | None:
        """The registered domain and its DKIM private key (PEM), or None."""
        ...


class Templates(Protocol):
    def add(self, template: Template) -> None: ...
    def get(self, tenant_id: uuid.UUID, template_id: uuid.UUID) -> Template: ...
    def by_name(self, tenant_id: uuid.UUID, name: str) -> Template: ...
    def list(self, tenant_id: uuid.UUID) -> list[Template]: ...


class ContactLists(Protocol):
    def create(self, tenant_id: uuid.UUID, list_id: uuid.UUID, name: str, at: datetime) -> None: ...
    def get_id(self, tenant_id: uuid.UUID, name_or_id: str) -> uuid.UUID: ...
    def add_members(
        self, tenant_id: uuid.UUID, list_id: uuid.UUID, contact_ids: list[uuid.UUID]
    ) -> int: ...
    def forget_contact(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> int: ...


class Forms(Protocol):
    """Subscription forms and the record of their submissions."""

    def add(self, form: SubscriptionForm) -> None: ...
    def exists(self, tenant_id: uuid.UUID, key: str) -> bool: ...
    def by_key(self, tenant_id: uuid.UUID, key: str) -> SubscriptionForm:
        """FormNotFound when the tenant has no such form."""
        ...

    def list(self, tenant_id: uuid.UUID) -> list[SubscriptionForm]: ...
    def replace(self, form: SubscriptionForm) -> None: ...
    def set_status(
        self, form: SubscriptionForm, status: FormStatus, at: datetime
    ) -> SubscriptionForm: ...
    def add_submission(  # noqa: PLR0917  (one submission's record)
        self,
        submission_id: uuid.UUID,
        form: SubscriptionForm,
        dedupe_key: bytes,
        ticked: Sequence[str],
        outcomes: Mapping[str, str],
        disclosure_document_id: uuid.UUID | None,
        at: datetime,
    ) -> None:
        """FormAlreadySent when this dedupe key was taken; roll the transaction back then."""
        ...

    def record_outcomes(self, submission_id: uuid.UUID, outcomes: Mapping[str, str]) -> None: ...
    def submission_count(self, form_id: uuid.UUID) -> int: ...


class TenantKeywords(Protocol):
    """A tenant's own keyword lists and reply texts, in the keywords-file format."""

    def get(self, tenant_id: uuid.UUID) -> dict[str, Any] | None: ...
    def put(
        self, tenant_id: uuid.UUID, config: dict[str, Any], at: datetime, by: str | None
    ) -> None: ...
    def clear(self, tenant_id: uuid.UUID) -> bool: ...


class Campaigns(Protocol):
    def add(self, campaign: Campaign) -> None: ...
    def get(
        self, tenant_id: uuid.UUID | None, ref: str | uuid.UUID, *, lock: bool = False
    ) -> Campaign: ...
    def set_status(
        self,
        campaign_id: uuid.UUID,
        expected: CampaignStatus,
        status: CampaignStatus,
        at: datetime,
    ) -> bool:
        """Compare-and-set; False if the status changed meanwhile."""
        ...

    def set_planned(self, campaign_id: uuid.UUID, counts: dict[str, int], at: datetime) -> None: ...
    def due(self, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]: ...
    def running(self) -> list[uuid.UUID]: ...
    def list(self, tenant_id: uuid.UUID) -> list[Campaign]: ...


class Deliveries(Protocol):
    """Delivery rows: planned set-based, leased in batches, settled in bulk
    (persistence/deliveries.py). Transitions are compare-and-set on status and lease owner."""

    def plan(
        self,
        tenant: Tenant,
        campaign: Campaign,
        intent: Intent,
        now: datetime,
        *,
        queue: bool = False,
    ) -> PlanCounts: ...
    def simulate(
        self, tenant: Tenant, intent: Intent, now: datetime, campaign: Campaign, sample: int = 20
    ) -> Simulation: ...
    def queue_planned(self, campaign_id: uuid.UUID, now: datetime) -> int: ...
    def cancel_pending(self, campaign_id: uuid.UUID, now: datetime) -> int: ...
    def discard(self, campaign_id: uuid.UUID) -> int: ...
    def forget_contact(self, tenant_id: uuid.UUID, contact_id: uuid.UUID, now: datetime) -> int:
        """Erasure: stop the contact's messages not yet in flight and drop what is sealed in
        them; returns how many were stopped."""
        ...

    def forget_captured_to(self, tenant_id: uuid.UUID, point_keys: Sequence[bytes]) -> int: ...

    def add_message(
        self,
        *,
        tenant_id: uuid.UUID,
        contact_id: uuid.UUID,
        topic_id: uuid.UUID,
        template_id: uuid.UUID,
        channel: Channel,
        category: Category,
        idempotency_key: str | None,
        variables: Mapping[str, Any],
        status: DeliveryStatus,
        reasons: Sequence[str],
        consent_event_id: uuid.UUID | None,
        next_attempt_at: datetime | None,
        now: datetime,
    ) -> int: ...
    def by_idempotency_key(self, tenant_id: uuid.UUID, key: str) -> Delivery | None: ...
    def get(self, tenant_id: uuid.UUID, delivery_id: int) -> Delivery: ...
    def of_campaign(
        self, campaign_id: uuid.UUID, status: DeliveryStatus | None, after: int, limit: int
    ) -> list[Delivery]: ...
    def claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        campaign_id: uuid.UUID | None = None,
    ) -> list[ClaimedDelivery]: ...
    def refuse(self, owner: str, refused: Mapping[int, tuple[str, ...]], now: datetime) -> None: ...
    def defer(
        self, owner: str, deferred: Mapping[int, tuple[datetime, tuple[str, ...]]], now: datetime
    ) -> None: ...
    def fail_unsent(
        self, owner: str, failed: Mapping[int, tuple[str, str]], now: datetime
    ) -> None: ...
    def mark_sending(
        self,
        owner: str,
        batch: Mapping[int, tuple[str, uuid.UUID | None]],
        now: datetime,
        lease_until: datetime,
    ) -> set[int]: ...
    def record(self, owner: str, outcomes: Iterable[Outcome]) -> None: ...
    def reap(self, now: datetime) -> tuple[int, int]: ...
    def recent_sends(
        self, contact_ids: Sequence[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, tuple[datetime, ...]]: ...
    def has_sent(self, contact_id: uuid.UUID, channel: Channel) -> bool: ...
    def progress(self, campaign_id: uuid.UUID) -> dict[str, int]: ...
    def complete_finished(self, now: datetime) -> list[uuid.UUID]: ...
    def pending_count(self) -> int: ...


class Fences(Protocol):
    """Opt-outs and dispatches of one address never overlap (persistence/fences.py)."""

    def exclusive(self, point_keys: Iterable[bytes]) -> None: ...
    def shared(self, point_keys: Iterable[bytes]) -> None: ...


class Signals(Protocol):
    """The inbound event log and what signals leave behind (persistence/signals.py)."""

    def record(
        self,
        source: SignalSource,
        event_id: str,
        content_type: str,
        payload: bytes,
        received_at: datetime,
    ) -> int | None: ...
    def settle(
        self,
        inbound_id: int,
        *,
        status: str,
        tenant_id: uuid.UUID | None,
        kinds: str,
        outcome: str,
    ) -> None: ...
    def inbound(
        self, *, status: str | None = None, tenant_id: uuid.UUID | None = None, limit: int = 100
    ) -> list[InboundRecord]: ...
    def payload(self, inbound_id: int) -> bytes | None: ...
    def link_points(self, inbound_id: int, point_keys: Iterable[bytes]) -> None: ...
    def forget_payloads(self, tenant_id: uuid.UUID, point_keys: Sequence[bytes]) -> int: ...
    def record_courtesy(
        self, message_id: str, tenant_id: uuid.UUID, point_key: bytes, at: datetime
    ) -> None: ...
    def forget_courtesy(self, before: datetime) -> int: ...
    def forget_courtesy_to(self, tenant_id: uuid.UUID, point_keys: Sequence[bytes]) -> int: ...
    def courtesy_by_message_id(self, message_id: str) -> CourtesyMessage | None: ...
    def delivery_by_message_id(self, message_id: str) -> SentDelivery | None: ...
    def delivery_by_provider_id(self, provider_message_id: str) -> SentDelivery | None: ...
    def latest_sent_to(
        self, contact_ids: Sequence[uuid.UUID], channel: Channel
    ) -> SentDelivery | None: ...
    def report_delivery(
        self,
        delivery_id: int,
        status: DeliveryStatus,
        now: datetime,
        error_code: str | None = None,
    ) -> bool: ...
    def contacts_with_point(
        self, channel: Channel, point_key: bytes
    ) -> list[tuple[uuid.UUID, uuid.UUID]]: ...
    def open_service_window(self, point_key: bytes, at: datetime) -> int: ...
    def open_case(
        self, case: ComplaintCase, contact_id: uuid.UUID | None, inbound_id: int
    ) -> None: ...
    def cases(self, tenant_id: uuid.UUID, limit: int = 100) -> list[ComplaintCase]: ...
    def soft_bounce(self, point_key: bytes, status: str, now: datetime) -> int: ...
    def reset_bounces(self, point_key: bytes) -> None: ...
    def contact_point_key(self, contact_id: uuid.UUID, channel: Channel) -> bytes | None:
        """The blind index of a contact's address on ``channel`` (no decryption)."""
        ...

    def alert(
        self,
        tenant_id: uuid.UUID,
        kind: str,
        detail: str,
        inbound_id: int | None,
        now: datetime,
    ) -> None: ...
    def alerts(self, tenant_id: uuid.UUID, limit: int = 100) -> list[tuple[str, str, datetime]]: ...


@dataclass(frozen=True, slots=True)
class ExistingPoint:
    """A contact point an import row names that the tenant already has."""

    contact_id: uuid.UUID
    adult_on: date | None
    # Consent states of the point on the import's topic and its umbrella:
    # (topic id, status, confirmed, recorded by this same import).
    states: tuple[tuple[uuid.UUID, ConsentStatus, bool, bool], ...]


@dataclass(frozen=True, slots=True)
class ImportLookup:
    existing: dict[bytes, ExistingPoint]  # point key -> the contact that has it
    email_owners: dict[bytes, uuid.UUID]  # email blind index -> contact
    suppressed: dict[bytes, str]  # point key -> reason of an active suppression on the channel


class ImportRecords(Protocol):
    """Import records with their attestation and file hash, and their row-level reports."""

    def add(self, record: ImportRecord) -> None: ...
    def get(self, tenant_id: uuid.UUID, import_id: uuid.UUID) -> ImportRecord: ...
    def pending_requests(
        self,
        record: ImportRecord,
        after: uuid.UUID | None,
        limit: int,
    ) -> list[ConsentState]:
        """Consent states of the import's topic and channel still pending on a ``requested``
        event this import recorded, by contact id after ``after``."""
        ...

    def add_confirmations_sent(self, import_id: uuid.UUID, sent: int) -> None: ...
    def finish(
        self,
        import_id: uuid.UUID,
        *,
        status: ImportStatus,
        counts: ImportCounts,
        rows_done: int,
        at: datetime | None,
        disclosure_document_id: uuid.UUID | None = None,
        error: tuple[str, str] | None = None,
    ) -> None: ...
    def add_issues(
        self, tenant_id: uuid.UUID, import_id: uuid.UUID, issues: Iterable[RowIssue]
    ) -> None: ...
    def issues(
        self, tenant_id: uuid.UUID, import_id: uuid.UUID, after: int = 0, limit: int | None = None
    ) -> Iterator[tuple[int, RowIssue]]:
        """(cursor, issue) pairs in file order after ``after``."""
        ...

    def forget_values(self, tenant_id: uuid.UUID, keys: Sequence[bytes]) -> int:
        """Empty the report cells holding one of these addresses (by blind index): erasure."""
        ...


SealedRow = tuple[Any, ...]  # a contact's stored columns, sealed and indexed, in table order


@dataclass(frozen=True, slots=True)
class SealedEvent:
    """A consent event ready to be chained: its evidence sealed and digested, its canonical
    JSON rendered around the sequence number, the one chained field still to come."""

    event: ConsentEvent
    evidence_columns: tuple[Any, ...]  # sealed personal data and digests, in table order
    before_seq: str
    after_seq: str


class BatchPreparer(Protocol):
    """Prepares an import's batches for the store without touching the database: parsed,
    indexed and sealed (possibly in a helper process). A context manager: leaving it ends any
    helper."""

    def batches(self, raws: Iterable[list[RawRow]]) -> Iterator[PreparedBatch]:
        """Each raw batch prepared, in order (a helper may work ahead on the next)."""
        ...

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class Written:
    """What ``ImportRows.write`` stored: new contacts and consent events."""

    contacts: int
    events: int


class ImportRows(Protocol):
    """Set-based reads and bulk writes of one batch of import rows."""

    def lookup(
        self,
        tenant_id: uuid.UUID,
        channel: Channel,
        *,
        topic_ids: Sequence[uuid.UUID],
        point_keys: Sequence[bytes],
        email_keys: Sequence[bytes],
        import_id: uuid.UUID,
    ) -> ImportLookup: ...
    def sealing_keys(self, tenant_id: uuid.UUID) -> SealingKeys: ...
    def preparer(self, ctx: RowContext, keys: SealingKeys, *, rows: int) -> BatchPreparer:
        """A preparer for an import of about ``rows`` rows."""
        ...

    def write(self, tenant_id: uuid.UUID, items: Sequence[Any]) -> Written:
        """Store a batch, in order: each item is the ``payload`` of a ready row whose new
        contact is added with its consent event, or an ``ExistingConsent`` of a contact the
        tenant has already. Events are chained onto the ledger in order and their states
        folded."""
        ...


class PermissionPasses(Protocol):
    """Permission passes and the members each asked (persistence/passes.py)."""

    def add(self, p: PermissionPass) -> None: ...
    def add_members(self, p: PermissionPass, now: datetime) -> int:
        """Every contact point of the source whose consent is active now; the number added."""
        ...

    def size(self, pass_id: uuid.UUID) -> int: ...
    def fill_list(self, pass_id: uuid.UUID, list_id: uuid.UUID) -> None: ...
    def get(self, tenant_id: uuid.UUID, pass_id: uuid.UUID) -> PermissionPass: ...
    def for_campaign(self, campaign_id: uuid.UUID) -> PermissionPass | None: ...
    def of_tenant(self, tenant_id: uuid.UUID) -> list[PermissionPass]: ...
    def due(self, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]: ...
    def hold_running(self, pass_id: uuid.UUID) -> bool:
        """Whether the pass still runs; its end waits for this transaction."""
        ...

    def member(self, pass_id: uuid.UUID, contact_id: uuid.UUID) -> PassMember | None: ...
    def asking(
        self, point_key: bytes, channel: Channel, now: datetime
    ) -> list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]]:
        """(tenant, pass, contact) of running passes still waiting for this address."""
        ...

    def record_renewal(
        self, pass_id: uuid.UUID, contact_id: uuid.UUID, event_id: uuid.UUID, at: datetime
    ) -> bool: ...
    def mark_ended(self, pass_id: uuid.UUID, at: datetime) -> bool: ...
    def undecided(
        self, pass_id: uuid.UUID
    ) -> list[tuple[uuid.UUID, uuid.UUID, ConsentState | None]]: ...
    def set_outcomes(
        self, pass_id: uuid.UUID, outcomes: Mapping[uuid.UUID, MemberOutcome]
    ) -> None: ...
    def member_counts(self, pass_id: uuid.UUID) -> list[tuple[str | None, str | None, bool, int]]:
        """(stored outcome, current status, still on its start event, members) groups."""
        ...

    def delivery_counts(self, campaign_id: uuid.UUID) -> list[tuple[str, str, int]]: ...


class PolicyNotices(Protocol):
    """Policy-change notices and their recipients (persistence/notices.py)."""

    def forget_contact(
        self, tenant_id: uuid.UUID, contact_id: uuid.UUID, now: datetime
    ) -> None: ...
    def add(self, notice: PolicyNotice) -> None: ...
    def add_recipients(self, notice: PolicyNotice, document: PolicyDocument, now: datetime) -> int:
        """Every contact point the new version concerns that no notice about it on this channel
        has reached yet; the number added."""
        ...

    def concerned_states(
        self,
        tenant_id: uuid.UUID,
        contact_id: uuid.UUID,
        document: PolicyDocument,
        channel: Channel,
        now: datetime,
    ) -> list[ConsentState]: ...
    def get(self, tenant_id: uuid.UUID, notice_id: uuid.UUID) -> PolicyNotice: ...
    def of_document(self, tenant_id: uuid.UUID, document_id: uuid.UUID) -> list[PolicyNotice]: ...
    def recipient(self, notice_id: uuid.UUID, contact_id: uuid.UUID) -> NoticeRecipient | None: ...
    def counts(self, notice_id: uuid.UUID) -> list[tuple[RecipientStatus, str | None, int]]: ...
    def claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        notice_id: uuid.UUID | None = None,
    ) -> list[NoticeRecipient]: ...
    def settle(
        self,
        owner: str,
        notice_id: uuid.UUID,
        outcomes: Mapping[uuid.UUID, tuple[RecipientStatus, str | None, datetime | None]],
        now: datetime,
    ) -> None: ...
    def mark_sending(
        self,
        owner: str,
        notice_id: uuid.UUID,
        message_ids: Mapping[uuid.UUID, str],
        now: datetime,
        lease_until: datetime,
    ) -> None: ...
    def reap(self, now: datetime) -> int: ...
    def finish_done(self, now: datetime) -> int: ...
    def record_acceptance(
        self,
        tenant_id: uuid.UUID,
        notice_id: uuid.UUID,
        contact_id: uuid.UUID,
        evidence: str,
        at: datetime,
    ) -> bool: ...
    def acceptance(
        self, tenant_id: uuid.UUID, notice_id: uuid.UUID, contact_id: uuid.UUID
    ) -> str | None: ...


class UnitOfWork(Protocol):
    """One transaction. ``with uow:`` begins it; leaving without ``commit()`` rolls back."""

    @property
    def tenants(self) -> TenantRepository: ...
    @property
    def topics(self) -> TopicRepository: ...
    @property
    def contacts(self) -> ContactRepository: ...
    @property
    def policies(self) -> PolicyRepository: ...
    @property
    def ledger(self) -> ConsentLedger: ...
    @property
    def consent_states(self) -> ConsentStates: ...
    @property
    def suppressions(self) -> SuppressionRepository: ...
    @property
    def dnc(self) -> DncRegistry: ...
    @property
    def gate(self) -> GateQueries: ...
    @property
    def keys(self) -> KeyRing: ...

    @property
    def access(self) -> AccessRepository: ...

    @property
    def idempotency(self) -> IdempotencyStore: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def sender_domains(self) -> SenderDomains: ...
    @property
    def templates(self) -> Templates: ...
    @property
    def lists(self) -> ContactLists: ...
    @property
    def campaigns(self) -> Campaigns: ...
    @property
    def forms(self) -> Forms: ...
    @property
    def tenant_keywords(self) -> TenantKeywords: ...
    @property
    def deliveries(self) -> Deliveries: ...
    @property
    def fences(self) -> Fences: ...
    @property
    def signals(self) -> Signals: ...
    @property
    def imports(self) -> ImportRecords: ...
    @property
    def import_rows(self) -> ImportRows: ...
    @property
    def passes(self) -> PermissionPasses: ...
    @property
    def notices(self) -> PolicyNotices: ...

    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...
    def commit(self) -> None: ...
    def checkpoint(self) -> None:
        """Commit what was done so far and go on in a new transaction (locks released)."""
        ...

    def rollback(self) -> None: ...
