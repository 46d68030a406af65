"""One pipeline for every signal in: verify → de-duplicate → parse → apply → keep the raw payload.

Verification and parsing happen at the edge (the webhook routes and the inbound SMTP server hold
the secrets and the adapters); ``ingest`` takes what they parsed, with the raw payload, and in one
transaction:

1. records the payload under its (source, event id): a replay finds the row already there (a
   unique constraint, not a check-then-insert) and applies nothing;
2. applies each signal: suppressions (taking the opt-out fence first, so that no message to the
   address leaves after the commit), delivery states, complaint cases, soft-bounce streaks,
   tenant alerts, the WhatsApp service window;
3. settles the event with what was done, in words without personal data.

Whom a report is about is decided conservatively. A bounce or complaint acts only when it can be
tied to a message consentry sent (its Message-ID, or the VERP return path that carries it); an
unattributable report is kept as ``unattributed`` and changes nothing, so a forged report cannot
suppress arbitrary addresses. Keywords sent to the platform's shared numbers apply platform-wide,
as carriers apply STOP to the sending number whoever the sender was.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from consentry.domain.delivery import DeliveryStatus, ProviderEvent, ProviderSignal
from consentry.domain.errors import InvalidInput
from consentry.domain.ids import new_id
from consentry.domain.keywords import KeywordLists, classify
from consentry.domain.model import Channel, PointKind, point_index_value
from consentry.domain.signals import (
    SUPPRESSING_FEEDBACK,
    Block,
    Bounce,
    BounceKind,
    ButtonOptOut,
    ChatOptIn,
    Complaint,
    ComplaintCase,
    FeedbackType,
    InboundMessage,
    Keyword,
    KeywordKind,
    MailtoUnsubscribe,
    ParsedInput,
    SentDelivery,
    Signal,
    SignalSource,
    Unrecognised,
)
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.services.addresses import normalize_email, normalize_phone
from consentry.services.chat_opt_in import opt_in_by_chat
from consentry.services.clock import utcnow
from consentry.services.compose.confirmation import sms_disclosures
from consentry.services.confirming import confirm_by_reply
from consentry.services.ports import UnitOfWork
from consentry.services.tenant_keywords import lists_for as tenant_keyword_lists

log = logging.getLogger(__name__)

KEYWORD_SOURCE = "keyword"  # suppressions a START may lift carry this source prefix
# Keywords answered on their own channel: SMS in the webhook's TwiML, WhatsApp by the Cloud API
# inside the service window the person's message has just opened.
REPLYING = frozenset({Channel.SMS, Channel.WHATSAPP})
_MESSAGE_ID = re.compile(r"<?\s*([^<>\s@]+@[^<>\s]+)\s*>?")
_VERP = re.compile(r"^[^+@]+\+(?P<left>[^@]+)@(?P<domain>.+)$")
_EMAILISH = re.compile(r"\S+@\S+")


class KeywordReplies(Protocol):
    """The texts answered to SMS keywords (domain/keywords.py renders them), in the language
    whose keyword list matched (None: the default language)."""

    def opt_out(self, brand: str, language: str | None = None) -> str: ...
    def opt_in(self, brand: str, language: str | None = None) -> str: ...
    def help(self, brand: str, language: str | None = None) -> str: ...
    def with_lists(self, lists: Mapping[str, KeywordLists]) -> KeywordReplies:
        """The same replies, with a tenant's own texts where it has them."""
        ...


@dataclass(frozen=True, slots=True)
class SignalPolicy:
    """Settings of the pipeline (from ``Settings``, built by the composition root)."""

    replies: KeywordReplies | None = None
    keyword_lists: Mapping[str, KeywordLists] | None = None  # the deployment's (None: defaults)
    brand: str = "consentry"  # who answers on the shared numbers when the tenant is not known
    soft_bounce_limit: int = 3
    confirmation_lifetime: timedelta = timedelta(days=7)  # how long a YES can confirm
    sms_frequency: str = "Message frequency varies."  # stated again after a confirmation


