"""Campaigns end to end on the capture channel: plan, dispatch, compliance parts, refusals."""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import replace
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import pytest
from sqlalchemy import select, update
from tests.integration.delivery.conftest import SLUG, World
from tests.integration.helpers import grant

from consentry.domain.campaigns import ContentNotCompliant
from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, Evidence
from consentry.domain.delivery import CampaignStatus, DeliveryStatus, InvalidCampaignTransition
from consentry.domain.model import Channel
from consentry.persistence.tables import deliveries
from consentry.services.campaigns import (
    CampaignInput,
    campaign_progress,
    change_campaign,
    create_campaign,
    launch_campaign,
    simulate_campaign,
)
from consentry.services.clock import utcnow
from consentry.services.messages import TemplateInput, create_template
from consentry.workers.inprocess import drain


def _launch(world: World, name: str = "spring-2026", template: str = "spring") -> str:
    return str(world.launch(CampaignInput(name=name, topic="promotions", template=template)))


def test_a_campaign_reaches_exactly_the_people_who_said_yes(world: World) -> None:
    yes = [world.contact(n) for n in range(3)]
    for c in yes:
        world.opt_in(c)
    withdrawn = world.contact(10)
    world.opt_in(withdrawn)
    grant(world.new_uow, SLUG, str(withdrawn.id), world.evidence,
          action=ConsentAction.WITHDRAWN)  # fmt: skip
    never = world.contact(11)

    campaign = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name="spring", topic="promotions", template="spring"),
        actor="test",
    )  # fmt: skip
    sim = simulate_campaign(world.new_uow(), SLUG, str(campaign.id))
    assert (sim.total, sim.eligible) == (5, 3)
    assert sim.by_reason == {"ALLOW": 3, "CONSENT_WITHDRAWN": 1, "NO_CONSENT": 1}
    refused = {s.contact_id: s.reasons for s in sim.refused_sample}
    assert refused == {withdrawn.id: ("CONSENT_WITHDRAWN",), never.id: ("NO_CONSENT",)}
    # Simulating wrote nothing.
    with world.container.engine.connect() as conn:
        assert conn.execute(select(deliveries.c.id)).first() is None

    progress = launch_campaign(
        world.new_uow(), SLUG, str(campaign.id), world.container.composer().reviewer
    )
    assert progress.campaign.status is CampaignStatus.RUNNING
    assert progress.campaign.plan_counts == sim.by_reason
    assert progress.by_status == {"queued": 3, "suppressed": 2}
    # Launch reports what planning wrote; counting the rows again finds the same.
    assert campaign_progress(world.new_uow(), SLUG, str(campaign.id)).by_status == (
        progress.by_status
    )

    report = drain(world.container)
    assert (report.sent, report.refused) == (3, 0)
    done = campaign_progress(world.new_uow(), SLUG, str(campaign.id))
    assert done.by_status == {"sent": 3, "suppressed": 2}
    assert done.campaign.status is CampaignStatus.COMPLETED

    captured = world.container.outbox().list(None)
    assert sorted(m.recipient for m in captured) == [c.email for c in yes]
    raw = world.container.outbox().get(captured[0].id).raw
    mail = message_from_bytes(raw, policy=default_policy)
    assert mail["From"] == "Harbour Auto <harbour@harbour.example>"
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(mail["List-Unsubscribe"])
    assert "<https://consentry.example/u/" in unsubscribe
    assert "<mailto:unsubscribe+" in unsubscribe
    assert "DKIM-Signature" in mail
    assert "list-unsubscribe" in str(mail["DKIM-Signature"]).lower()
    text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "1 Dock Street" in text
    assert "https://consentry.example/u/" in text
    # The token is opaque: no id of the contact or tenant appears in it.
    token = unsubscribe.split("/u/", 1)[1].split(">", 1)[0]
    assert all(str(i.id).replace("-", "") not in token for i in yes)


