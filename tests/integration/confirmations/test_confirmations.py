"""Confirmed opt-in on each database: requests, the gate while pending, confirming, lapsing,
single use, resend limits, and the SMS YES through the signal pipeline."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage as MimeMessage
from email.policy import default

import pytest
from tests.integration.helpers import NOW, UowFactory, disclosure, person, shop

from consentry.domain.confirmation import RateLimited
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentMethod,
    ConsentStatus,
    Evidence,
)
from consentry.domain.delivery import (
    EmailMessage,
    OutboundMessage,
    SmsMessage,
    TransientDeliveryError,
)
from consentry.domain.model import Category, Channel
from consentry.domain.signals import Keyword, KeywordKind, ParsedInput, SignalSource
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.services import confirmations, confirming
from consentry.services.compose.confirmation import ConfirmationTokens
from consentry.services.compose.tokens import InvalidToken
from consentry.services.confirmations import Confirmers
from consentry.services.consent import ConsentRequest
from consentry.services.contacts import ContactInput, update_contact
from consentry.services.gate import explain_decision
from consentry.services.signals import SignalPolicy, ingest
from consentry.services.suppressions import add_suppression
from consentry.services.tenancy import create_topic

LIFETIME = timedelta(days=7)
PAGE = Evidence(
    method=ConsentMethod.WEB_FORM,
    source="https://consentry.example/c",
    ip_address="198.51.100.7",
    user_agent="Mozilla/5.0 (confirming)",
)
CONFIG = confirmations.ConfirmationConfig(
    public_base_url="https://consentry.example",
    sms_sender="+15005550006",
    sms_frequency="Up to 4 msgs/month.",
    sms_help_contact="help@shop.example",
    resend_interval=timedelta(minutes=5),
)


def body(message: EmailMessage) -> str:
    parsed = message_from_bytes(message.data, policy=default)
    assert isinstance(parsed, MimeMessage)
    return str(parsed.get_content())


@dataclass
class Setup:
    new_uow: UowFactory
    slug: str
    contact: str
    evidence: Evidence
    tokens: ConfirmationTokens = field(
        default_factory=lambda: ConfirmationTokens(b"\x07" * 32, lifetime=LIFETIME)
    )
    limits: confirmations.ResendLimits = field(
        default_factory=lambda: confirmations.ResendLimits(CONFIG.resend_interval)
    )
    sent: list[OutboundMessage] = field(default_factory=list)

    def confirmers(self, send: Callable[[OutboundMessage], None] | None = None) -> Confirmers:
        """What the use cases need, sending into ``sent`` unless told otherwise."""
        return Confirmers(self.tokens, CONFIG, self.limits, send or self.sent.append)

    def request(
        self, channel: Channel = Channel.EMAIL, *, topic: str = "news", at_offset: float = 0
    ) -> confirmations.Requested:
        return confirmations.request_consent(
            self.new_uow(),
            self.confirmers(),
            self.slug,
            ConsentRequest(
                self.contact,
                topic,
                channel,
                ConsentAction.REQUESTED,
                ConsentBasis.EXPRESS,
                self.evidence,
            ),
            now=NOW + timedelta(seconds=at_offset),
        )

    def token(self, index: int = -1) -> str:
        message = self.sent[index]
        assert isinstance(message, EmailMessage)
        found = re.search(r"https://consentry\.example/c/([A-Za-z0-9_-]+)", body(message))
        assert found is not None
        return found.group(1)

    def verdict(self, topic: str, channel: Channel = Channel.EMAIL) -> tuple[str, tuple[str, ...]]:
        found = explain_decision(
            self.new_uow(), self.slug, self.contact, topic, channel, now=NOW + timedelta(hours=1)
        )
        decision = found.explanation.decision
        return decision.verdict.value, decision.reasons

    def events(self) -> list[tuple[ConsentAction, ConsentBasis, Channel]]:
        with self.new_uow() as uow:
            tenant = uow.tenants.by_slug(self.slug)
            return [
                (e.action, e.basis, e.channel)
                for e in uow.ledger.history(tenant.id, uuid.UUID(self.contact))
            ]


@pytest.fixture
def setup(new_uow: UowFactory) -> Setup:
    slug = shop(new_uow)
    create_topic(
        new_uow(), slug, key="news", name="Weekly news", category=Category.MARKETING,
        requires_double_opt_in=True, now=NOW,
    )  # fmt: skip
    contact = person(new_uow, slug)
    return Setup(new_uow, slug, str(contact.id), disclosure(new_uow, slug))


def test_a_request_sends_one_confirmation_and_the_gate_lets_nothing_else_through(
    setup: Setup,
) -> None:
    done = setup.request()
    assert done.sent
    assert done.recorded.state.status is ConsentStatus.PENDING
    [message] = setup.sent
    assert isinstance(message, EmailMessage)
    text = body(message)
    assert "Weekly news" in text
    assert "shop LLC" in text
    assert message.rcpt_to == "ana@example.com"
    # While pending: the topic, other marketing, and service messages are all refused.
    assert setup.verdict("news") == ("deny", ("CONSENT_PENDING",))
    assert setup.verdict("promotions") == ("deny", ("NO_CONSENT",))
    assert setup.verdict("reminders") == ("deny", ("NO_CONSENT",))
    assert setup.events() == [(ConsentAction.REQUESTED, ConsentBasis.EXPRESS, Channel.EMAIL)]


def test_confirming_records_a_second_event_with_its_own_evidence_once(setup: Setup) -> None:
    setup.request()
    token = setup.token()
    later = NOW + timedelta(hours=2)
    view = confirming.read_confirmation(setup.new_uow(), setup.tokens, token, now=later)
    assert (view.business_name, view.topic.name) == ("shop LLC", "Weekly news")
    assert len(setup.events()) == 1  # reading the link changed nothing
    _view, event = confirming.confirm(setup.new_uow(), setup.tokens, token, PAGE, now=later)
    assert (event.action, event.basis) == (ConsentAction.CONFIRMED, ConsentBasis.DOUBLE_OPT_IN)
    with setup.new_uow() as uow:
        stored = uow.ledger.history(event.tenant_id, event.contact_id)[-1]
    assert stored.evidence.source == "https://consentry.example/c"
    assert stored.evidence.ip_address == "198.51.100.7"
    assert stored.evidence.user_agent == "Mozilla/5.0 (confirming)"
    assert stored.occurred_at == later
    assert setup.verdict("news") == ("allow", ())
    # Single use: the same link now confirms nothing, and says so as a forged one would.
    with pytest.raises(InvalidToken):
        confirming.read_confirmation(setup.new_uow(), setup.tokens, token, now=later)
    with pytest.raises(InvalidToken):
        confirming.confirm(setup.new_uow(), setup.tokens, token, PAGE, now=later)
    assert len(setup.events()) == 2


def test_a_new_request_makes_the_older_link_useless(setup: Setup) -> None:
    setup.request()
    first = setup.token()
    setup.request(at_offset=600)
    second = setup.token()
    later = NOW + timedelta(hours=1)
    with pytest.raises(InvalidToken):
        confirming.confirm(setup.new_uow(), setup.tokens, first, PAGE, now=later)
    confirming.confirm(setup.new_uow(), setup.tokens, second, PAGE, now=later)


def test_expired_requests_cannot_be_confirmed_and_lapse(setup: Setup) -> None:
    setup.request()
    token = setup.token()
    late = NOW + LIFETIME + timedelta(minutes=1)
    with pytest.raises(InvalidToken):
        confirming.confirm(setup.new_uow(), setup.tokens, token, PAGE, now=late)
    # Not yet past the lifetime: nothing lapses.
    early = NOW + LIFETIME - timedelta(minutes=1)
    assert confirming.lapse_pending(setup.new_uow(), lifetime=LIFETIME, now=early) == 0
    assert confirming.lapse_pending(setup.new_uow(), lifetime=LIFETIME, now=late) == 1
    assert confirming.lapse_pending(setup.new_uow(), lifetime=LIFETIME, now=late) == 0
    assert [a for a, _, _ in setup.events()] == [ConsentAction.REQUESTED, ConsentAction.LAPSED]
    assert setup.verdict("news")[1] == ("CONSENT_LAPSED",)
    # A lapsed request gets no more confirmation messages.
    with pytest.raises(confirmations.NotPending):
        confirmations.resend_confirmation(
            setup.new_uow(), setup.confirmers(), setup.slug,
            setup.contact, "news", Channel.EMAIL, now=late,
        )  # fmt: skip


def test_resending_is_rate_limited_with_a_retry_after(setup: Setup) -> None:
    setup.request()

    def resend(offset: timedelta) -> None:
        confirmations.resend_confirmation(
            setup.new_uow(), setup.confirmers(), setup.slug,
            setup.contact, "news", Channel.EMAIL, now=NOW + offset,
        )  # fmt: skip

    with pytest.raises(RateLimited) as refused:
        resend(timedelta(minutes=1))
    assert refused.value.code == "CONFIRMATION_RESEND_TOO_SOON"
    assert refused.value.retry_after == 240
    assert len(setup.sent) == 1
    resend(timedelta(minutes=5, seconds=1))
    assert len(setup.sent) == 2
    # Both links name the same request: either confirms it, and then neither does anything.
    later = NOW + timedelta(minutes=10)
    confirming.confirm(setup.new_uow(), setup.tokens, setup.token(0), PAGE, now=later)
    with pytest.raises(InvalidToken):
        confirming.confirm(setup.new_uow(), setup.tokens, setup.token(1), PAGE, now=later)
    with pytest.raises(confirmations.NotPending):
        resend(timedelta(hours=1))


def test_a_bounced_address_gets_no_confirmation(setup: Setup) -> None:
    add_suppression(
        setup.new_uow(), setup.slug, address="ana@example.com", channels=[Channel.EMAIL],
        reason=SuppressionReason.HARD_BOUNCE,
    )  # fmt: skip
    done = setup.request()
    assert not done.sent
    assert setup.sent == []


def test_sms_double_opt_in_by_yes_reply(setup: Setup) -> None:
    done = setup.request(Channel.SMS)
    assert done.sent
    [message] = setup.sent
    assert isinstance(message, SmsMessage)
    assert message.to == "+16175550142"
    for part in ("shop name", "Weekly news", "Up to 4 msgs/month.", "Msg&data rates may apply",
                 "STOP", "HELP", "reply YES"):  # fmt: skip
        assert part in message.body
    assert setup.verdict("news", Channel.SMS) == ("deny", ("CONSENT_PENDING",))
    yes = Keyword(Channel.SMS, "+16175550142", "+15005550006", KeywordKind.OPT_IN, "YES")
    parsed = ParsedInput(SignalSource.TWILIO, "SM" + "1" * 32, (yes,), NOW + timedelta(hours=1))
    policy = SignalPolicy(confirmation_lifetime=LIFETIME, sms_frequency="Up to 4 msgs/month.")
    result = ingest(setup.new_uow(), parsed, b"Body=YES", "text/plain", policy=policy)
    assert "confirmed the sms double opt-in for topic news" in result.applied
    # The first message after the confirmation repeats the disclosures.
    [reply] = result.replies
    for part in ("shop name", "Weekly news", "Up to 4 msgs/month.", "Msg&data rates may apply",
                 "STOP", "HELP"):  # fmt: skip
        assert part in reply
    # Consent no longer stops it (US quiet hours may still defer a text).
    assert setup.verdict("news", Channel.SMS)[0] in {"allow", "defer"}
    with setup.new_uow() as uow:
        tenant = uow.tenants.by_slug(setup.slug)
        last = uow.ledger.history(tenant.id, uuid.UUID(setup.contact))[-1]
    assert (last.action, last.basis) == (ConsentAction.CONFIRMED, ConsentBasis.DOUBLE_OPT_IN)
    assert last.evidence.method is ConsentMethod.KEYWORD
    assert last.evidence.inbound_message_id == "SM" + "1" * 32
    # A second YES confirms nothing more.
    again = ParsedInput(SignalSource.TWILIO, "SM" + "2" * 32, (yes,), NOW + timedelta(hours=2))
    repeat = ingest(setup.new_uow(), again, b"Body=YES", "text/plain", policy=policy)
    assert repeat.replies == []
    assert len(setup.events()) == 2


def test_a_late_yes_confirms_nothing(setup: Setup) -> None:
    setup.request(Channel.SMS)
    yes = Keyword(Channel.SMS, "+16175550142", "+15005550006", KeywordKind.OPT_IN, "YES")
    late = NOW + LIFETIME + timedelta(hours=1)
    parsed = ParsedInput(SignalSource.TWILIO, "SM" + "3" * 32, (yes,), late)
    result = ingest(setup.new_uow(), parsed, b"Body=YES", "text/plain", policy=SignalPolicy())
    assert result.applied == []
    assert len(setup.events()) == 1


def test_a_request_whose_message_cannot_be_handed_over_stays_pending(setup: Setup) -> None:
    def failing(_message: OutboundMessage) -> None:
        raise TransientDeliveryError("relay unavailable")

    done = confirmations.request_consent(
        setup.new_uow(),
        setup.confirmers(failing),
        setup.slug,
        ConsentRequest(
            setup.contact,
            "news",
            Channel.EMAIL,
            ConsentAction.REQUESTED,
            ConsentBasis.EXPRESS,
            setup.evidence,
        ),
        now=NOW,
    )
    assert not done.sent
    assert done.recorded.state.status is ConsentStatus.PENDING
    assert setup.verdict("news") == ("deny", ("CONSENT_PENDING",))


def test_confirming_lifts_the_tenants_marketing_unsubscribe_on_that_channel(setup: Setup) -> None:
    add_suppression(
        setup.new_uow(),
        setup.slug,
        address="ana@example.com",
        channels=[Channel.EMAIL],
        reason=SuppressionReason.UNSUBSCRIBED,
        scope=SuppressionScope.MARKETING,
    )
    assert setup.request().sent  # a marketing unsubscribe does not stop a new request
    later = NOW + timedelta(hours=1)
    confirming.confirm(setup.new_uow(), setup.tokens, setup.token(), PAGE, now=later)
    assert setup.verdict("news") == ("allow", ())
    # Only the confirmed topic: promotions still has no consent.
    assert setup.verdict("promotions") == ("deny", ("NO_CONSENT",))


def test_a_request_for_an_address_since_replaced_is_not_sent_to_the_new_one(
    setup: Setup,
) -> None:
    setup.request()
    assert len(setup.sent) == 1
    update_contact(
        setup.new_uow(), setup.slug, uuid.UUID(setup.contact),
        ContactInput(email="ana.new@example.com", phone="+16175550142", name="Ana Lima"),
        now=NOW + timedelta(minutes=1),
    )  # fmt: skip
    # The pending request is for ana@example.com; the new address asked for nothing.
    with pytest.raises(confirmations.NotPending):
        confirmations.resend_confirmation(
            setup.new_uow(), setup.confirmers(), setup.slug,
            setup.contact, "news", Channel.EMAIL, now=NOW + timedelta(hours=1),
        )  # fmt: skip
    assert len(setup.sent) == 1


def test_a_yes_confirms_the_request_it_answers_not_every_pending_one(setup: Setup) -> None:
    create_topic(
        setup.new_uow(), setup.slug, key="deals", name="Deals", category=Category.MARKETING,
        requires_double_opt_in=True, now=NOW,
    )  # fmt: skip
    setup.request(Channel.SMS, topic="news")
    setup.request(Channel.SMS, topic="deals", at_offset=600)  # the text the person just read
    yes = Keyword(Channel.SMS, "+16175550142", "+15005550006", KeywordKind.OPT_IN, "YES")
    parsed = ParsedInput(SignalSource.TWILIO, "SM" + "4" * 32, (yes,), NOW + timedelta(hours=1))
    result = ingest(setup.new_uow(), parsed, b"Body=YES", "text/plain", policy=SignalPolicy())
    assert result.applied == ["confirmed the sms double opt-in for topic deals"]
    assert setup.verdict("deals", Channel.SMS)[0] in {"allow", "defer"}
    assert setup.verdict("news", Channel.SMS) == ("deny", ("CONSENT_PENDING",))
