"""The signal pipeline on each database: recorded once, applied under the fence, attributed
conservatively; bounces, complaints, keywords, WhatsApp and provider reports."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select
from tests.integration.delivery.conftest import SLUG, World

from consentry.domain.delivery import DeliveryStatus, EmailMessage, ProviderEvent, ProviderSignal
from consentry.domain.model import Channel, Contact
from consentry.domain.signals import (
    Block,
    Bounce,
    BounceKind,
    ButtonOptOut,
    Complaint,
    FeedbackType,
    InboundMessage,
    Keyword,
    KeywordKind,
    ParsedInput,
    Signal,
    SignalSource,
)
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.persistence.tables import (
    captured_messages,
    complaint_cases,
    contacts,
    deliveries,
    inbound_events,
)
from consentry.services.campaigns import CampaignInput, create_campaign, launch_campaign
from consentry.services.clock import utcnow
from consentry.services.contacts import erase_contact
from consentry.services.courtesy_signing import COURTESY_KEPT, CourtesyLog
from consentry.services.preference_links import preference_link_message
from consentry.services.signals import (
    IngestResult,
    SignalPolicy,
    ingest,
    ingest_provider_events,
    message_id_from_verp,
)
from consentry.services.suppressions import list_suppressions
from consentry.services.tenants_ref import find_tenant
from consentry.workers.inprocess import drain


class Replies:
    """Texts that name what they answer, so a test can tell them apart."""

    def opt_out(self, brand: str, language: str | None = None) -> str:
        return f"{brand}: unsubscribed ({language})"

    def opt_in(self, brand: str, language: str | None = None) -> str:
        return f"{brand}: subscribed ({language})"

    def help(self, brand: str, language: str | None = None) -> str:
        return f"{brand}: help ({language})"

    def with_lists(self, lists: object) -> Replies:
        del lists  # these texts are the same for every tenant
        return self


POLICY = SignalPolicy(replies=Replies(), brand="Platform", soft_bounce_limit=3)


def _send(world: World, n: int = 2) -> list[tuple[Contact, str]]:
    """A campaign to ``n`` opted-in people, sent; each person with their Message-ID."""
    people = [world.contact(i) for i in range(n)]
    for p in people:
        world.opt_in(p)
    campaign = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name="spring", topic="promotions", template="spring"),
        actor="test",
    )  # fmt: skip
    launch_campaign(world.new_uow(), SLUG, str(campaign.id), world.container.composer().reviewer)
    drain(world.container)
    with world.container.engine.connect() as conn:
        ids = dict(conn.execute(select(deliveries.c.contact_id, deliveries.c.message_id)).all())
    return [(p, ids[p.id]) for p in people]


def _ingest(world: World, *signals: Signal, event_id: str | None = None,
            source: SignalSource = SignalSource.INBOUND_SMTP) -> IngestResult:  # fmt: skip
    parsed = ParsedInput(source=source, event_id=event_id or uuid.uuid4().hex, signals=signals)
    return ingest(world.new_uow(), parsed, b"raw payload", "message/rfc822", policy=POLICY)


def _active(world: World) -> list[Suppression]:
    return list_suppressions(world.new_uow(), SLUG)


def _status(world: World, contact: Contact) -> str:
    with world.container.engine.connect() as conn:
        return str(
            conn.execute(
                select(deliveries.c.status).where(deliveries.c.contact_id == contact.id)
            ).scalar_one()
        )


def _count(world: World, table: object) -> int:
    with world.container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def test_a_hard_bounce_suppresses_the_address_once_however_often_it_is_replayed(
    world: World,
) -> None:
    (ana, message_id), (bo, _) = _send(world)
    bounce = Bounce(ana.email, BounceKind.HARD, "5.1.1", original_message_id=f"<{message_id}>")
    first = _ingest(world, bounce, event_id="dsn-1")
    again = _ingest(world, bounce, event_id="dsn-1")

    assert first.status == "applied"
    assert (again.duplicate, again.status) == (True, "duplicate")
    assert _status(world, ana) == "bounced"
    assert _status(world, bo) == "sent"
    found = _active(world)
    assert [(s.reason, s.scope, s.channel) for s in found] == [
        (SuppressionReason.HARD_BOUNCE, SuppressionScope.ALL, Channel.EMAIL)
    ]
    assert _count(world, inbound_events) == 1
    # The raw payload is kept, sealed, and the event names what was done without any address.
    with world.new_uow() as uow:
        record = uow.signals.inbound(limit=1)[0]
        assert record.tenant_id is not None
        assert uow.signals.payload(record.id) == b"raw payload"
    assert "hard_bounce" in record.outcome
    assert ana.email not in record.outcome
    with world.container.engine.connect() as conn:
        sealed = conn.execute(select(inbound_events.c.payload_enc)).scalar_one()
    assert b"raw payload" not in sealed


def test_soft_bounces_suppress_only_after_the_configured_run(world: World) -> None:
    (ana, message_id), _ = _send(world)
    soft = Bounce(ana.email, BounceKind.SOFT, "4.2.2", original_message_id=message_id)
    _ingest(world, soft)
    _ingest(world, soft)
    assert _active(world) == []
    third = _ingest(world, soft)
    assert "soft bounce 4.2.2: 3 in a row" in third.applied
    assert [s.reason for s in _active(world)] == [SuppressionReason.HARD_BOUNCE]
    assert _active(world)[0].note == "3 soft bounces in a row"


def test_a_delivered_report_ends_a_run_of_soft_bounces(world: World) -> None:
    (ana, message_id), _ = _send(world)
    with world.container.engine.begin() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.contact_id == ana.id)
            .values(provider_message_id="SG-delivered")
        )
    soft = Bounce(ana.email, BounceKind.SOFT, "4.2.2", original_message_id=message_id)
    _ingest(world, soft)
    _ingest(world, soft)
    delivered = ProviderEvent("SG-delivered", DeliveryStatus.DELIVERED, utcnow(), "sg-ev-1")
    ingest_provider_events(
        world.new_uow(), SignalSource.PROVIDER, [delivered], b"{}", content_type="application/json"
    )

    second_run = [_ingest(world, soft), _ingest(world, soft)]

    assert "soft bounce 4.2.2: 2 in a row" in second_run[-1].applied
    assert _active(world) == []  # four soft bounces, but never three in a row
    third = _ingest(world, soft)
    assert "soft bounce 4.2.2: 3 in a row" in third.applied
    assert [s.reason for s in _active(world)] == [SuppressionReason.HARD_BOUNCE]


def test_policy_failures_alert_the_tenant_and_suppress_no_one(world: World) -> None:
    (ana, message_id), _ = _send(world)
    policy = Bounce(
        ana.email, BounceKind.POLICY, "5.7.1",
        diagnostic=f"550 5.7.1 {ana.email} rejected: DMARC policy", original_message_id=message_id,
        reporting_mta="mx.example.net",
    )  # fmt: skip
    delayed = Bounce(ana.email, BounceKind.DELAYED, "4.4.7", original_message_id=message_id)
    assert _ingest(world, policy).status == "applied"
    assert _ingest(world, delayed).status == "ignored"
    assert _active(world) == []
    assert _status(world, ana) == "sent"
    with world.new_uow() as uow:
        tenant = uow.tenants.by_slug(SLUG)
        alerts = uow.signals.alerts(tenant.id)
    assert [(kind, "DMARC" in detail, ana.email in detail) for kind, detail, _ in alerts] == [
        ("policy_bounce", True, False)
    ]


def test_a_report_that_cannot_be_tied_to_a_sent_message_changes_nothing(world: World) -> None:
    (ana, message_id), _ = _send(world)
    forged = Bounce(ana.email, BounceKind.HARD, "5.1.1", original_message_id="<1.abc@evil.example>")
    assert _ingest(world, forged).status == "unattributed"
    # A report about one message that names another person is not acted on either.
    other = Bounce("someone@else.example", BounceKind.HARD, "5.1.1", original_message_id=message_id)
    assert _ingest(world, other).status == "unattributed"
    assert _active(world) == []
    assert _status(world, ana) == "sent"


def test_an_abuse_report_found_by_its_verp_address_opens_a_case_and_suppresses(
    world: World,
) -> None:
    (ana, message_id), (bo, bo_message_id) = _send(world)
    left, domain = message_id.split("@")
    verp = f"bounces+{left}@{domain}"
    assert message_id_from_verp(verp) == message_id
    redacted = Complaint(None, FeedbackType.ABUSE, original_mail_from=verp)
    result = _ingest(world, redacted)
    assert result.status == "applied"
    assert _status(world, ana) == "complained"
    assert [(s.reason, s.scope) for s in _active(world)] == [
        (SuppressionReason.COMPLAINT, SuppressionScope.ALL)
    ]
    with world.container.engine.connect() as conn:
        case = conn.execute(select(complaint_cases)).one()
    assert (case.contact_id, case.feedback_type, case.status) == (ana.id, "abuse", "open")
    assert case.campaign_id is not None

    not_spam = Complaint(bo.email, FeedbackType.NOT_SPAM, original_message_id=bo_message_id)
    noted = _ingest(world, not_spam)
    assert (noted.status, noted.notes) == ("ignored", ["not-spam report: nothing suppressed"])
    assert _status(world, bo) == "sent"
    assert _count(world, complaint_cases) == 1


def test_sms_stop_is_confirmed_once_and_start_restores_keyword_scoped_messaging(
    world: World,
) -> None:
    ana = world.contact(1)
    number = ana.phone
    assert number is not None

    def sms(kind: KeywordKind, text: str, language: str = "en") -> IngestResult:
        word = Keyword(Channel.SMS, number, "+15005550006", kind, text, language)
        return _ingest(world, word, source=SignalSource.TWILIO)

    first = sms(KeywordKind.OPT_OUT, "Stop please")
    assert first.replies == ["Harbour Auto: unsubscribed (en)"]  # the only tenant that knows it
    assert sms(KeywordKind.OPT_OUT, "STOP").replies == []  # at most one confirmation
    with world.new_uow() as uow:
        key = uow.contacts.point_key(ana, Channel.SMS)
        assert key is not None
        standing = uow.suppressions.active_for(None, key, Channel.SMS)
    assert [(s.tenant_id, s.reason, s.scope) for s in standing] == [
        (None, SuppressionReason.UNSUBSCRIBED, SuppressionScope.ALL)
    ]

    help_ = sms(KeywordKind.HELP, "ayuda", "es")
    assert help_.replies == ["Harbour Auto: help (es)"]  # answered in the keyword's language
    started = sms(KeywordKind.OPT_IN, "START")
    assert started.replies == ["Harbour Auto: subscribed (en)"]
    with world.new_uow() as uow:
        assert uow.suppressions.active_for(None, key, Channel.SMS) == []
    # A second START has nothing to lift and says nothing.
    assert sms(KeywordKind.OPT_IN, "yes").replies == []


def test_a_start_never_lifts_what_a_keyword_did_not_set(world: World) -> None:
    ana = world.contact(1)
    assert ana.phone is not None
    bounce_like = Keyword(Channel.SMS, ana.phone, "+15005550006", KeywordKind.OPT_IN, "START")
    with world.new_uow() as uow:
        key = uow.contacts.point_key(ana, Channel.SMS)
        assert key is not None
    from consentry.services.suppressions import add_suppression

    add_suppression(world.new_uow(), None, address=ana.phone, channels=[Channel.SMS],
                    reason=SuppressionReason.MANUAL)  # fmt: skip
    assert _ingest(world, bounce_like, source=SignalSource.TWILIO).replies == []
    with world.new_uow() as uow:
        assert [s.reason for s in uow.suppressions.active_for(None, key, Channel.SMS)] == [
            SuppressionReason.MANUAL
        ]


def test_a_refusal_without_a_keyword_goes_to_review(world: World) -> None:
    ana = world.contact(1)
    assert ana.phone is not None
    odd = Keyword(Channel.SMS, ana.phone, "+15005550006", KeywordKind.REFUSAL_LIKE, "leave me be")
    result = _ingest(world, odd, source=SignalSource.TWILIO)
    assert result.status == "review"
    with world.new_uow() as uow:
        queued = uow.signals.inbound(status="review")
        alerts = uow.signals.alerts(uow.tenants.by_slug(SLUG).id)
    assert [r.id for r in queued] == [result.inbound_id]
    assert [kind for kind, _, _ in alerts] == ["refusal_review"]
    assert _count(world, contacts) == 1
    with world.new_uow() as uow:
        key = uow.contacts.point_key(ana, Channel.SMS)
        assert key is not None
        assert uow.suppressions.active_for(None, key, Channel.SMS) == []


def test_whatsapp_messages_open_the_window_and_buttons_and_blocks_suppress(world: World) -> None:
    ana = world.contact(1, whatsapp="+16175550001")
    at = utcnow().replace(microsecond=0)
    _ingest(world, InboundMessage(Channel.WHATSAPP, "+16175550001", "+15005550006", at),
            source=SignalSource.WHATSAPP)  # fmt: skip
    with world.container.engine.connect() as conn:
        opened = conn.execute(
            select(contacts.c.whatsapp_last_inbound_at).where(contacts.c.id == ana.id)
        ).scalar_one()
    assert opened == at
    # An older message does not move the window back.
    _ingest(world, InboundMessage(Channel.WHATSAPP, "+16175550001", "+1500", at - timedelta(1)),
            source=SignalSource.WHATSAPP)  # fmt: skip
    with world.container.engine.connect() as conn:
        assert conn.execute(select(contacts.c.whatsapp_last_inbound_at)).scalar_one() == at

    _ingest(world, ButtonOptOut("+16175550001", "+15005550006", "STOP_PROMOTIONS"),
            source=SignalSource.WHATSAPP)  # fmt: skip
    report = _ingest(world, Block("+16175550001", "+15005550006", reported=True),
                     source=SignalSource.WHATSAPP)  # fmt: skip
    assert report.status == "applied"  # the block applies; the report has no message to blame
    with world.new_uow() as uow:
        key = uow.contacts.point_key(ana, Channel.WHATSAPP)
        assert key is not None
        standing = uow.suppressions.active_for(None, key, Channel.WHATSAPP)
    assert sorted((s.reason, s.scope) for s in standing) == [
        (SuppressionReason.BLOCKED, SuppressionScope.ALL),
        (SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),
    ]
    assert _count(world, complaint_cases) == 0


def test_provider_reports_move_deliveries_on_and_record_provider_opt_outs(world: World) -> None:
    (ana, _), (bo, _) = _send(world)
    with world.container.engine.begin() as conn:
        for person, ref in ((ana, "SM1"), (bo, "SM2")):
            conn.execute(
                deliveries.update()
                .where(deliveries.c.contact_id == person.id)
                .values(provider_message_id=ref)
            )
    now = utcnow()
    events = [
        ProviderEvent("SM1", DeliveryStatus.DELIVERED, now, "ev-1"),
        ProviderEvent("SM2", DeliveryStatus.FAILED, now, "ev-2", "21610", ProviderSignal.OPT_OUT),
        ProviderEvent("SM1", DeliveryStatus.DELIVERED, now, "ev-1"),  # replayed
        ProviderEvent("SM9", DeliveryStatus.DELIVERED, now, "ev-3"),  # not ours
    ]
    results = ingest_provider_events(
        world.new_uow(), SignalSource.PROVIDER, events, b"{}", content_type="application/json"
    )
    assert [r.status for r in results] == ["applied", "applied", "duplicate", "unattributed"]
    assert (_status(world, ana), _status(world, bo)) == ("delivered", "failed")
    assert [(s.reason, s.channel) for s in _active(world)] == [
        (SuppressionReason.PROVIDER, Channel.EMAIL)
    ]


def test_a_complaint_stops_the_queued_deliveries_of_a_running_campaign_and_later_ones(
    world: World,
) -> None:
    """Reach: a "no" that arrives while a campaign is queued stops that person's delivery at its
    dispatch check, and the next campaign does not plan them at all."""
    (bo, bo_message_id), (cy, _) = _send(world, 2)
    running = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name="summer", topic="promotions", template="spring"),
        actor="test",
    )  # fmt: skip
    launch_campaign(world.new_uow(), SLUG, str(running.id), world.container.composer().reviewer)

    report = Complaint(bo.email, FeedbackType.ABUSE, original_message_id=bo_message_id)
    assert _ingest(world, report).status == "applied"
    drain(world.container)

    with world.container.engine.connect() as conn:
        summer = dict(
            conn.execute(
                select(deliveries.c.contact_id, deliveries.c.status).where(
                    deliveries.c.campaign_id == running.id
                )
            ).all()
        )
    assert summer == {bo.id: "suppressed", cy.id: "sent"}

    later = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name="autumn", topic="promotions", template="spring"),
        actor="test",
    )  # fmt: skip
    launch_campaign(world.new_uow(), SLUG, str(later.id), world.container.composer().reviewer)
    drain(world.container)
    with world.container.engine.connect() as conn:
        autumn = dict(
            conn.execute(
                select(deliveries.c.contact_id, deliveries.c.status).where(
                    deliveries.c.campaign_id == later.id
                )
            ).all()
        )
    assert autumn.get(cy.id) == "sent"
    assert autumn.get(bo.id, "suppressed") == "suppressed"  # refused when planned, or not planned


def _tenant_id(world: World) -> uuid.UUID:
    with world.new_uow() as uow:
        return find_tenant(uow, SLUG).id


def _captured_to(world: World) -> list[bytes | None]:
    with world.container.engine.connect() as conn:
        found = conn.execute(select(captured_messages.c.recipient_key)).scalars()
        return sorted(bytes(k) if k is not None else None for k in found)  # type: ignore[type-var]


def _courtesy_email(world: World, contact: Contact) -> str:
    """A preference link sent to ``contact`` outside any campaign; its Message-ID."""
    settings = world.container.settings
    message = preference_link_message(
        world.new_uow(), world.container.unsubscribe_tokens(), SLUG, contact.email or "",
        public_base_url=settings.public_base_url, sms_sender=settings.sms_sender,
    )  # fmt: skip
    assert isinstance(message, EmailMessage)
    world.container.send_now(message)
    return message.message_id


def test_a_bounce_of_a_message_sent_outside_campaigns_suppresses_its_address(
    world: World,
) -> None:
    ana, bo = world.contact(0), world.contact(1)
    tenant_id = _tenant_id(world)
    ana_message, bo_message = _courtesy_email(world, ana), _courtesy_email(world, bo)

    hard = Bounce(ana.email, BounceKind.HARD, "5.1.1", original_message_id=f"<{ana_message}>")
    result = _ingest(world, hard)
    assert result.status == "applied"
    assert "about a message sent outside campaigns" in result.notes
    assert [(s.reason, s.scope, s.channel, s.tenant_id) for s in _active(world)] == [
        (SuppressionReason.HARD_BOUNCE, SuppressionScope.ALL, Channel.EMAIL, tenant_id)
    ]
    # Suppressed, the address gets no further preference link.
    settings = world.container.settings
    again = preference_link_message(
        world.new_uow(), world.container.unsubscribe_tokens(), SLUG, ana.email or "",
        public_base_url=settings.public_base_url, sms_sender=settings.sms_sender,
    )  # fmt: skip
    assert again is None
    # A report naming someone else than the message's recipient is not acted on.
    other = Bounce("someone@else.example", BounceKind.HARD, "5.1.1", original_message_id=bo_message)
    assert _ingest(world, other).status == "unattributed"
    # A complaint about it suppresses and opens a case against the tenant.
    complaint = Complaint(bo.email, FeedbackType.ABUSE, original_message_id=bo_message)
    assert _ingest(world, complaint).status == "applied"
    assert sorted(s.reason for s in _active(world)) == sorted(
        [SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT]
    )
    with world.container.engine.connect() as conn:
        case = conn.execute(select(complaint_cases)).one()
    assert (case.tenant_id, case.delivery_id, case.feedback_type) == (tenant_id, None, "abuse")


def test_messages_sent_outside_campaigns_are_kept_thirty_days_and_once(world: World) -> None:
    ana = world.contact(0)
    first = _courtesy_email(world, ana)
    tenant_id = _tenant_id(world)
    with world.new_uow() as uow:
        kept = uow.signals.courtesy_by_message_id(first)
        assert kept is not None
        assert kept.tenant_id == tenant_id
        # Recorded again (a resend of the same message): the first record stays.
        uow.signals.record_courtesy(first, kept.tenant_id, b"\x00" * 16, kept.sent_at)
        uow.commit()
    with world.new_uow() as uow:
        assert uow.signals.courtesy_by_message_id(first) == kept
    # A message sent 31 days later forgets the old one (a new log prunes at its first record).
    later = kept.sent_at + COURTESY_KEPT + timedelta(days=1)
    log = CourtesyLog(world.new_uow, clock=lambda: later)
    log.record(EmailMessage(0, tenant_id, "b@x.test", "p0@example.com", b"", "2.later@x.test"))
    with world.new_uow() as uow:
        assert uow.signals.courtesy_by_message_id(first) is None
        assert uow.signals.courtesy_by_message_id("2.later@x.test") is not None
    stale = Bounce(ana.email, BounceKind.HARD, "5.1.1", original_message_id=first)
    assert _ingest(world, stale).status == "unattributed"


def test_erasing_a_person_forgets_the_messages_sent_to_them_outside_campaigns(
    world: World,
) -> None:
    ana, bo = world.contact(0), world.contact(1)
    ana_message, bo_message = _courtesy_email(world, ana), _courtesy_email(world, bo)
    with world.new_uow() as uow:
        keys = {p.id: uow.contacts.point_key(p, Channel.EMAIL) for p in (ana, bo)}
    assert _captured_to(world) == sorted([keys[ana.id], keys[bo.id]])  # the embedded channel's
    erase_contact(world.new_uow(), SLUG, ana.id)
    with world.new_uow() as uow:
        assert uow.signals.courtesy_by_message_id(ana_message) is None
        assert uow.signals.courtesy_by_message_id(bo_message) is not None
    # The copy the embedded channel kept of her preference link goes too (it has no delivery).
    assert _captured_to(world) == [keys[bo.id]]
    # A late bounce of the forgotten message is kept but acts on no one.
    late = Bounce(ana.email, BounceKind.HARD, "5.1.1", original_message_id=ana_message)
    assert _ingest(world, late).status == "unattributed"


def test_erasing_a_person_empties_the_payloads_of_what_they_sent(world: World) -> None:
    """An SMS keeps its provider's payload sealed (the sender's number, the text); erasing the
    sender empties it, and leaves the event's row and everyone else's payloads."""
    ana, bo = world.contact(1), world.contact(2)
    tenant_id = _tenant_id(world)
    sent = {}
    for person in (ana, bo):
        assert person.phone is not None
        word = Keyword(Channel.SMS, person.phone, "+15005550006", KeywordKind.OPT_OUT, "STOP", "en")
        parsed = ParsedInput(source=SignalSource.TWILIO, event_id=uuid.uuid4().hex, signals=(word,))
        payload = f"From={person.phone}&Body=STOP".encode()
        result = ingest(world.new_uow(), parsed, payload, "application/x-www-form-urlencoded",
                        policy=POLICY)  # fmt: skip
        assert result.inbound_id is not None
        sent[person.id] = (result.inbound_id, payload)
    with world.new_uow() as uow:
        events = {e.id: e for e in uow.signals.inbound(tenant_id=tenant_id)}
        for inbound_id, payload in sent.values():
            assert events[inbound_id].tenant_id == tenant_id
            assert uow.signals.payload(inbound_id) == payload

    erase_contact(world.new_uow(), SLUG, ana.id)

    with world.new_uow() as uow:
        assert uow.signals.payload(sent[ana.id][0]) is None
        assert uow.signals.payload(sent[bo.id][0]) == sent[bo.id][1]
        kept = {e.id: e for e in uow.signals.inbound(tenant_id=tenant_id)}
    assert kept[sent[ana.id][0]].status == events[sent[ana.id][0]].status  # the row stays
