"""Policy notices on SQLite and PostgreSQL: consents keep citing the version people saw, who a new
version concerns, what refuses a notice at send time, and accepting by the link."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select, update
from tests.integration.helpers import NOW, disclosure, grant, person
from tests.integration.notices.conftest import PAGE, SLUG, World

from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentStatus
from consentry.domain.errors import PolicyDocumentNotFound
from consentry.domain.model import BusinessProfile, Category, Channel, PolicyKind, TenantStatus
from consentry.domain.notices import (
    NoticeChannelInvalid,
    NoticeNotFound,
    NoticeNotNeeded,
    NoticeStatus,
    RecipientStatus,
)
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.persistence.tables import consent_events, policy_notice_recipients, tenants
from consentry.services import notice_acceptance, notices
from consentry.services.clock import utcnow
from consentry.services.compose.tokens import InvalidToken
from consentry.services.consent import consent_history
from consentry.services.contacts import erase_contact
from consentry.services.ledger import verify_ledger
from consentry.services.suppressions import add_suppression
from consentry.services.tenancy import (
    create_tenant,
    create_topic,
    draft_policy,
    list_policies,
    publish_policy,
)


def _rows(world: World) -> dict[str, int]:
    with world.container.engine.connect() as conn:
        return {
            "events": len(conn.execute(select(consent_events.c.id)).all()),
            "recipients": len(conn.execute(select(policy_notice_recipients.c.contact_id)).all()),
        }


def test_publishing_a_new_version_leaves_every_consent_citing_the_one_seen(world: World) -> None:
    ana = world.contact(1)
    event = world.opt_in(ana)
    v2 = world.publish(body="Offers, and now surveys too.")
    assert v2.version == 2
    assert world.cited(event.id) == world.v1.id
    history = consent_history(world.new_uow(), SLUG, str(ana.id))
    assert [
        (h.event.evidence.policy_document_id, h.event.evidence.disclosure_hash) for h in history
    ] == [(world.v1.id, world.v1.content_hash)]
    versions = list_policies(world.new_uow(), SLUG, PolicyKind.CONSENT_DISCLOSURE)
    assert [(d.version, d.body) for d in versions] == [
        (1, "You may send me offers."),
        (2, "Offers, and now surveys too."),
    ]


def test_a_notice_needs_a_published_later_version_of_the_tenant_by_email_or_sms(
    world: World,
) -> None:
    world.opt_in(world.contact(1))
    before = _rows(world)
    with pytest.raises(NoticeNotNeeded):
        world.notify(world.v1)
    draft = draft_policy(world.new_uow(), SLUG, kind=PolicyKind.CONSENT_DISCLOSURE,
                         title="Offers consent", body="Not yet.")  # fmt: skip
    with pytest.raises(PolicyDocumentNotFound):
        world.notify(draft)
    create_tenant(world.new_uow(), slug="other", name="Other",
                  profile=BusinessProfile(legal_name="Other Ltd", country="GB"))  # fmt: skip
    v2 = world.publish()
    with pytest.raises(PolicyDocumentNotFound):
        notices.create_notice(world.new_uow(), "other", v2.id, Channel.EMAIL, "test")
    with pytest.raises(NoticeChannelInvalid):
        world.notify(v2, channel=Channel.WHATSAPP)
    assert _rows(world) == before


def test_a_new_disclosure_concerns_the_consents_given_on_an_older_one(world: World) -> None:
    old = world.contact(1)
    world.opt_in(old)
    world.opt_in(old, topic="surveys")  # two consents, one notice
    confirmed = world.contact(2)  # confirmed opt-in: the request cited v1, the confirmation nothing
    grant(world.new_uow, SLUG, str(confirmed.id), world.evidence(),
          action=ConsentAction.REQUESTED)  # fmt: skip
    grant(world.new_uow, SLUG, str(confirmed.id), PAGE, action=ConsentAction.CONFIRMED,
          basis=ConsentBasis.DOUBLE_OPT_IN)  # fmt: skip
    withdrew = world.contact(3)
    world.opt_in(withdrew)
    grant(world.new_uow, SLUG, str(withdrew.id), PAGE, action=ConsentAction.WITHDRAWN)
    by_sms = world.contact(4)
    world.opt_in(by_sms, channel=Channel.SMS)  # another channel than the notice's
    v2 = world.publish()
    on_v2 = world.contact(5)
    world.opt_in(on_v2, document=v2)  # already saw the new words
    french = world.publish(body="Vous pouvez m'envoyer des offres.", locale="fr")  # version 3
    assert french.version == 3

    view = world.notify(v2)
    assert view.report.targeted == 2
    assert view.report.waiting == 2
    assert view.notice.status is NoticeStatus.SENDING
    world.send()
    assert sorted(world.outbox()) == ["p1@example.com", "p2@example.com"]
    # The French version concerns nobody: everyone saw English words.
    assert world.notify(french).report.targeted == 0
    done = world.report(view.notice.id)
    assert done.notice.status is NoticeStatus.DONE
    assert (done.report.sent, done.report.waiting, done.report.accepted) == (2, 0, 0)


def test_the_email_names_the_business_the_document_and_its_page(world: World) -> None:
    world.opt_in(world.contact(1))
    v2 = world.publish()
    world.notify(v2)
    world.send()
    text = world.outbox()["p1@example.com"]
    assert "Subject: Harbour Auto LLC has changed its Offers consent" in text
    assert f"https://consentry.example/d/{SLUG}/{v2.id}" in text
    assert "/n/" not in text  # acceptance was not asked for
    assert "1 Dock Street" in text


def test_a_privacy_policy_concerns_every_active_consent_on_the_channel(world: World) -> None:
    v1 = world.publish(PolicyKind.PRIVACY_POLICY, title="Privacy policy")
    customer = world.contact(1)
    world.opt_in(customer, topic="reminders")  # service messages only
    world.opt_in(customer)
    subscriber = world.contact(2)
    world.opt_in(subscriber, document=None)
    texted = world.contact(3)
    world.opt_in(texted, channel=Channel.SMS)
    world.contact(4)  # no consent at all
    v2 = world.publish(PolicyKind.PRIVACY_POLICY, title="Privacy policy")
    assert (v1.version, v2.version) == (1, 2)
    by_email = world.notify(v2)
    by_sms = world.notify(v2, channel=Channel.SMS)
    assert (by_email.report.targeted, by_sms.report.targeted) == (2, 1)
    world.send()
    outbox = world.outbox()
    assert sorted(outbox) == ["+16175550003", "p1@example.com", "p2@example.com"]
    assert "Harbour Auto: our Privacy policy has changed." in outbox["+16175550003"]
    assert "Reply STOP" in outbox["+16175550003"]


def test_a_marketing_opt_out_does_not_stop_a_notice_an_all_scope_suppression_does(
    world: World,
) -> None:
    people = [world.contact(n) for n in range(1, 5)]
    for p in people:
        world.opt_in(p)
    unsubscribed, bounced, erased, fine = people
    v2 = world.publish()
    view = world.notify(v2)  # planned before the suppressions: checked again at send time
    add_suppression(world.new_uow(), SLUG, address=unsubscribed.email, channels=[Channel.EMAIL],
                    reason=SuppressionReason.UNSUBSCRIBED,
                    scope=SuppressionScope.MARKETING)  # fmt: skip
    add_suppression(world.new_uow(), SLUG, address=bounced.email, channels=[Channel.EMAIL],
                    reason=SuppressionReason.HARD_BOUNCE)  # fmt: skip
    erase_contact(world.new_uow(), SLUG, erased.id)
    world.send()
    assert sorted(world.outbox()) == [unsubscribed.email, fine.email]
    report = world.report(view.notice.id).report
    assert report.targeted == 4
    assert report.sent == 2
    assert report.refused == {"SUPPRESSED_ERASED": 1, "SUPPRESSED_HARD_BOUNCE": 1}


def test_a_suspended_tenant_sends_no_notice_and_an_address_gone_is_refused(world: World) -> None:
    moved, stays = world.contact(1), world.contact(2)
    world.opt_in(moved)
    world.opt_in(stays)
    v2 = world.publish()
    view = world.notify(v2)
    with world.new_uow() as uow:
        tenant = uow.tenants.by_slug(SLUG)
        contact = uow.contacts.get(tenant.id, moved.id)
        uow.contacts.update(type(contact)(**{**_fields(contact), "email": "new@example.com"}))
        uow.commit()
    world.send()
    assert world.report(view.notice.id).report.refused == {"ADDRESS_MISSING": 1}
    later = world.notify(world.publish())
    with world.new_uow() as uow:
        uow.tenants.set_status(uow.tenants.by_slug(SLUG).id, TenantStatus.SUSPENDED.value, NOW)
        uow.commit()
    world.send()
    assert world.report(later.notice.id).report.refused == {"TENANT_NOT_ACTIVE": 1}


def _fields(contact: object) -> dict[str, object]:
    return {name: getattr(contact, name) for name in contact.__slots__}  # type: ignore[attr-defined]


def test_a_second_notice_reaches_only_those_not_reached_yet(world: World) -> None:
    first, bounced = world.contact(1), world.contact(2)
    world.opt_in(first)
    world.opt_in(bounced)
    add_suppression(world.new_uow(), SLUG, address=bounced.email, channels=[Channel.EMAIL],
                    reason=SuppressionReason.COMPLAINT)  # fmt: skip
    v2 = world.publish()
    world.notify(v2)
    world.send()
    late = world.contact(3)
    world.opt_in(late)
    again = world.notify(v2)
    # The one told is left out; the refused one and the newcomer are tried (again).
    assert again.report.targeted == 2
    world.send(again.notice.id)
    assert world.report(again.notice.id).report.refused == {"SUPPRESSED_COMPLAINT": 1}


def test_accepting_records_once_and_the_consents_now_cite_the_new_version(world: World) -> None:
    ana, ben = world.contact(1), world.contact(2)
    for topic in ("promotions", "surveys"):
        world.opt_in(ana, topic=topic)
    world.opt_in(ana, topic="promotions", channel=Channel.SMS)  # another channel: untouched
    world.opt_in(ben)
    v2 = world.publish()
    view = world.notify(v2, ask_acceptance=True)
    world.send()
    token = world.token(ana.email or "")
    tokens = world.container.notice_tokens()

    before = _rows(world)
    seen = notice_acceptance.read_acceptance(world.new_uow(), tokens, token)
    assert (seen.business_name, seen.document.id) == ("Harbour Auto LLC", v2.id)
    assert _rows(world) == before  # reading changes nothing

    accepted, events = notice_acceptance.accept(world.new_uow(), tokens, token, PAGE)
    assert accepted.notice.id == view.notice.id
    assert sorted(e.channel for e in events) == [Channel.EMAIL, Channel.EMAIL]
    for e in events:
        assert e.action is ConsentAction.GRANTED
        assert (e.evidence.policy_document_id, e.evidence.disclosure_hash) == (
            v2.id,
            v2.content_hash,
        )
        assert e.evidence.source == "https://consentry.example/n"
        assert e.evidence.actor == f"policy_notice:{view.notice.id}"
    for topic in ("promotions", "surveys"):
        state = world.state(ana, topic)
        assert state is not None
        assert state.status is ConsentStatus.ACTIVE
        assert world.cited(state.event_id) == v2.id
    sms = world.state(ana, channel=Channel.SMS)
    assert sms is not None
    assert world.cited(sms.event_id) == world.v1.id

    report = world.report(view.notice.id).report
    assert (report.sent, report.accepted) == (2, 1)
    with world.new_uow() as uow:
        tenant = uow.tenants.by_slug(SLUG)
        kept = json.loads(uow.notices.acceptance(tenant.id, view.notice.id, ana.id) or "{}")
    assert kept == {"source": PAGE.source, "ip_address": PAGE.ip_address,
                    "user_agent": PAGE.user_agent}  # fmt: skip
    with world.container.engine.connect() as conn:  # sealed at rest, like all personal data
        stored = conn.execute(select(policy_notice_recipients.c.acceptance_enc)).scalars().all()
    assert not [v for v in stored if v is not None and PAGE.ip_address.encode() in bytes(v)]
    assert [v for v in stored if v is not None]

    before = _rows(world)
    with pytest.raises(InvalidToken):
        notice_acceptance.accept(world.new_uow(), tokens, token, PAGE)
    with pytest.raises(InvalidToken):
        notice_acceptance.read_acceptance(world.new_uow(), tokens, token)
    assert _rows(world) == before
    assert all(report.intact for report in verify_ledger(world.new_uow()))

    # Erased, the person's acceptance keeps its time but loses its page, address and browser.
    erase_contact(world.new_uow(), SLUG, ana.id)
    with world.new_uow() as uow:
        tenant = uow.tenants.by_slug(SLUG)
        assert uow.notices.acceptance(tenant.id, view.notice.id, ana.id) is None
    assert world.report(view.notice.id).report.accepted == 1
    assert all(report.intact for report in verify_ledger(world.new_uow()))


def test_accepting_a_privacy_policy_records_it_without_touching_consent(world: World) -> None:
    ana = world.contact(1)
    world.opt_in(ana, topic="reminders", channel=Channel.SMS)
    world.publish(PolicyKind.PRIVACY_POLICY, title="Privacy policy")
    v2 = world.publish(PolicyKind.PRIVACY_POLICY, title="Privacy policy")
    view = world.notify(v2, ask_acceptance=True, channel=Channel.SMS)
    world.send()
    token = world.token(ana.phone or "")
    events_before = _rows(world)["events"]
    _view, events = notice_acceptance.accept(
        world.new_uow(), world.container.notice_tokens(), token, PAGE
    )
    assert events == []
    assert _rows(world)["events"] == events_before
    assert world.report(view.notice.id).report.accepted == 1


def test_a_link_does_not_accept_for_a_withdrawn_consent_or_without_asking(world: World) -> None:
    ana, ben = world.contact(1), world.contact(2)
    world.opt_in(ana)
    world.opt_in(ben)
    v2 = world.publish()
    world.notify(v2, ask_acceptance=True)
    world.send()
    token = world.token(ana.email or "")
    # Withdrawn after the notice: the acceptance is recorded, but consent is not given back.
    grant(world.new_uow, SLUG, str(ana.id), PAGE, action=ConsentAction.WITHDRAWN)
    _view, events = notice_acceptance.accept(
        world.new_uow(), world.container.notice_tokens(), token, PAGE
    )
    assert events == []
    state = world.state(ana)
    assert state is not None
    assert state.status is ConsentStatus.WITHDRAWN
    # A token of another notice's kind, or garbled, accepts nothing.
    with pytest.raises(InvalidToken):
        notice_acceptance.read_acceptance(
            world.new_uow(), world.container.notice_tokens(), token[:-2] + "AA"
        )
    with pytest.raises(InvalidToken):
        notice_acceptance.read_acceptance(
            world.new_uow(),
            world.container.notice_tokens(),
            token,
            now=utcnow() + timedelta(days=91),
        )


def test_a_whatsapp_opt_in_notice_goes_by_sms_and_acceptance_renews_the_whatsapp_consent(
    world: World,
) -> None:
    wording = world.publish(PolicyKind.WHATSAPP_OPT_IN, title="WhatsApp messages", body="v1")
    ana = world.contact(1, whatsapp="+16175550001")
    world.opt_in(ana, channel=Channel.WHATSAPP, document=wording)
    world.opt_in(ana)  # an email consent on the disclosure: not about WhatsApp
    v2 = world.publish(PolicyKind.WHATSAPP_OPT_IN, title="WhatsApp messages", body="v2")
    view = world.notify(v2, channel=Channel.SMS, ask_acceptance=True)
    assert view.report.targeted == 1
    world.send()
    token = world.token(ana.phone or "")
    _view, events = notice_acceptance.accept(
        world.new_uow(), world.container.notice_tokens(), token, PAGE
    )
    assert [(e.channel, e.evidence.policy_document_id) for e in events] == [
        (Channel.WHATSAPP, v2.id)
    ]


def test_a_sender_that_died_in_flight_leaves_its_recipients_to_be_sent_again(
    world: World,
) -> None:
    world.opt_in(world.contact(1))
    view = world.notify(world.publish())
    with world.container.engine.begin() as conn:  # as a sender killed after marking in flight
        conn.execute(
            update(policy_notice_recipients).values(
                status=RecipientStatus.SENDING.value,
                lease_owner="dead",
                lease_until=utcnow() - timedelta(seconds=1),
                message_id="notice.x@harbour.example",
            )
        )
    assert world.send().claimed == 0  # nothing queued until it is reaped
    sender = world.container.notice_sender()
    try:
        assert sender.reap() == 1
        assert sender.run_until_idle().sent == 1
    finally:
        sender.close()
    assert world.report(view.notice.id).report.sent == 1


def test_notices_of_one_tenant_are_not_another_tenants(world: World) -> None:
    world.opt_in(world.contact(1))
    view = world.notify(world.publish())
    create_tenant(world.new_uow(), slug="other", name="Other",
                  profile=BusinessProfile(legal_name="Other Ltd", country="GB"))  # fmt: skip
    with pytest.raises(NoticeNotFound):
        notices.get_notice(world.new_uow(), "other", view.notice.id)
    with pytest.raises(PolicyDocumentNotFound):
        notices.list_notices(world.new_uow(), "other", view.document.id)
    [listed] = notices.list_notices(world.new_uow(), SLUG, view.document.id)
    assert listed.notice.id == view.notice.id


def test_a_tenant_whose_key_fails_waits_and_the_other_tenants_notices_go(world: World) -> None:
    world.opt_in(world.contact(1))
    view = world.notify(world.publish())
    create_tenant(world.new_uow(), slug="dock", name="Dock", now=NOW,
                  profile=BusinessProfile(legal_name="Dock LLC", country="US"))  # fmt: skip
    evidence = disclosure(world.new_uow, "dock")
    create_topic(world.new_uow(), "dock", key="promotions", name="Promotions",
                 category=Category.MARKETING)  # fmt: skip
    someone = person(world.new_uow, "dock", email="d1@example.com", phone=None)
    grant(world.new_uow, "dock", str(someone.id), evidence)
    v2 = draft_policy(world.new_uow(), "dock", kind=PolicyKind.CONSENT_DISCLOSURE, title="C",
                      body="Other words.")  # fmt: skip
    v2 = publish_policy(world.new_uow(), "dock", v2.id)
    dock = notices.create_notice(world.new_uow(), "dock", v2.id, Channel.EMAIL, "test")
    with world.container.engine.begin() as conn:  # the second tenant's data key is damaged
        conn.execute(tenants.update().where(tenants.c.slug == "dock").values(data_key=b"broken"))

    world.send()  # does not raise: the first tenant's notice goes
    assert world.report(view.notice.id).report.sent == 1
    with world.container.engine.connect() as conn:
        waiting = (
            conn.execute(
                select(policy_notice_recipients.c.status).where(
                    policy_notice_recipients.c.notice_id == dock.notice.id
                )
            )
            .scalars()
            .all()
        )
    assert waiting == ["queued"]