def test_an_opt_out_after_planning_stops_the_delivery_at_dispatch(world: World) -> None:
    a, b = world.contact(1), world.contact(2)
    world.opt_in(a)
    world.opt_in(b)
    cid = _launch(world)
    grant(world.new_uow, SLUG, str(b.id), world.evidence, action=ConsentAction.WITHDRAWN)
    drain(world.container)
    with world.container.engine.connect() as conn:
        rows = dict(conn.execute(select(deliveries.c.contact_id, deliveries.c.reasons)).all())
        statuses = dict(conn.execute(select(deliveries.c.contact_id, deliveries.c.status)).all())
    assert statuses == {a.id: "sent", b.id: "suppressed"}
    assert rows[b.id] == "CONSENT_WITHDRAWN,"
    assert [m.recipient for m in world.container.outbox().list(None)] == [a.email]
    assert campaign_progress(world.new_uow(), SLUG, cid).campaign.status is CampaignStatus.COMPLETED


def test_pause_holds_deliveries_and_cancel_cancels_what_has_not_left(world: World) -> None:
    for n in range(4):
        world.opt_in(world.contact(n))
    cid = _launch(world)
    change_campaign(world.new_uow(), SLUG, cid, "pause")
    assert drain(world.container).claimed == 0
    assert world.container.outbox().list(None) == []
    change_campaign(world.new_uow(), SLUG, cid, "resume")
    change_campaign(world.new_uow(), SLUG, cid, "cancel")
    progress = campaign_progress(world.new_uow(), SLUG, cid)
    assert progress.by_status == {DeliveryStatus.CANCELLED.value: 4}
    assert drain(world.container).claimed == 0
    with pytest.raises(Exception, match="cannot resume"):
        change_campaign(world.new_uow(), SLUG, cid, "resume")


def test_a_second_launch_of_the_same_campaign_waits_and_is_refused(world: World) -> None:
    for n in range(3):
        world.opt_in(world.contact(n))
    campaign = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name="twice", topic="promotions", template="spring"),
        actor="test",
    )  # fmt: skip
    review = world.container.composer().reviewer
    first_inside = threading.Event()

    def slow_review(*args: Any) -> Any:
        first_inside.set()
        time.sleep(0.5)  # the first launch holds its transaction open while the second starts
        return review(*args)

    outcomes: dict[str, object] = {}

    def launch(name: str, reviewer: Any) -> None:
        try:
            outcomes[name] = launch_campaign(world.new_uow(), SLUG, str(campaign.id), reviewer)
        except Exception as exc:  # noqa: BLE001  (the outcome is what the test checks)
            outcomes[name] = exc

    first = threading.Thread(target=launch, args=("first", slow_review))
    first.start()
    assert first_inside.wait(10)
    launch("second", review)
    first.join(10)

    assert getattr(outcomes["first"], "by_status", None) == {"queued": 3}
    assert isinstance(outcomes["second"], InvalidCampaignTransition)
    with world.container.engine.connect() as conn:
        planned = conn.execute(
            select(deliveries.c.contact_id).where(deliveries.c.campaign_id == campaign.id)
        ).all()
    assert len(planned) == 3


def test_content_review_blocks_a_deceptive_campaign_with_reasons(world: World) -> None:
    create_template(
        world.new_uow(),
        SLUG,
        TemplateInput(
            name="tricky", topic="promotions", channel=Channel.EMAIL,
            subject="Re: your order", text="See https://bit.ly/abc for a deal",
        ),
    )  # fmt: skip
    campaign = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name="tricky", topic="promotions", template="tricky"),
        actor="test",
    )  # fmt: skip
    with pytest.raises(ContentNotCompliant) as caught:
        launch_campaign(
            world.new_uow(), SLUG, str(campaign.id), world.container.composer().reviewer
        )
    codes = {code for code, _ in caught.value.findings}
    assert {"DECEPTIVE_SUBJECT", "LINK_SHORTENER"} <= codes
    assert caught.value.code == "CONTENT_NOT_COMPLIANT"
    progress = campaign_progress(world.new_uow(), SLUG, str(campaign.id))
    assert progress.campaign.status is CampaignStatus.DRAFT
    assert progress.by_status == {}


