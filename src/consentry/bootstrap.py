"""The composition root: settings in, a container of engine, keys and units of work out."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine

from consentry.channels.capture import CaptureChannel
from consentry.channels.ratelimit import LocalRateLimiter, RedisRateLimiter
from consentry.channels.sendgrid_events import SendGridEvents
from consentry.channels.smtp import SmtpChannel, SmtpRelay
from consentry.channels.twilio_sms import TwilioSmsChannel
from consentry.channels.whatsapp_cloud import WhatsAppCloudChannel
from consentry.config import Settings
from consentry.domain.delivery import OutboundMessage
from consentry.domain.errors import ConfigurationError, InvalidInput, KeyUnavailable
from consentry.domain.keywords import (
    DEFAULT_KEYWORDS,
    KeywordLists,
    KeywordReplyTexts,
    extend_keywords,
)
from consentry.domain.model import Channel
from consentry.persistence.access import CachedKeys
from consentry.persistence.crypto import (
    FileKeyRing,
    create_key_file,
    keyring_from_secrets,
    load_key_file,
)
from consentry.persistence.deliveries import PlanSplit
from consentry.persistence.engine import make_engine
from consentry.persistence.migrate import upgrade
from consentry.persistence.outbox import SqlOutbox
from consentry.persistence.refcache import ReferenceCache
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.clock import utcnow
from consentry.services.compose.confirmation import CONFIRMATION_PURPOSE, ConfirmationTokens
from consentry.services.compose.notice import NOTICE_PURPOSE, NoticeTokens
from consentry.services.compose.reconfirmation import (
    RECONFIRMATION_PURPOSE,
    ReconfirmationTokens,
)
from consentry.services.compose.tokens import UnsubscribeTokens
from consentry.services.confirmations import ConfirmationConfig, Confirmers, ResendLimits
from consentry.services.courtesy_signing import CourtesyLog, DomainSigners, signing_email
from consentry.services.dispatch import DispatchConfig, Dispatcher, RateLimiter
from consentry.services.form_tokens import FORM_TOKEN_PURPOSE, FormTokens
from consentry.services.notice_sending import NoticeSendConfig, NoticeSender
from consentry.services.outbound import TOKEN_PURPOSE, OutboundComposer, OutboundConfig
from consentry.services.ports import ChannelAdapter
from consentry.services.signals import SignalPolicy

# A write on a server's event loop waits this long for a row lock before it is rolled back and
# run again on a worker thread (web.deps.run_write); its tenant's writes then use threads for
# CONTENDED_SECONDS. A chain row is held for one round trip and a commit (about a millisecond);
# an import holds it batch by batch.
INLINE_LOCK_TIMEOUT_MS = 50
CONTENDED_SECONDS = 10.0


@dataclass
class Container:
    settings: Settings
    engine: Engine
    keys: FileKeyRing

    _composer: OutboundComposer | None = field(default=None, repr=False)
    _twilio: TwilioSmsChannel | None = field(default=None, repr=False)
    _whatsapp: WhatsAppCloudChannel | None = field(default=None, repr=False)
    _sendgrid: SendGridEvents | None = field(default=None, repr=False)
    _keywords: Mapping[str, KeywordLists] | None = field(default=None, repr=False)
    _resend_limits: ResendLimits | None = field(default=None, repr=False)
    _domain_signers: DomainSigners | None = field(default=None, repr=False)
    # Topics for everyone; API keys and tenants once a server starts listening for changes.
    refs: ReferenceCache = field(default_factory=ReferenceCache, repr=False)
    _inline_engine: Engine | None = field(default=None, repr=False)
    # Tenants whose writes recently waited too long for a lock on the event loop, until when.
    _contended: dict[object, float] = field(default_factory=dict, repr=False)

    def uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(
            self.engine,
            self.keys,
            refs=self.refs,
            import_helpers=self.settings.import_helpers,
            plan_split=PlanSplit(parts=self.settings.planning_connections),
        )

    def read_uow(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.keys, read_only=True, refs=self.refs)

    def inline_uow(self) -> SqlUnitOfWork:
        """A unit of work for a write run on a server's event loop (PostgreSQL only): its
        connections give up a lock wait after ``INLINE_LOCK_TIMEOUT_MS`` (``lock_timed_out``)
        rather than stop the whole process behind, say, an import holding the tenant's chain.
        One write at a time runs on a loop, so the pool is small."""
        if self._inline_engine is None:
            self._inline_engine = make_engine(
                self.settings.resolved_database_url,
                echo=self.settings.sql_echo,
                lock_timeout_ms=INLINE_LOCK_TIMEOUT_MS,
                pool_size=2,
                max_overflow=2,
            )
        return SqlUnitOfWork(self._inline_engine, self.keys, refs=self.refs)

    def contended(self, key: object, now: float) -> bool:
        """Whether writes for ``key`` (a tenant) waited too long for a lock inline lately."""
        until = self._contended.get(key)
        if until is None:
            return False
        if now < until:
            return True
        del self._contended[key]
        return False

    def note_contended(self, key: object, now: float) -> None:
        self._contended[key] = now + CONTENDED_SECONDS

    def kept_keys(self) -> CachedKeys:
        """The API keys this process keeps, checked without a connection."""
        return CachedKeys(self.refs)

    def outbox(self) -> SqlOutbox:
        return SqlOutbox(self.engine, self.keys)

    def composer(self) -> OutboundComposer:
        if self._composer is None:
            self._composer = OutboundComposer(self.keys, outbound_config(self.settings), utcnow)
        return self._composer

    def unsubscribe_tokens(self) -> UnsubscribeTokens:
        """Reads (and mints) the tokens in unsubscribe and preference links."""
        return UnsubscribeTokens(self.keys.derive(TOKEN_PURPOSE))

    def confirmation_tokens(self) -> ConfirmationTokens:
        """Mints and reads the tokens of confirmed opt-in links (a key of their own)."""
        lifetime = timedelta(days=self.settings.confirmation_lifetime_days)
        return ConfirmationTokens(self.keys.derive(CONFIRMATION_PURPOSE), lifetime=lifetime)

    def form_tokens(self) -> FormTokens:
        """Mints and checks the tokens of subscription forms (a key of their own)."""
        s = self.settings
        return FormTokens(
            self.keys.derive(FORM_TOKEN_PURPOSE),
            min_age=timedelta(seconds=s.form_min_seconds),
            max_age=timedelta(hours=s.form_max_age_hours),
        )

    def confirmers(self) -> Confirmers:
        """What sending confirmation requests needs, for the public forms."""
        return Confirmers(
            self.confirmation_tokens(),
            self.confirmation_config(),
            self.resend_limits(),
            self.send_now,
        )

    def reconfirmation_tokens(self) -> ReconfirmationTokens:
        """Reads the tokens of permission-pass links (a key of their own)."""
        return ReconfirmationTokens(self.keys.derive(RECONFIRMATION_PURPOSE))

    def notice_tokens(self) -> NoticeTokens:
        """Mints and reads the tokens of policy-notice acceptance links (a key of their own)."""
        return NoticeTokens(self.keys.derive(NOTICE_PURPOSE))

    def courtesy_adapters(self) -> dict[Channel, ChannelAdapter]:
        """The configured channels for messages sent outside campaigns: email is DKIM-signed
        with the key of the tenant's sender domain, as campaign messages are."""
        if self._domain_signers is None:
            self._domain_signers = DomainSigners(self.read_uow)
        adapters = build_adapters(self.settings, self.outbox())
        return signing_email(adapters, self._domain_signers, CourtesyLog(self.uow))

    def notice_sender(self) -> NoticeSender:
        """A sender of queued policy notices with the configured channels; close it when done."""
        s = self.settings
        config = NoticeSendConfig(public_base_url=s.public_base_url, sms_sender=s.sms_sender)
        return NoticeSender(
            self.uow,
            self.read_uow,
            self.courtesy_adapters(),
            self.notice_tokens(),
            config,
            clock=utcnow,
            limiter=build_limiter(s),
        )

    def confirmation_config(self) -> ConfirmationConfig:
        s = self.settings
        return ConfirmationConfig(
            public_base_url=s.public_base_url,
            sms_sender=s.sms_sender,
            sms_frequency=s.sms_frequency,
            sms_help_contact=s.sms_help_contact,
            resend_interval=timedelta(seconds=s.confirmation_resend_seconds),
        )

    def resend_limits(self) -> ResendLimits:
        """Confirmation requests sent by this process, per address and topic."""
        if self._resend_limits is None:
            interval = timedelta(seconds=self.settings.confirmation_resend_seconds)
            self._resend_limits = ResendLimits(interval)
        return self._resend_limits

    @contextmanager
    def sender(self) -> Iterator[Callable[[OutboundMessage], None]]:
        """Send many messages outside any campaign through channels built once."""
        adapters = self.courtesy_adapters()

        def send(message: OutboundMessage) -> None:
            adapters[message.channel].send(message)

        try:
            yield send
        finally:
            for adapter in adapters.values():
                adapter.close()

    def send_now(self, message: OutboundMessage) -> None:
        """Send one message outside any campaign (confirmation requests) through the
        configured channel."""
        with self.sender() as send:
            send(message)

    def twilio_webhooks(self) -> TwilioSmsChannel | None:
        """The Twilio adapter that verifies and reads Twilio's webhooks, when its credentials
        are set (whether or not SMS is sent through Twilio); None otherwise."""
        s = self.settings
        if not s.twilio_account_sid or s.twilio_auth_token is None:
            return None
        if self._twilio is None:
            self._twilio = TwilioSmsChannel(
                s.twilio_account_sid, s.twilio_auth_token.get_secret_value(), s.twilio_base_url
            )
        return self._twilio

    def whatsapp_webhooks(self) -> WhatsAppCloudChannel | None:
        """The Cloud API adapter that verifies and reads Meta's webhooks, when the app secret
        is set; None otherwise."""
        s = self.settings
        if s.whatsapp_app_secret is None:
            return None
        if self._whatsapp is None:
            token = s.whatsapp_access_token.get_secret_value() if s.whatsapp_access_token else ""
            self._whatsapp = WhatsAppCloudChannel(
                token, s.whatsapp_app_secret.get_secret_value(), s.whatsapp_base_url
            )
        return self._whatsapp

    def sendgrid_webhooks(self) -> SendGridEvents | None:
        """Verifies and reads SendGrid's Event Webhook, when its verification key is set."""
        key = self.settings.sendgrid_webhook_public_key
        if not key:
            return None
        if self._sendgrid is None:
            self._sendgrid = SendGridEvents(key)
        return self._sendgrid

    def keyword_lists(self) -> Mapping[str, KeywordLists]:
        """The SMS and WhatsApp keywords understood: every default language, plus the words
        and replies of ``CONSENTRY_SMS_KEYWORDS_FILE``."""
        if self._keywords is None:
            self._keywords = load_keywords(self.settings.sms_keywords_file)
        return self._keywords

    def signal_policy(self) -> SignalPolicy:
        s = self.settings
        replies = KeywordReplyTexts(
            support_contact=s.sms_help_contact,
            frequency=s.sms_frequency,
            lists=self.keyword_lists(),
        )
        return SignalPolicy(
            replies=replies,
            keyword_lists=self.keyword_lists(),
            brand=s.sms_brand,
            soft_bounce_limit=s.soft_bounce_limit,
            confirmation_lifetime=timedelta(days=s.confirmation_lifetime_days),
            sms_frequency=s.sms_frequency,
        )

    def dispatcher(self, *, worker_id: str | None = None) -> Dispatcher:
        """A dispatcher with the configured channels; close it when done."""
        s = self.settings
        config = DispatchConfig(
            batch_size=s.delivery_batch_size,
            window=s.delivery_window,
            lease=timedelta(seconds=s.delivery_lease_seconds),
        )
        if worker_id is not None:
            config = DispatchConfig(config.batch_size, config.window, config.lease, worker_id)
        return Dispatcher(
            self.uow,
            self.read_uow,
            build_adapters(s, self.outbox()),
            self.composer(),
            clock=utcnow,
            config=config,
            limiter=build_limiter(s),
        )

    def close(self) -> None:
        self.refs.stop()
        if self._inline_engine is not None:
            self._inline_engine.dispose()
        self.engine.dispose()