@dataclass(slots=True)
class IngestResult:
    inbound_id: int | None
    duplicate: bool
    status: str  # applied, ignored, review, unattributed, duplicate
    applied: list[str] = field(default_factory=list)  # what changed, in words without PII
    notes: list[str] = field(default_factory=list)  # what was considered and left alone
    replies: list[str] = field(default_factory=list)  # texts to answer the person with
    mailto_tokens: list[str] = field(default_factory=list)  # applied by the unsubscribe service
    reply_to: str | None = None  # the person's number, for replies not carried by the answer
    tenant_id: uuid.UUID | None = None  # the one tenant the event concerned, if one


def message_id_from(value: str | None) -> str | None:
    """``left@right`` from a Message-ID header value or a bare id; None if there is none."""
    if not value:
        return None
    match = _MESSAGE_ID.search(value)
    return match.group(1) if match else None


def message_id_from_verp(return_path: str | None) -> str | None:
    """The Message-ID a VERP return path (``bounces+<left>@<domain>``) carries."""
    if not return_path:
        return None
    match = _VERP.match(return_path.strip().strip("<>"))
    return f"{match.group('left')}@{match.group('domain')}" if match else None


def ingest(
    uow: UnitOfWork,
    parsed: ParsedInput,
    payload: bytes,
    content_type: str,
    *,
    policy: SignalPolicy,
    now: datetime | None = None,
) -> IngestResult:
    """Record and apply one authentic inbound payload, once. Commits."""
    return ingest_many(uow, [(parsed, payload)], content_type, policy=policy, now=now)[0]


def ingest_many(
    uow: UnitOfWork,
    items: Sequence[tuple[ParsedInput, bytes]],
    content_type: str,
    *,
    policy: SignalPolicy,
    now: datetime | None = None,
) -> list[IngestResult]:
    """Record and apply the inputs of one delivery from a provider (a batch of events, each
    with its own payload) in one transaction: all of them or, on an error, none, so that the
    provider's retry finds nothing half-applied. Each is still recorded, and de-duplicated,
    under its own event id. Commits."""
    now = now or utcnow()
    with uow:
        results = [_record_and_apply(uow, parsed, payload, content_type, policy, now)
                   for parsed, payload in items]  # fmt: skip
        uow.commit()
    for result, (parsed, _) in zip(results, items, strict=True):
        if not result.duplicate:
            facts = {"inbound_id": result.inbound_id, "source": parsed.source.value}
            log.info("signal", extra=facts | {"status": result.status})
    return results


def _record_and_apply(  # noqa: PLR0917  (the pipeline's own helper)
    uow: UnitOfWork,
    parsed: ParsedInput,
    payload: bytes,
    content_type: str,
    policy: SignalPolicy,
    now: datetime,
) -> IngestResult:
    inbound_id = uow.signals.record(parsed.source, parsed.event_id, content_type, payload, now)
    if inbound_id is None:
        return IngestResult(None, duplicate=True, status="duplicate")
    applier = _Applier(uow, inbound_id, parsed.source, policy, parsed.received_at or now)
    applier.message_id = parsed.event_id
    for signal in parsed.signals:
        applier.apply(signal)
    result = applier.result()
    uow.signals.settle(
        inbound_id,
        status=result.status,
        tenant_id=applier.tenant_id(),
        kinds=",".join(sorted({type(s).__name__ for s in parsed.signals})),
        outcome="; ".join(result.applied + result.notes) or "nothing to apply",
    )
    return result