def test_a_service_basis_does_not_authorise_marketing(world: World) -> None:
    c = world.contact(1)
    evidence = Evidence(method=ConsentMethod.API, source="crm", actor="crm-sync")
    grant(world.new_uow, SLUG, str(c.id), evidence, topic="all-service",
          basis=ConsentBasis.SERVICE_NECESSITY)  # fmt: skip
    cid = _launch(world)
    drain(world.container)
    assert campaign_progress(world.new_uow(), SLUG, cid).by_status == {"suppressed": 1}
    assert world.container.outbox().list(None) == []


def test_a_free_text_whatsapp_campaign_reaches_only_people_inside_their_window(
    world: World,
) -> None:
    create_template(
        world.new_uow(),
        SLUG,
        TemplateInput(name="wa-free", topic="promotions", channel=Channel.WHATSAPP,
                      text="Tyres are 10% off this week."),
    )  # fmt: skip
    wrote = world.contact(1, whatsapp="+16175550001")
    silent = world.contact(2, whatsapp="+16175550002")
    for c in (wrote, silent):
        world.opt_in(c, Channel.WHATSAPP)
    with world.new_uow() as uow:  # the person wrote in just now: their window is open
        key = uow.contacts.point_key(wrote, Channel.WHATSAPP)
        assert key is not None
        uow.signals.open_service_window(key, utcnow())
        uow.commit()

    campaign = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name="wa", topic="promotions", template="wa-free"),
        actor="test",
    )  # fmt: skip
    sim = simulate_campaign(world.new_uow(), SLUG, str(campaign.id))
    assert sim.by_reason == {"ALLOW": 1, "OUTSIDE_SERVICE_WINDOW": 1}
    progress = launch_campaign(
        world.new_uow(), SLUG, str(campaign.id), world.container.composer().reviewer
    )
    assert progress.by_status == {"queued": 1, "suppressed": 1}
    drain(world.container)
    assert [m.recipient for m in world.container.outbox().list(None)] == [wrote.whatsapp]


@pytest.mark.parametrize("left", [DeliveryStatus.SENDING, DeliveryStatus.UNKNOWN])
def test_a_message_still_leaving_or_left_unknown_counts_toward_the_frequency_cap(
    world: World, left: DeliveryStatus
) -> None:
    contact = world.contact(1)
    world.opt_in(contact)
    first = _launch(world, name="first")
    # Another worker holds it in flight, or crashed after handing it over (probably delivered).
    with world.container.engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.campaign_id == uuid.UUID(first))
            .values(status=left.value, updated_at=utcnow())
        )
    second = world.launch(
        CampaignInput(name="second", topic="promotions", template="spring", frequency_cap="1/24h")
    )
    drain(world.container, second)
    with world.container.engine.connect() as conn:
        row = conn.execute(
            select(deliveries.c.status, deliveries.c.reasons).where(
                deliveries.c.campaign_id == second
            )
        ).one()
    assert (row.status, row.reasons) == ("deferred", "FREQUENCY_CAP,")
    assert world.container.outbox().list(None) == []


def test_a_service_template_carrying_an_offer_is_refused(world: World) -> None:
    offer = TemplateInput(
        name="ready", topic="reminders", channel=Channel.EMAIL, subject="Your car is ready",
        text="Collect it today and use promo code TYRES for 20% off new tyres.",
    )  # fmt: skip
    with pytest.raises(ContentNotCompliant) as caught:
        create_template(world.new_uow(), SLUG, offer)
    assert {code for code, _ in caught.value.findings} == {"PROMOTIONAL_IN_SERVICE"}
    # Under a marketing topic the same words are an ordinary offer.
    create_template(world.new_uow(), SLUG, replace(offer, topic="promotions"))
