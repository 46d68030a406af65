"""Typed settings, read from ``CONSENTRY_*`` environment variables at the edge and passed down."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything consentry can be configured with. Build one in an entrypoint; never at import."""

    model_config = SettingsConfigDict(env_prefix="CONSENTRY_", extra="ignore")

    data_dir: Path = Field(
        default=Path("consentry-data"),
        description="Directory for the embedded SQLite database, the key file and captured mail.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to SQLite in the data directory. PostgreSQL: "
        "postgresql+psycopg://user@host/db.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 master key (32 bytes) wrapping per-tenant data keys; when unset, the "
        "key file in the data directory is used.",
    )
    index_key: SecretStr | None = Field(
        default=None,
        description="Base64 key (32 bytes) for blind indexes and keyed digests; required with "
        "master_key.",
    )
    key_file: Path | None = Field(
        default=None,
        description="Path of the key file; defaults to keys.json in the data directory.",
    )
    sql_echo: bool = Field(default=False, description="Log every SQL statement (no parameters).")
    api_max_body_bytes: int = Field(
        default=1_048_576, ge=1024, description="Largest request body the API accepts."
    )
    import_max_bytes: int = Field(
        default=104_857_600,
        ge=1024,
        description="Largest contact list file an import accepts (CLI and API upload).",
    )
    import_helpers: int = Field(
        default=3,
        ge=0,
        le=32,
        description="Most helper processes a large import on PostgreSQL prepares its rows in "
        "(one a core, at most this many; 0: none, the rows are prepared on a thread of the "
        "importing process).",
    )
    planning_connections: int = Field(
        default=2,
        ge=1,
        le=32,
        description="Most PostgreSQL connections a large campaign (200,000 recipients or more) "
        "is planned on at once, each a part of its audience (about one per core of the "
        "database server; 1: one statement).",
    )
    http_threads: int = Field(
        default=10,
        ge=1,
        le=200,
        description="Worker threads per server process for requests that touch the database. "
        "More threads than database connections only queue on the pool, and many threads "
        "contending for one interpreter lengthen every transaction, row locks included.",
    )
    http_inline: bool = Field(
        default=True,
        description="On PostgreSQL, check API keys, answer decisions and run the writes of "
        "consent events, unsubscribes, Twilio webhooks and form posts on each server process's "
        "event loop instead of handing each to a worker thread and back: about a fifth less "
        "CPU a request with the database nearby. Each process then answers one such request "
        "at a time, so with a distant database (milliseconds a round trip) turn it off or run "
        "more processes. A write that waits more than 50 ms for a lock (an import holding its "
        "tenant's ledger) is rolled back and run on a worker thread.",
    )
    http_cache: bool = Field(
        default=True,
        description="On PostgreSQL, each server process keeps the API keys and tenants it has "
        "read and listens for changes to them (LISTEN/NOTIFY on its own connection): a "
        "revoked key, a suspension or an edited profile is read anew as soon as its "
        "notification arrives, moments after the change commits. Off: "
        "both are read from the database on every request. Topics, which never change, are "
        "kept either way.",
    )
    audit_seal_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="How often each server process chains the audit entries written since "
        "(until then an entry is stored but not yet covered by the hash chain).",
    )
    api_rate_per_second: float = Field(
        default=200.0, gt=0, description="Sustained requests per second per API key or address."
    )
    api_rate_burst: int = Field(default=400, ge=1, description="Burst size for that limit.")
    auth_rate_per_second: float = Field(
        default=1.0, gt=0, description="Sign-in attempts per second per address."
    )
    auth_rate_burst: int = Field(default=10, ge=1, description="Burst size for sign-in attempts.")

    public_base_url: str = Field(
        default="https://localhost:8000",
        description="Public https base URL of the web app: unsubscribe and preference links "
        "in messages point here (one-click unsubscribe needs https, RFC 8058).",
    )
    unsubscribe_mailbox: str | None = Field(
        default=None,
        description="Mailbox (local@domain) for mailto unsubscribe requests; the token goes in "
        "the local part after a '+'. Defaults to unsubscribe@<the sender's domain>.",
    )
    email_channel: str = Field(
        default="capture",
        description="'capture' keeps email in the database outbox; 'smtp' sends through "
        "CONSENTRY_SMTP_URLS.",
    )
    smtp_urls: str = Field(
        default="",
        description="Comma-separated relays, tried in order: smtp://user:pass@host:25 "
        "(STARTTLS when offered is not assumed: use smtp+starttls://), smtps://host:465.",
    )
    smtp_connections: int = Field(default=8, ge=1, le=64, description="Connections per relay.")
    provider_connections: int = Field(
        default=32,
        ge=1,
        le=256,
        description="HTTP connections to each SMS and WhatsApp provider per worker process: "
        "as many messages as this go out at once, each on a thread of its own.",
    )
    sms_channel: str = Field(
        default="capture", description="'capture' or 'twilio' (CONSENTRY_TWILIO_*)."
    )
    twilio_account_sid: str | None = Field(default=None, description="Twilio account SID.")
    twilio_auth_token: SecretStr | None = Field(default=None, description="Twilio auth token.")
    twilio_base_url: str = Field(
        default="https://api.twilio.com", description="Twilio API base URL."
    )
    sms_sender: str = Field(
        default="+15005550006",
        description="Sender number, short code or Messaging Service SID (MG...) for SMS.",
    )
    whatsapp_channel: str = Field(
        default="capture", description="'capture' or 'cloud' (CONSENTRY_WHATSAPP_*)."
    )
    whatsapp_access_token: SecretStr | None = Field(
        default=None, description="WhatsApp Cloud API access token."
    )
    whatsapp_app_secret: SecretStr | None = Field(
        default=None, description="App secret that signs WhatsApp webhooks."
    )
    whatsapp_base_url: str = Field(
        default="https://graph.facebook.com", description="WhatsApp Cloud API base URL."
    )
    whatsapp_business_number: str | None = Field(
        default=None,
        description="The WhatsApp business number in international form (+447911123456): "
        "subscription forms offer click-to-chat links to it for their WhatsApp boxes.",
    )
    whatsapp_phone_number_id: str = Field(
        default="", description="The sending business number's id at the WhatsApp Cloud API."
    )
    whatsapp_templates: str = Field(
        default="",
        description="Comma-separated approved WhatsApp template names; empty: not checked.",
    )
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (amqp://... or redis://...). Unset: deliveries are "
        "dispatched in-process.",
    )
    celery_queue: str = Field(
        default="celery",
        min_length=1,
        description="The broker queue tasks go to and workers consume, so that several "
        "installations can share one broker.",
    )
    redis_url: str | None = Field(
        default=None,
        description="Redis for limits shared between processes: provider and per-tenant send "
        "rates (workers) and the API's request rate limits (server processes).",
    )
    send_rate_per_second: float = Field(
        default=0.0,
        ge=0,
        description="Messages per second per tenant and channel across all workers (0: no limit).",
    )
    delivery_batch_size: int = Field(
        default=500, ge=1, le=10_000, description="Deliveries a worker claims at a time."
    )
    delivery_window: int = Field(
        default=256,
        ge=1,
        le=1_000,
        description="Messages in flight at once per worker: each window is checked by the gate, "
        "marked as sending, handed to the channel, and recorded. A worker that dies leaves at "
        "most one window in flight (its marketing messages are never re-sent).",
    )
    delivery_lease_seconds: float = Field(
        default=120.0,
        gt=0,
        description="How long a claimed batch belongs to its worker; a worker that dies "
        "loses it after this long.",
    )
    whatsapp_verify_token: SecretStr | None = Field(
        default=None,
        description="The token Meta echoes in the webhook subscription handshake.",
    )
    sendgrid_webhook_public_key: str | None = Field(
        default=None,
        description="The Event Webhook verification key SendGrid shows (base64 DER or PEM): "
        "bounce and spam-report events are accepted at /webhooks/sendgrid when it is set.",
    )
    sms_keywords_file: Path | None = Field(
        default=None,
        description="A JSON file of extra SMS keywords and reply texts per language, added to "
        "the defaults (see docs/signals.md).",
    )
    sms_brand: str = Field(
        default="consentry",
        description="The name keyword replies give on the shared SMS number when the person "
        "is known to several tenants (else the tenant's own name).",
    )
    sms_help_contact: str = Field(
        default="",
        description="Support contact named in HELP replies (an email address or phone number).",
    )
    sms_frequency: str = Field(
        default="Message frequency varies.",
        description="The frequency stated in the opt-in confirmation.",
    )
    confirmation_lifetime_days: int = Field(
        default=7,
        ge=1,
        le=90,
        description="Days a confirmed opt-in request (email link or SMS YES) can be confirmed; "
        "after that it lapses (consentry consent lapse-pending).",
    )
    confirmation_resend_seconds: int = Field(
        default=300,
        ge=0,
        description="Least time between two confirmation requests to one address for one topic.",
    )
    form_min_seconds: float = Field(
        default=2.0,
        ge=0,
        le=60,
        description="Least time between showing a hosted subscription form and taking it back: "
        "faster than a person can fill it in is refused as a bot.",
    )
    form_max_age_hours: int = Field(
        default=24, ge=1, le=720, description="How long a shown subscription form may be sent."
    )
    form_posts_per_minute: float = Field(
        default=10.0,
        gt=0,
        description="Subscription form submissions per minute per client address (burst of "
        "the same size); more are refused with 429 and Retry-After.",
    )
    soft_bounce_limit: int = Field(
        default=3, ge=1, le=100, description="Soft bounces in a row that suppress an address."
    )
    inbound_smtp_host: str = Field(
        default="127.0.0.1", description="Where `consentry inbound-smtp` listens."
    )
    inbound_smtp_port: int = Field(default=2525, ge=1, le=65535, description="Its port.")
    inbound_max_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1024,
        description="The largest bounce, complaint or unsubscribe mail accepted.",
    )

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+pysqlite:///{(self.data_dir / 'consentry.db').resolve()}"

    @property
    def resolved_key_file(self) -> Path:
        return self.key_file or self.data_dir / "keys.json"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