def ingest_provider_events(
    uow: UnitOfWork,
    source: SignalSource,
    events: Sequence[ProviderEvent],
    payload: bytes,
    *,
    content_type: str,
    now: datetime | None = None,
) -> list[IngestResult]:
    """Delivery reports from a provider webhook: each one recorded under its own event id (a
    Twilio callback carries one, a WhatsApp webhook may carry several) and applied once, all
    in one transaction."""
    now = now or utcnow()
    results = []
    with uow:
        for event in events:
            inbound_id = uow.signals.record(source, event.event_id, content_type, payload, now)
            if inbound_id is None:
                results.append(IngestResult(None, duplicate=True, status="duplicate"))
                continue
            applier = _Applier(uow, inbound_id, source, SignalPolicy(), event.occurred_at)
            applier.report(event)
            result = applier.result()
            uow.signals.settle(
                inbound_id,
                status=result.status,
                tenant_id=applier.tenant_id(),
                kinds="ProviderEvent",
                outcome="; ".join(result.applied + result.notes) or "nothing to apply",
            )
            results.append(result)
        uow.commit()
    return results


def keep_rejected(
    uow: UnitOfWork,
    source: SignalSource,
    payload: bytes,
    content_type: str,
    *,
    why: str,
    now: datetime | None = None,
) -> int | None:
    """Keep an authentic payload that could not be parsed, for inspection; nothing is applied.
    Its event id is the payload's SHA-256, so a resent copy is kept once."""
    now = now or utcnow()
    with uow:
        event_id = "sha256:" + hashlib.sha256(payload).hexdigest()
        inbound_id = uow.signals.record(source, event_id, content_type, payload, now)
        if inbound_id is not None:
            uow.signals.settle(
                inbound_id, status="rejected", tenant_id=None, kinds="", outcome=why[:500]
            )
        uow.commit()
    return inbound_id


