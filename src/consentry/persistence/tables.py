"""SQLAlchemy Core tables on one MetaData. Domain objects never become ORM objects.

Personal data lives only in ``*_enc`` columns (AES-GCM under the tenant's data key); equality
lookups use ``*_key`` blind indexes; hash chains use ``*_digest`` keyed digests.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, ConsentStatus
from consentry.domain.delivery import CampaignStatus, DeliveryStatus
from consentry.domain.forms import FormStatus
from consentry.domain.imports import Acquisition, ImportStatus, Severity
from consentry.domain.model import Category, Channel, PolicyKind, PolicyStatus, TenantStatus
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.persistence.types import UTCDateTime

# Named constraints let Alembic's batch mode rebuild SQLite tables reliably.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _partial_index(
    name: str, *columns: str, unique: bool = False, set_column: str | None = None
) -> Index:
    """An index of the rows whose ``set_column`` (by default the last column) is set
    (PostgreSQL and SQLite alike)."""
    where = text(f"{set_column or columns[-1]} IS NOT NULL")
    return Index(name, *columns, unique=unique, postgresql_where=where, sqlite_where=where)


# The rows of ``ix_deliveries_due``.
DUE_WHERE = "next_attempt_at IS NOT NULL OR campaign_id IS NULL"


def _one_of(column: str, values: type[StrEnum]) -> CheckConstraint:
    allowed = ", ".join(f"'{v.value}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=f"{column}_valid")


tenants = Table(
    "tenants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("slug", String(64), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("legal_name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("contact_email", String(320)),
    Column("contact_phone", String(32)),
    Column("postal_address", Text),
    Column("website", String(500)),
    Column("country", String(2), nullable=False),
    Column("status", String(16), nullable=False),
    Column("data_key", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    _one_of("status", TenantStatus),
)

topics = Table(
    "topics",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("category", String(16), nullable=False),
    Column("requires_double_opt_in", Boolean, nullable=False, default=False),
    Column("umbrella", Boolean, nullable=False, default=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "key", name="uq_topics_tenant_key"),
    _one_of("category", Category),
)

policy_documents = Table(
    "policy_documents",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("version", Integer, nullable=False),
    Column("title", String(300), nullable=False),
    Column("body", Text, nullable=False),
    Column("locale", String(16), nullable=False),
    Column("content_hash", String(80), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("published_at", UTCDateTime),
    UniqueConstraint("tenant_id", "kind", "locale", "version", name="uq_policy_documents_version"),
    _one_of("kind", PolicyKind),
    _one_of("status", PolicyStatus),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("external_ref", String(200)),
    Column("name_enc", LargeBinary),
    Column("email_enc", LargeBinary),
    Column("email_key", LargeBinary(16)),
    Column("phone_enc", LargeBinary),
    Column("phone_key", LargeBinary(16)),
    Column("phone_type", String(32)),
    Column("whatsapp_enc", LargeBinary),
    Column("whatsapp_key", LargeBinary(16)),
    Column("postal_enc", LargeBinary),
    Column("postal_key", LargeBinary(16)),
    Column("country", String(2)),
    Column("time_zone", String(64)),
    Column("locale", String(16)),
    Column("dob_enc", LargeBinary),
    # The day the person reaches the age threshold, rounded up to a month: the gate reads it
    # without decrypting the date of birth.
    Column("adult_on", Date),
    Column("age_attested", Boolean, nullable=False, default=False),
    Column("whatsapp_last_inbound_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("erased_at", UTCDateTime),
    # Led by the address: signals (a STOP, a bounce) find contacts by address in every tenant,
    # and lookups within a tenant are served as well (migrations 0014 and 0020). An address is
    # unique within a tenant; contacts without a number stay out of the number indexes.
    UniqueConstraint("email_key", "tenant_id", name="uq_contacts_email_tenant"),
    _partial_index("ix_contacts_phone", "phone_key", "tenant_id", set_column="phone_key"),
    _partial_index("ix_contacts_whatsapp", "whatsapp_key", "tenant_id", set_column="whatsapp_key"),
    Index("ix_contacts_tenant_jurisdiction", "tenant_id", "country", "time_zone"),
)

# No foreign keys on the ledger (migration 0020): its writer takes every parent (tenant,
# contact, topic, disclosure, the governing event) from rows it read in the same transaction,
# and none of them is ever deleted (contacts are erased in place), so the keys could only ever
# be checked, never broken; checking eight of them per appended event and state was half of
# PostgreSQL's work in a large import. ``verify-ledger`` checks the references, per tenant.
consent_events = Table(
    "consent_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("contact_id", Uuid, nullable=False),
    Column("point_key", LargeBinary(16), nullable=False),
    Column("topic_id", Uuid, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("action", String(16), nullable=False),
    Column("basis", String(32), nullable=False),
    Column("method", String(16), nullable=False),
    Column("source_enc", LargeBinary),
    Column("source_digest", String(64)),
    Column("ip_enc", LargeBinary),
    Column("ip_digest", String(64)),
    Column("user_agent_enc", LargeBinary),
    Column("user_agent_digest", String(64)),
    Column("note_enc", LargeBinary),
    Column("note_digest", String(64)),
    Column("policy_document_id", Uuid),
    Column("disclosure_hash", String(80)),
    Column("actor", String(200)),
    Column("import_batch_id", Uuid),
    Column("inbound_message_id", String(200)),
    Column("relationship", String(16)),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    UniqueConstraint("tenant_id", "seq", name="uq_consent_events_tenant_seq"),
    Index("ix_consent_events_contact", "tenant_id", "contact_id"),
    _one_of("channel", Channel),
    _one_of("action", ConsentAction),
    _one_of("basis", ConsentBasis),
    _one_of("method", ConsentMethod),
)

# The head of each tenant's hash chain; updating it serialises appends per tenant.
chain_heads = Table(
    "chain_heads",
    metadata,
    Column("chain", String(32), primary_key=True),
    Column("tenant_id", Uuid, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

consent_states = Table(
    "consent_states",
    metadata,
    Column("tenant_id", Uuid, nullable=False),
    Column("topic_id", Uuid, primary_key=True),
    Column("channel", String(16), primary_key=True),
    Column("contact_id", Uuid, primary_key=True),
    Column("point_key", LargeBinary(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("basis", String(32), nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("event_id", Uuid, nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("granted_at", UTCDateTime),
    Column("expires_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_consent_states_contact", "tenant_id", "contact_id"),
    _one_of("status", ConsentStatus),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id")),  # NULL: platform-wide
    Column("point_key", LargeBinary(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("source", String(200)),
    Column("note", Text),
    Column("actor", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("lifted_at", UTCDateTime),
    Column("lifted_by", String(200)),
    Index("ix_suppressions_point", "point_key", "channel"),
    Index("ix_suppressions_tenant", "tenant_id", "created_at"),
    _one_of("channel", Channel),
    _one_of("scope", SuppressionScope),
    _one_of("reason", SuppressionReason),
)

# Do-not-contact registries (national do-not-call lists), platform-wide, by blind index.
dnc_entries = Table(
    "dnc_entries",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("registry", String(64), nullable=False),
    Column("point_key", LargeBinary(16), nullable=False),
    Column("listed_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime),
    UniqueConstraint("registry", "point_key", name="uq_dnc_entries_registry_point"),
    Index("ix_dnc_entries_point", "point_key"),
)

# -- access: operators, sessions, API keys, idempotency, the audit log --------------------------

users = Table(
    "users",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(200), nullable=False),
    Column("role", String(32), nullable=False),
    Column("tenant_id", Uuid, ForeignKey("tenants.id")),  # NULL for platform operators
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("token_hash", LargeBinary(32), nullable=False, unique=True),
    Column("user_id", Uuid, ForeignKey("users.id"), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("prefix", String(32), nullable=False, unique=True),  # public, shown in listings
    Column("secret_hash", LargeBinary(32), nullable=False),
    Column("name", String(200), nullable=False),
    Column("tenant_id", Uuid, ForeignKey("tenants.id")),  # NULL: a platform operator's token
    Column("user_id", Uuid, ForeignKey("users.id")),  # set for personal operator tokens
    Column("role", String(32), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("revoked_at", UTCDateTime),
    Column("last_used_at", UTCDateTime),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("principal", String(100), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("method", String(8), nullable=False),
    Column("path", String(500), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response_body", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("completed_at", UTCDateTime),
)

# Who read or changed what personal data, when and from where; hash-chained per tenant (the
# platform's own entries chain under the nil tenant id). Entries are written without their link
# (seq, prev_hash, hash) and chained by the sealer (services/audit_seal.py).
audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("seq", BigInteger),
    Column("actor", String(200), nullable=False),
    Column("action", String(64), nullable=False),
    Column("object_type", String(64), nullable=False),
    Column("object_id", String(100)),
    Column("ip_digest", String(64)),
    Column("request_id", String(64)),
    Column("at", UTCDateTime, nullable=False),
    Column("prev_hash", String(64)),
    Column("hash", String(64)),
    UniqueConstraint("tenant_id", "seq", name="uq_audit_log_tenant_seq"),
    Index(
        "ix_audit_log_unsealed",
        "tenant_id",
        "at",
        postgresql_where=text("seq IS NULL"),
        sqlite_where=text("seq IS NULL"),
    ),
)

# -- delivery: sender domains, templates, lists, campaigns, deliveries, the captured outbox -----

# Big integer keys that are SQLite rowid aliases (autoincrement) there.
RowId = BigInteger().with_variant(Integer, "sqlite")

# Domains a tenant may send email from; the DKIM private key is sealed under the tenant's key.
sender_domains = Table(
    "sender_domains",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("domain", String(253), nullable=False),
    Column("dkim_selector", String(63)),
    Column("dkim_key_enc", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "domain", name="uq_sender_domains_tenant_domain"),
)

templates = Table(
    "templates",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("topic_id", Uuid, ForeignKey("topics.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("subject", Text),
    Column("text", Text, nullable=False),
    Column("html", Text),
    Column("whatsapp_template", String(512)),
    Column("whatsapp_language", String(16), nullable=False),
    Column("whatsapp_parameters", Text, nullable=False),  # JSON list of expressions
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_templates_tenant_name"),
    _one_of("channel", Channel),
)

contact_lists = Table(
    "contact_lists",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "name", name="uq_contact_lists_tenant_name"),
)

contact_list_members = Table(
    "contact_list_members",
    metadata,
    Column("list_id", Uuid, ForeignKey("contact_lists.id"), primary_key=True),
    Column("contact_id", Uuid, ForeignKey("contacts.id"), primary_key=True),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("topic_id", Uuid, ForeignKey("topics.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("template_id", Uuid, ForeignKey("templates.id"), nullable=False),
    Column("list_id", Uuid, ForeignKey("contact_lists.id")),
    Column("audience_filter", Text, nullable=False),  # JSON: field -> allowed values
    Column("from_address", String(320)),
    Column("frequency_cap", String(32)),  # "<messages>/<hours>h", or NULL for none
    Column("status", String(16), nullable=False),
    Column("scheduled_at", UTCDateTime),
    Column("plan_counts", Text),  # JSON: primary reason -> recipients, written when planned
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("planned_at", UTCDateTime),
    Column("launched_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    # The contact up to which claims have taken the campaign's untried deliveries (the claims'
    # cursor over (campaign_id, contact_id)); NULL before the first claim.
    Column("claimed_through", Uuid),
    UniqueConstraint("tenant_id", "name", name="uq_campaigns_tenant_name"),
    _one_of("status", CampaignStatus),
    _one_of("channel", Channel),
)

# No foreign keys: a campaign plans a million rows in one INSERT ... SELECT, and checking five
# keys per row cost two thirds of it (18 of 27 s on PostgreSQL). The planner takes contacts
# from the contacts table in that statement and the campaign, topic and template from rows it
# read in the same transaction, and none of these parents is ever deleted (contacts are erased
# in place), so the keys could only ever be checked, never broken.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("campaign_id", Uuid),  # NULL: a transactional message
    Column("contact_id", Uuid, nullable=False),
    Column("topic_id", Uuid, nullable=False),
    Column("template_id", Uuid, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("category", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reasons", String(400), nullable=False),  # reason codes, each followed by a comma
    Column("consent_event_id", Uuid),  # the event that authorised it, as last decided
    Column("next_attempt_at", UTCDateTime),
    Column("attempts", Integer, nullable=False),
    Column("idempotency_key", String(255)),  # transactional sends
    Column("variables_enc", LargeBinary),  # transactional: the caller's data, sealed
    Column("message_id", String(255)),  # Message-ID or provider idempotency key, fixed once set
    Column("provider_message_id", String(255)),
    Column("error_code", String(64)),
    Column("error_detail", String(500)),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
    Column("planned_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("campaign_id", "contact_id", name="uq_deliveries_campaign_contact"),
    # Campaign rows have no idempotency key, Message-ID, provider id or send time when they are
    # planned: partial indexes leave them out, so planning a million rows does not write a
    # million entries of NULL into each (every query below names a value, which implies the
    # index's condition).
    _partial_index("uq_deliveries_tenant_idempotency", "tenant_id", "idempotency_key", unique=True),
    # What a claim walks: retries, deferrals and claimed rows (whose lease end is their next
    # attempt) and transactional messages. A campaign's untried rows are not in it (a plan
    # would write a million entries); claims take them in contact order from the campaign's
    # cursor (``campaigns.claimed_through``) through ``uq_deliveries_campaign_contact``.
    Index(
        "ix_deliveries_due",
        "status",
        "next_attempt_at",
        postgresql_where=text(DUE_WHERE),
        sqlite_where=text(DUE_WHERE),
    ),
    # No (campaign, status) index: planning would write a million entries into it, and a
    # campaign's pending rows are found through the one above (migration 0013).
    _partial_index("ix_deliveries_contact_sent", "contact_id", "sent_at"),
    # A contact's transactional messages (erasure); campaign rows are not in it.
    Index(
        "ix_deliveries_transactional_contact",
        "tenant_id",
        "contact_id",
        postgresql_where=text("campaign_id IS NULL"),
        sqlite_where=text("campaign_id IS NULL"),
    ),
    _partial_index("ix_deliveries_provider", "provider_message_id"),
    _one_of("status", DeliveryStatus),
    _one_of("channel", Channel),
    _one_of("category", Category),
)

# What the embedded ``capture`` channel "sent": personal data sealed like everywhere else.
captured_messages = Table(
    "captured_messages",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("delivery_id", BigInteger, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("recipient_enc", LargeBinary, nullable=False),
    Column("summary_enc", LargeBinary, nullable=False),
    Column("raw_enc", LargeBinary, nullable=False),
    Column("captured_at", UTCDateTime, nullable=False),
    # The recipient's blind index: erasure finds copies that belong to no delivery.
    Column("recipient_key", LargeBinary(16)),
    Index("ix_captured_messages_tenant", "tenant_id", "id"),
)

# -- signals in (opt-outs, keywords, bounces, complaints) ------------------------------------------

# Every authentic inbound payload, once: the unique (source, event_id) is the de-duplication, so a
# replayed webhook or report is recognised by the database, not by a check-then-insert. The raw
# payload is kept sealed under a platform key (the tenant is often not known until it is parsed).
inbound_events = Table(
    "inbound_events",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("source", String(32), nullable=False),
    Column("event_id", String(255), nullable=False),
    Column("tenant_id", Uuid, ForeignKey("tenants.id")),
    Column("status", String(16), nullable=False),  # applied, ignored, review, unattributed, ...
    Column("kinds", String(200), nullable=False),  # the signals it carried, comma-separated
    Column("outcome", String(500), nullable=False),  # what was applied, in words, no PII
    Column("content_type", String(100), nullable=False),
    Column("payload_enc", LargeBinary, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("source", "event_id", name="uq_inbound_events_source_event"),
    Index("ix_inbound_events_status", "status", "id"),
)

# The addresses an inbound event was about, by blind index: erasing a person finds the payloads
# that named them. (A provider's batch can name several people; each is linked.)
inbound_event_points = Table(
    "inbound_event_points",
    metadata,
    Column("point_key", LargeBinary(16), primary_key=True),
    Column("inbound_id", BigInteger, primary_key=True),
)

complaint_cases = Table(
    "complaint_cases",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("campaign_id", Uuid, ForeignKey("campaigns.id")),
    Column("delivery_id", BigInteger),
    Column("contact_id", Uuid),
    Column("channel", String(16), nullable=False),
    Column("feedback_type", String(32), nullable=False),
    Column("source", String(32), nullable=False),
    Column("inbound_event_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Index("ix_complaint_cases_tenant", "tenant_id", "opened_at"),
    _one_of("channel", Channel),
)

# Soft bounces in a row per address; reset by a delivery report that the address accepted mail.
bounce_streaks = Table(
    "bounce_streaks",
    metadata,
    Column("point_key", LargeBinary(16), primary_key=True),
    Column("soft_bounces", Integer, nullable=False),
    Column("last_status", String(16), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

# Email sent outside campaigns (confirmation requests, preference links, policy notices, import
# confirmations) is not a delivery: its Message-ID is kept here, with the recipient's blind index,
# so that a bounce or complaint about it reaches the suppression list. Kept for 30 days.
courtesy_messages = Table(
    "courtesy_messages",
    metadata,
    Column("message_id", String(255), primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("point_key", LargeBinary(16), nullable=False),
    Column("sent_at", UTCDateTime, nullable=False),
    Index("ix_courtesy_messages_sent", "sent_at"),
)

# Things a tenant must look at that suppress no one: a 5.7.x policy bounce, a refusal-like SMS.
tenant_alerts = Table(
    "tenant_alerts",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", String(500), nullable=False),
    Column("inbound_event_id", BigInteger),
    Column("created_at", UTCDateTime, nullable=False),
    Index("ix_tenant_alerts_tenant", "tenant_id", "id"),
)

deliveries.append_constraint(_partial_index("ix_deliveries_message_id", "message_id"))

# -- imports: attested lists, and the row-level report of each -----------------------------------

imports = Table(
    "imports",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("topic_id", Uuid, ForeignKey("topics.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("dry_run", Boolean, nullable=False),
    Column("keep_good_rows", Boolean, nullable=False),
    Column("file_name", String(300), nullable=False),
    Column("file_sha256", String(64), nullable=False),
    Column("file_bytes", BigInteger, nullable=False),
    Column("rows_total", BigInteger, nullable=False),
    Column("rows_done", BigInteger, nullable=False),
    Column("mapping", Text, nullable=False),  # JSON: field -> column
    Column("required", String(200), nullable=False),  # per-row evidence required, comma-separated
    # The attestation: what the importer declared about the list, and who.
    Column("source", String(500), nullable=False),
    Column("opt_in_method", String(32), nullable=False),
    Column("collected_from", Date, nullable=False),
    Column("collected_to", Date, nullable=False),
    Column("website", String(500)),
    Column("acquisition", String(16), nullable=False),
    Column("attested", Boolean, nullable=False),
    Column("attested_by", String(200), nullable=False),
    Column("disclosure_document_id", Uuid, ForeignKey("policy_documents.id")),
    Column("disclosure_text", Text),
    Column("confirmation_required", Boolean, nullable=False),
    Column("counts", Text, nullable=False),  # JSON: imported, pending, skipped, errors, ...
    Column("error_code", String(64)),
    Column("error_detail", String(500)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Index("ix_imports_tenant", "tenant_id", "created_at"),
    _one_of("channel", Channel),
    _one_of("status", ImportStatus),
    _one_of("acquisition", Acquisition),
)

import_issues = Table(
    "import_issues",
    metadata,
    Column("id", RowId, primary_key=True, autoincrement=True),
    Column("import_id", Uuid, ForeignKey("imports.id"), nullable=False),
    Column("line", BigInteger, nullable=False),
    Column("field", String(64)),
    Column("code", String(64), nullable=False),
    Column("severity", String(16), nullable=False),
    Column("message", String(500), nullable=False),
    Column("value_enc", LargeBinary),  # the offending cell, sealed under the tenant's key
    # The blind index of the cell when it is an address (an email address or phone number in
    # international form), so that erasing the person empties it (migration 0019).
    Column("value_key", LargeBinary(16)),
    Index("ix_import_issues_import", "import_id", "id"),
    _partial_index("ix_import_issues_value_key", "value_key"),
    _one_of("severity", Severity),
)

# -- public subscription forms, and the submissions each has taken ----------------------------

subscription_forms = Table(
    "subscription_forms",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("key", String(64), nullable=False),
    Column("title", String(200), nullable=False),
    Column("intro", Text, nullable=False),
    Column("choices", Text, nullable=False),  # JSON: [{"topic_id", "topic_key", "channel"}]
    Column("disclosure_kind", String(32), nullable=False),
    Column("privacy_url", String(500)),
    Column("confirm", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("tenant_id", "key", name="uq_subscription_forms_tenant_key"),
    _one_of("status", FormStatus),
    _one_of("disclosure_kind", PolicyKind),
)

# One row per accepted submission; nothing personal (the evidence is in the ledger, sealed).
# The dedupe key (the form token's nonce, or a digest for embedded forms) makes a form posted
# twice write once.
form_submissions = Table(
    "form_submissions",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("form_id", Uuid, ForeignKey("subscription_forms.id"), nullable=False),
    Column("dedupe_key", LargeBinary(32), nullable=False),
    Column("ticked", Text, nullable=False),  # JSON: the box values ticked
    Column("outcomes", Text, nullable=False),  # JSON: box value -> outcome
    Column("disclosure_document_id", Uuid, ForeignKey("policy_documents.id")),
    Column("received_at", UTCDateTime, nullable=False),
    UniqueConstraint("form_id", "dedupe_key", name="uq_form_submissions_form_dedupe"),
    Index("ix_form_submissions_form", "form_id", "received_at"),
)

# -- permission passes: reconfirmation with a deadline, and who was asked -------------------------

permission_passes = Table(
    "permission_passes",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("name", String(200), nullable=False),
    Column("topic_id", Uuid, ForeignKey("topics.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("source_kind", String(16), nullable=False),
    Column("list_id", Uuid, ForeignKey("contact_lists.id")),  # the list the pass was run on
    Column("import_id", Uuid, ForeignKey("imports.id")),  # or the import batch
    Column("campaign_id", Uuid, ForeignKey("campaigns.id"), nullable=False),
    Column("disclosure_document_id", Uuid, ForeignKey("policy_documents.id"), nullable=False),
    Column("deadline", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    UniqueConstraint("campaign_id", name="uq_permission_passes_campaign"),
    Index("ix_permission_passes_due", "status", "deadline"),
    Index("ix_permission_passes_tenant", "tenant_id", "created_at"),
    CheckConstraint("source_kind IN ('list', 'import')", name="source_kind_valid"),
    CheckConstraint("status IN ('running', 'ended')", name="status_valid"),
    _one_of("channel", Channel),
)

# The contact points a pass asked, with the event their consent was active on when it started;
# the outcome is written when the pass ends.
permission_pass_members = Table(
    "permission_pass_members",
    metadata,
    Column("pass_id", Uuid, ForeignKey("permission_passes.id"), primary_key=True),
    Column("contact_id", Uuid, ForeignKey("contacts.id"), primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("point_key", LargeBinary(16), nullable=False),
    Column("start_event_id", Uuid, nullable=False),
    Column("renewed_event_id", Uuid),
    Column("renewed_at", UTCDateTime),
    Column("outcome", String(16)),
    CheckConstraint("outcome IN ('renewed', 'lapsed', 'other')", name="outcome_valid"),
    # A YES text is matched to the passes asking that number.
    Index("ix_permission_pass_members_point", "point_key"),
)

# -- policy notices: telling people a policy changed, and who accepted the new version ----------

policy_notices = Table(
    "policy_notices",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("document_id", Uuid, ForeignKey("policy_documents.id"), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("ask_acceptance", Boolean, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_by", String(200), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Index("ix_policy_notices_document", "tenant_id", "document_id", "created_at"),
    Index("ix_policy_notices_status", "status"),
    CheckConstraint("status IN ('sending', 'done')", name="status_valid"),
    _one_of("channel", Channel),
)

# One row per contact point told; the acceptance evidence (page URL, IP address, user agent) is
# sealed under the tenant's key.
policy_notice_recipients = Table(
    "policy_notice_recipients",
    metadata,
    Column("notice_id", Uuid, ForeignKey("policy_notices.id"), primary_key=True),
    Column("contact_id", Uuid, ForeignKey("contacts.id"), primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("point_key", LargeBinary(16)),  # NULL: no address on the notice's channel
    Column("status", String(16), nullable=False),
    Column("reason", String(64)),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", UTCDateTime),
    Column("lease_owner", String(100)),
    Column("lease_until", UTCDateTime),
    Column("message_id", String(255)),
    Column("sent_at", UTCDateTime),
    Column("accepted_at", UTCDateTime),
    Column("acceptance_enc", LargeBinary),
    Column("updated_at", UTCDateTime, nullable=False),
    Index("ix_policy_notice_recipients_due", "status", "next_attempt_at"),
    Index("ix_policy_notice_recipients_contact", "tenant_id", "contact_id"),
    CheckConstraint(
        "status IN ('queued', 'sending', 'sent', 'refused', 'failed', 'accepted')",
        name="status_valid",
    ),
)

# A tenant's own SMS and WhatsApp keywords and reply texts, added to the deployment's (JSON in
# the keywords-file format, domain/keywords.extend_keywords).
tenant_keywords = Table(
    "tenant_keywords",
    metadata,
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), primary_key=True),
    Column("config", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(200)),
)