def outbound_config(settings: Settings) -> OutboundConfig:
    names = frozenset(n.strip() for n in settings.whatsapp_templates.split(",") if n.strip())
    return OutboundConfig(
        public_base_url=settings.public_base_url,
        sms_sender=settings.sms_sender,
        whatsapp_phone_number_id=settings.whatsapp_phone_number_id or "capture",
        unsubscribe_mailbox=settings.unsubscribe_mailbox,
        whatsapp_templates=names or None,
    )


_SMTP_SCHEMES = {"smtp": ("none", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}


def smtp_relays(settings: Settings) -> list[SmtpRelay]:
    """CONSENTRY_SMTP_URLS: smtp://host:25, smtp+starttls://user:pass@host:587, smtps://..."""
    relays = []
    for url in (u.strip() for u in settings.smtp_urls.split(",") if u.strip()):
        parts = urlsplit(url)
        if parts.scheme not in _SMTP_SCHEMES or not parts.hostname:
            raise ConfigurationError(f"CONSENTRY_SMTP_URLS: cannot use {parts.scheme}:// URLs")
        security, port = _SMTP_SCHEMES[parts.scheme]
        relays.append(
            SmtpRelay(
                host=parts.hostname,
                port=parts.port or port,
                security=security,  # type: ignore[arg-type]
                username=unquote(parts.username) if parts.username else None,
                password=unquote(parts.password) if parts.password else None,
                max_connections=settings.smtp_connections,
            )
        )
    return relays


def build_adapters(settings: Settings, outbox: SqlOutbox) -> dict[Channel, ChannelAdapter]:
    """The channel adapters the settings name; ``capture`` (the embedded outbox) by default."""
    adapters: dict[Channel, ChannelAdapter] = {
        c: CaptureChannel(c, outbox, utcnow) for c in (Channel.EMAIL, Channel.SMS, Channel.WHATSAPP)
    }
    if settings.email_channel == "smtp":
        relays = smtp_relays(settings)
        if not relays:
            raise ConfigurationError("CONSENTRY_EMAIL_CHANNEL=smtp needs CONSENTRY_SMTP_URLS")
        adapters[Channel.EMAIL] = SmtpChannel(relays)
    elif settings.email_channel != "capture":
        raise ConfigurationError("CONSENTRY_EMAIL_CHANNEL is 'capture' or 'smtp'")
    if settings.sms_channel == "twilio":
        if not settings.twilio_account_sid or settings.twilio_auth_token is None:
            raise ConfigurationError("the twilio SMS channel needs CONSENTRY_TWILIO_ACCOUNT_SID "
                                     "and CONSENTRY_TWILIO_AUTH_TOKEN")  # fmt: skip
        adapters[Channel.SMS] = TwilioSmsChannel(
            settings.twilio_account_sid,
            settings.twilio_auth_token.get_secret_value(),
            settings.twilio_base_url,
            connections=settings.provider_connections,
        )
    elif settings.sms_channel != "capture":
        raise ConfigurationError("CONSENTRY_SMS_CHANNEL is 'capture' or 'twilio'")
    if settings.whatsapp_channel == "cloud":
        if settings.whatsapp_access_token is None or settings.whatsapp_app_secret is None:
            raise ConfigurationError("the WhatsApp Cloud channel needs an access token and "
                                     "an app secret")  # fmt: skip
        adapters[Channel.WHATSAPP] = WhatsAppCloudChannel(
            settings.whatsapp_access_token.get_secret_value(),
            settings.whatsapp_app_secret.get_secret_value(),
            settings.whatsapp_base_url,
            connections=settings.provider_connections,
        )
    elif settings.whatsapp_channel != "capture":
        raise ConfigurationError("CONSENTRY_WHATSAPP_CHANNEL is 'capture' or 'cloud'")
    return adapters


def load_keywords(path: Path | None) -> Mapping[str, KeywordLists]:
    """The default keywords extended by a JSON keywords file; ConfigurationError if unusable."""
    if path is None:
        return DEFAULT_KEYWORDS
    where = f"CONSENTRY_SMS_KEYWORDS_FILE {path}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{where}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"{where}: one object keyed by language code")
    try:
        return extend_keywords(data)
    except InvalidInput as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


def build_limiter(settings: Settings) -> RateLimiter | None:
    """Send-rate limits per tenant and channel, shared through Redis when it is configured."""
    if settings.send_rate_per_second <= 0:
        return None
    if settings.redis_url:
        return RedisRateLimiter(settings.redis_url, settings.send_rate_per_second)
    return LocalRateLimiter(settings.send_rate_per_second)


def initialise(settings: Settings) -> bool:
    """Create the data directory and key file when missing; True if a key file was created."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.master_key is not None:
        return False
    key_file = settings.resolved_key_file
    if key_file.exists():
        return False
    create_key_file(key_file)
    return True


def load_keys(settings: Settings) -> FileKeyRing:
    if settings.master_key is not None:
        if settings.index_key is None:
            raise KeyUnavailable("CONSENTRY_INDEX_KEY must be set with CONSENTRY_MASTER_KEY")
        return keyring_from_secrets(
            settings.master_key.get_secret_value(), settings.index_key.get_secret_value()
        )
    return load_key_file(settings.resolved_key_file)


def bootstrap(settings: Settings, *, migrate: bool = True, create_keys: bool = False) -> Container:
    """Compose consentry for ``settings``; migrates the database to head unless told not to."""
    if create_keys:
        initialise(settings)
    engine = make_engine(settings.resolved_database_url, echo=settings.sql_echo)
    if migrate:
        upgrade(engine)
    return Container(settings=settings, engine=engine, keys=load_keys(settings))