class _Applier:
    """Applies the signals of one inbound event inside the caller's transaction."""

    def __init__(
        self,
        uow: UnitOfWork,
        inbound_id: int,
        source: SignalSource,
        policy: SignalPolicy,
        at: datetime,
    ) -> None:
        self.uow = uow
        self.inbound_id = inbound_id
        self.source = source
        self.policy = policy
        self.at = at
        self.applied: list[str] = []  # what changed
        self.notes: list[str] = []  # what was considered and left alone
        self.replies: list[str] = []
        self.mailto: list[str] = []
        self.tenants: set[uuid.UUID] = set()
        self.review = False
        self.unattributed = False
        self.message_id: str | None = None  # the provider's id of the inbound message
        self.reply_to: str | None = None
        self._owners: dict[tuple[Channel, bytes], uuid.UUID | None] = {}

    # -- bookkeeping ----------------------------------------------------------------------------

    def result(self) -> IngestResult:
        if self.review:
            status = "review"
        elif self.applied or self.replies or self.mailto:
            status = "applied"
        elif self.unattributed:
            status = "unattributed"
        else:
            status = "ignored"
        return IngestResult(
            self.inbound_id,
            duplicate=False,
            status=status,
            applied=self.applied,
            notes=self.notes,
            replies=self.replies,
            mailto_tokens=self.mailto,
            reply_to=self.reply_to,
            tenant_id=self.tenant_id(),
        )

    def tenant_id(self) -> uuid.UUID | None:
        return next(iter(self.tenants)) if len(self.tenants) == 1 else None

    def apply(self, signal: Signal) -> None:
        if isinstance(signal, Keyword):
            self.keyword(signal)
        elif isinstance(signal, ChatOptIn):
            self.chat_opt_in(signal)
        elif isinstance(signal, InboundMessage):
            self.inbound_message(signal)
        elif isinstance(signal, ButtonOptOut):
            self.button(signal)
        elif isinstance(signal, Block):
            self.block(signal)
        elif isinstance(signal, Bounce):
            self.bounce(signal)
        elif isinstance(signal, Complaint):
            self.complaint(signal)
        elif isinstance(signal, MailtoUnsubscribe):
            self.mailto.append(signal.token)
        elif isinstance(signal, Unrecognised):
            pass  # kept for inspection with its payload; nothing to apply

    # -- suppressions ----------------------------------------------------------------------------

    def suppress(  # noqa: PLR0917  (one call shape, used only inside this module)
        self,
        tenant_id: uuid.UUID | None,
        point_key: bytes,
        channel: Channel,
        reason: SuppressionReason,
        scope: SuppressionScope,
        source: str,
        note: str | None = None,
    ) -> bool:
        """Add a suppression unless the same one stands; True if it was added. Takes the opt-out
        fence first: messages to this address already past their final check finish first, and
        none leaves after the commit."""
        self.uow.fences.exclusive([point_key])
        standing = [
            s
            for s in self.uow.suppressions.active_for(tenant_id, point_key, channel)
            if s.reason is reason and s.scope is scope and s.tenant_id == tenant_id
        ]
        if standing:
            return False
        self.uow.suppressions.add(
            Suppression(
                id=new_id(),
                tenant_id=tenant_id,
                point_key=point_key,
                channel=channel,
                scope=scope,
                reason=reason,
                created_at=self.at,
                source=source,
                note=note,
                actor=f"signal:{self.inbound_id}",
            )
        )
        who = "platform-wide" if tenant_id is None else "for the tenant"
        self.applied.append(f"suppressed {channel.value} {scope.value} ({reason.value}) {who}")
        if tenant_id is not None:
            self.tenants.add(tenant_id)
        return True

    # -- keywords and WhatsApp -------------------------------------------------------------------

    def phone_key(self, number: str) -> bytes | None:
        try:
            e164, _ = normalize_phone(number, None)
        except InvalidInput:
            return None
        return self.uow.keys.blind_index(PointKind.PHONE, point_index_value(PointKind.PHONE, e164))

    def owner(self, channel: Channel, point_key: bytes) -> uuid.UUID | None:
        """The one tenant that knows the number on ``channel``, if only one does."""
        key = (channel, point_key)
        if key not in self._owners:
            tenants = {t for t, _ in self.uow.signals.contacts_with_point(channel, point_key)}
            self._owners[key] = tenants.pop() if len(tenants) == 1 else None
        return self._owners[key]

    def brand_for(self, channel: Channel, point_key: bytes) -> str:
        """The business that answers: the one that knows the number, else the platform."""
        tenant_id = self.owner(channel, point_key)
        if tenant_id is None:
            return self.policy.brand
        self.tenants.add(tenant_id)
        return self.uow.tenants.get(tenant_id).name

    def tenant_reading(self, k: Keyword, point_key: bytes) -> tuple[Keyword, KeywordReplies | None]:
        """The keyword as the tenant that knows the number reads it, with its own words and
        reply texts, when it has any (services/tenant_keywords.py); else as it came."""
        replies = self.policy.replies
        tenant_id = self.owner(k.channel, point_key)
        if tenant_id is None:
            return k, replies
        try:
            lists = tenant_keyword_lists(self.uow, tenant_id, self.policy.keyword_lists)
        except InvalidInput:
            log.warning("tenant keywords unusable", extra={"tenant": str(tenant_id)})
            return k, replies
        if lists is None:
            return k, replies
        if not k.by_provider:  # Twilio's own reading of STOP/START/HELP wins (it acts on it)
            kind, language = classify(k.text, lists)
            k = replace(k, kind=kind, language=language)
        return k, replies.with_lists(lists) if replies is not None else None

    def keyword(self, k: Keyword) -> None:
        self.reply_to = k.sender
        point_key = self.phone_key(k.sender)
        if point_key is None:
            self.notes.append("sender number not valid: nothing applied")
            return
        k, replies = self.tenant_reading(k, point_key)
        if k.kind is KeywordKind.OPT_OUT:
            added = self.suppress(
                None,
                point_key,
                k.channel,
                SuppressionReason.UNSUBSCRIBED,
                SuppressionScope.ALL,
                f"{KEYWORD_SOURCE}:{self.source.value}",
                note="opted out by keyword",
            )
            # One confirmation, on the first STOP only; it carries no marketing.
            if added and k.channel in REPLYING and replies is not None:
                self.replies.append(
                    replies.opt_out(self.brand_for(k.channel, point_key), k.language)
                )
            if not added:
                self.notes.append("already opted out by keyword")
        elif k.kind is KeywordKind.OPT_IN:
            self.confirm_pending(k, point_key)
            lifted = 0
            for s in self.uow.suppressions.active_for(None, point_key, k.channel):
                if (
                    s.tenant_id is None
                    and s.reason is SuppressionReason.UNSUBSCRIBED
                    and (s.source or "").startswith(KEYWORD_SOURCE)
                ):
                    self.uow.suppressions.lift(s.id, self.at, f"signal:{self.inbound_id}")
                    lifted += 1
            if lifted:
                # Keyword-scoped messaging resumes; marketing still needs consent the person
                # gave before the stop, or a new affirmative act (the gate checks it).
                self.applied.append(f"lifted {lifted} keyword opt-out(s) on {k.channel.value}")
                if k.channel in REPLYING and replies is not None:
                    self.replies.append(
                        replies.opt_in(self.brand_for(k.channel, point_key), k.language)
                    )
        elif k.kind is KeywordKind.HELP:
            if k.channel in REPLYING and replies is not None:
                brand = self.brand_for(k.channel, point_key)
                self.replies.append(replies.help(brand, k.language))
        elif k.kind is KeywordKind.REFUSAL_LIKE:
            self.review = True
            self.applied.append("looks like a refusal but matches no keyword: queued for review")
            for tenant_id, _ in self.uow.signals.contacts_with_point(k.channel, point_key):
                self.uow.signals.alert(
                    tenant_id,
                    "refusal_review",
                    f"a {k.channel.value} reply that reads like a refusal awaits review "
                    f"(inbound event {self.inbound_id})",
                    self.inbound_id,
                    self.at,
                )

    def confirm_pending(self, k: Keyword, point_key: bytes) -> None:
        """YES to a double opt-in request confirms it (evidence: the keyword and this inbound
        message); the reply repeats the program's disclosures, as the first message after the
        confirmation must (CTIA Messaging Principles)."""
        if k.channel is not Channel.SMS:
            return
        confirmed = confirm_by_reply(
            self.uow,
            point_key,
            self.message_id or f"inbound:{self.inbound_id}",
            lifetime=self.policy.confirmation_lifetime,
            now=self.at,
        )
        for tenant, topic in confirmed:
            self.tenants.add(tenant.id)
            self.applied.append(f"confirmed the sms double opt-in for topic {topic.key}")
            self.replies.append(sms_disclosures(tenant.name, topic.name, self.policy.sms_frequency))

    def chat_opt_in(self, c: ChatOptIn) -> None:
        """A click-to-chat message asking a named business for a topic on WhatsApp."""
        done = opt_in_by_chat(self.uow, c, self.message_id or f"inbound:{self.inbound_id}", self.at)
        if done is None:
            self.notes.append("click-to-chat reference names no business or topic: nothing applied")
            return
        self.tenants.add(done.tenant.id)
        self.reply_to = c.sender
        business = done.tenant.profile.legal_name or done.tenant.name
        # The first message after the opt-in names the business and the way out.
        self.replies.append(
            f"{business}: you are subscribed to {done.topic.name} on WhatsApp. "
            "Reply STOP to opt out."
        )
        action = done.event.action.value
        self.applied.append(f"whatsapp opt-in to {done.topic.key} by click-to-chat ({action})")

    def inbound_message(self, m: InboundMessage) -> None:
        if m.channel is not Channel.WHATSAPP:
            return
        point_key = self.phone_key(m.sender)
        if point_key is None:
            return
        opened = self.uow.signals.open_service_window(point_key, m.at)
        if opened:
            self.applied.append(f"service window opened for {opened} contact(s)")

    def button(self, b: ButtonOptOut) -> None:
        point_key = self.phone_key(b.sender)
        if point_key is None:
            return
        added = self.suppress(
            None,
            point_key,
            Channel.WHATSAPP,
            SuppressionReason.UNSUBSCRIBED,
            SuppressionScope.MARKETING,
            f"whatsapp:button:{b.payload[:40]}",
            note="marketing opt-out button",
        )
        if not added:
            self.notes.append("already opted out of WhatsApp marketing")

    def block(self, b: Block) -> None:
        point_key = self.phone_key(b.sender)
        if point_key is None:
            return
        self.suppress(
            None,
            point_key,
            Channel.WHATSAPP,
            SuppressionReason.BLOCKED,
            SuppressionScope.ALL,
            "whatsapp:report" if b.reported else "whatsapp:block",
            note="the person reported the business" if b.reported else "the person blocked",
        )
        if b.reported:
            contacts = self.uow.signals.contacts_with_point(Channel.WHATSAPP, point_key)
            latest = self.uow.signals.latest_sent_to([c for _, c in contacts], Channel.WHATSAPP)
            if latest is None:
                self.unattributed = True
                self.notes.append("report not attributable to a message we sent")
                return
            self.open_case(latest, Channel.WHATSAPP, FeedbackType.ABUSE)

    # -- bounces and complaints ------------------------------------------------------------------

    def email_key(self, address: str | None) -> bytes | None:
        if not address:
            return None
        try:
            normalized = normalize_email(address)
        except InvalidInput:
            return None
        return self.uow.keys.blind_index(
            PointKind.EMAIL, point_index_value(PointKind.EMAIL, normalized)
        )

    def find_sent(self, *message_ids: str | None) -> SentDelivery | None:
        for value in message_ids:
            message_id = message_id_from(value)
            if message_id is None:
                continue
            found = self.uow.signals.delivery_by_message_id(message_id)
            if found is not None:
                return found
        return None

    def point_of(self, sent: SentDelivery, address: str | None) -> bytes | None:
        """The address a report is about: the delivery's contact's own, which must match the
        report's recipient when the report names one."""
        contact = self.uow.contacts.get(sent.tenant_id, sent.contact_id)
        own = self.uow.contacts.point_key(contact, sent.channel)
        named = self.email_key(address)
        if named is not None and own is not None and named != own:
            return None  # the report names someone else: do not act on it
        return own or named

    def bounce(self, b: Bounce) -> None:
        if b.kind is BounceKind.DELAYED:
            self.notes.append(f"delayed ({b.status}): not a bounce")
            return
        verp = message_id_from_verp(b.return_path) or message_id_from_verp(b.original_envelope_id)
        sent = self.find_sent(b.original_message_id, verp)
        if sent is None:
            self.unattributed = True
            return
        self.tenants.add(sent.tenant_id)
        point_key = self.point_of(sent, b.recipient)
        if point_key is None:
            self.unattributed = True
            return
        if b.kind is BounceKind.POLICY:
            diagnostic = _EMAILISH.sub("<address>", b.diagnostic)[:300]
            self.uow.signals.alert(
                sent.tenant_id,
                "policy_bounce",
                f"{b.status} from {b.reporting_mta or 'the receiving server'}: {diagnostic}",
                self.inbound_id,
                self.at,
            )
            self.applied.append(f"policy failure {b.status}: tenant alerted, nobody suppressed")
            return
        if b.kind is BounceKind.HARD:
            self.uow.signals.report_delivery(sent.id, DeliveryStatus.BOUNCED, self.at, b.status)
            self.suppress(
                sent.tenant_id,
                point_key,
                Channel.EMAIL,
                SuppressionReason.HARD_BOUNCE,
                SuppressionScope.ALL,
                f"dsn:{b.status}",
            )
            self.uow.signals.reset_bounces(point_key)
            return
        count = self.uow.signals.soft_bounce(point_key, b.status, self.at)
        self.applied.append(f"soft bounce {b.status}: {count} in a row")
        if count >= self.policy.soft_bounce_limit:
            self.suppress(
                sent.tenant_id,
                point_key,
                Channel.EMAIL,
                SuppressionReason.HARD_BOUNCE,
                SuppressionScope.ALL,
                f"dsn:{b.status}",
                note=f"{count} soft bounces in a row",
            )

    def complaint(self, c: Complaint) -> None:
        sent = self.find_sent(c.original_message_id, message_id_from_verp(c.original_mail_from))
        if sent is None:
            self.unattributed = True
            self.notes.append(f"{c.feedback_type.value} report not attributable")
            return
        self.tenants.add(sent.tenant_id)
        if c.feedback_type not in SUPPRESSING_FEEDBACK:
            self.notes.append(f"{c.feedback_type.value} report: nothing suppressed")
            return
        point_key = self.point_of(sent, c.recipient)
        if point_key is None:
            self.unattributed = True
            return
        self.uow.signals.report_delivery(
            sent.id, DeliveryStatus.COMPLAINED, self.at, c.feedback_type.value
        )
        self.suppress(
            sent.tenant_id,
            point_key,
            sent.channel,
            SuppressionReason.COMPLAINT,
            SuppressionScope.ALL,
            f"arf:{c.feedback_type.value}",
        )
        self.open_case(sent, sent.channel, c.feedback_type)

    def open_case(self, sent: SentDelivery, channel: Channel, feedback: FeedbackType) -> None:
        case = ComplaintCase(
            id=new_id(),
            tenant_id=sent.tenant_id,
            campaign_id=sent.campaign_id,
            delivery_id=sent.id,
            channel=channel,
            feedback_type=feedback,
            source=self.source,
            status="open",
            opened_at=self.at,
        )
        self.uow.signals.open_case(case, sent.contact_id, self.inbound_id)
        self.tenants.add(sent.tenant_id)
        self.applied.append(f"complaint case {case.id} opened")

    # -- provider delivery reports -----------------------------------------------------------------

    def report(self, event: ProviderEvent) -> None:
        sent = self.uow.signals.delivery_by_provider_id(event.provider_message_id)
        if sent is None:
            self.unattributed = True
            return
        self.tenants.add(sent.tenant_id)
        if event.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
            moved = self.uow.signals.report_delivery(
                sent.id, event.status, self.at, event.error_code
            )
            if moved:
                self.applied.append(f"delivery {sent.id} {event.status.value}")
        if event.status is DeliveryStatus.DELIVERED and sent.channel is Channel.EMAIL:
            # Mail reached the mailbox: soft bounces before it were passing trouble, and the
            # next ones start a new run (only soft bounces *in a row* suppress an address).
            point_key = self.uow.signals.contact_point_key(sent.contact_id, Channel.EMAIL)
            if point_key is not None:
                self.uow.signals.reset_bounces(point_key)
        if event.signal is ProviderSignal.OPT_OUT:
            contact = self.uow.contacts.get(sent.tenant_id, sent.contact_id)
            point_key = self.uow.contacts.point_key(contact, sent.channel)
            if point_key is not None:
                scope = (
                    SuppressionScope.MARKETING
                    if sent.channel is Channel.WHATSAPP
                    else SuppressionScope.ALL
                )
                self.suppress(
                    sent.tenant_id,
                    point_key,
                    sent.channel,
                    SuppressionReason.PROVIDER,
                    scope,
                    f"provider:{event.error_code or 'opt_out'}",
                )


__all__ = [
    "IngestResult",
    "KeywordReplies",
    "SignalPolicy",
    "ingest",
    "ingest_many",
    "ingest_provider_events",
    "keep_rejected",
    "message_id_from",
    "message_id_from_verp",
]
