"""A window is sent in as many lanes as the channel has connections, and every answer is
recorded against its own delivery."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

from sqlalchemy import select
from tests.integration.delivery.conftest import SLUG, World

from consentry.domain.campaigns import Campaign
from consentry.domain.delivery import (
    DeliveryError,
    OutboundMessage,
    SendResult,
    TransientDeliveryError,
)
from consentry.domain.model import Channel
from consentry.persistence.tables import deliveries
from consentry.services.campaigns import CampaignInput, create_campaign, launch_campaign
from consentry.services.clock import utcnow
from consentry.services.dispatch import BatchReport, DispatchConfig, Dispatcher


class TwoConnections:
    """An email channel with two connections: answers slowly, refuses every fourth delivery
    for now, and notes how many sends overlapped."""

    channel = Channel.EMAIL
    concurrency = 2

    def __init__(self) -> None:
        self.sent: list[int] = []
        self.threads: set[str] = set()
        self.peak = 0
        self._running = 0
        self._lock = threading.Lock()

    def send(self, message: OutboundMessage) -> SendResult:
        with self._lock:
            self._running += 1
            self.peak = max(self.peak, self._running)
            self.sent.append(message.delivery_id)
            self.threads.add(threading.current_thread().name)
        time.sleep(0.02)
        with self._lock:
            self._running -= 1
        if message.delivery_id % 4 == 0:
            raise TransientDeliveryError("try later", provider_code="451")
        return SendResult(provider_message_id=f"provider-{message.delivery_id}")

    def close(self) -> None:
        pass


def launched(world: World, name: str, people: int) -> Campaign:
    """A running marketing email campaign to ``people`` who opted in."""
    for n in range(people):
        world.opt_in(world.contact(n))
    campaign = create_campaign(
        world.new_uow(), SLUG, CampaignInput(name=name, topic="promotions", template="spring"),
        actor="test",
    )  # fmt: skip
    launch_campaign(world.new_uow(), SLUG, str(campaign.id), world.container.composer().reviewer)
    return campaign


def dispatch_once(
    world: World, campaign: Campaign, channel: object, config: DispatchConfig | None = None
) -> BatchReport:
    """One claim of ``campaign`` sent through ``channel`` (a send-only fake: no webhooks)."""
    dispatcher = Dispatcher(
        world.container.uow,
        world.container.read_uow,
        {Channel.EMAIL: channel},  # type: ignore[dict-item]
        world.container.composer(),
        clock=utcnow,
        config=config,
    )
    try:
        return dispatcher.run_once(campaign.id)
    finally:
        dispatcher.close()


def assert_every_fourth_retried(world: World, handed_over: list[int], report: BatchReport) -> None:
    """The outcomes of the fakes below: every fourth delivery back in the queue, the rest sent."""
    with world.container.engine.connect() as conn:
        rows = conn.execute(
            select(deliveries.c.id, deliveries.c.status, deliveries.c.provider_message_id,
                   deliveries.c.error_code)
        ).all()  # fmt: skip
    assert sorted(r.id for r in rows) == sorted(handed_over)
    for row in rows:
        if row.id % 4 == 0:
            assert (row.status, row.provider_message_id, row.error_code) == ("queued", None, "451")
        else:
            assert (row.status, row.provider_message_id) == ("sent", f"provider-{row.id}")
    retried = sum(1 for r in rows if r.id % 4 == 0)
    assert (report.claimed, report.sent, report.retried) == (
        len(rows),
        len(rows) - retried,
        retried,
    )


def test_a_window_goes_out_in_one_lane_per_connection(world: World) -> None:
    campaign = launched(world, "lanes", 11)
    channel = TwoConnections()

    report = dispatch_once(world, campaign, channel, DispatchConfig(batch_size=50, window=8))

    assert channel.peak == 2  # never more sends at once than connections
    assert len(channel.threads) == 2
    assert threading.current_thread().name in channel.threads  # the dispatcher's is a lane
    assert sorted(channel.sent) == sorted(set(channel.sent))  # each delivery handed over once
    assert report.claimed == 11
    assert_every_fourth_retried(world, channel.sent, report)


class Batches(TwoConnections):
    """An email channel that takes a window at once (``send_many``), as the HTTP providers
    do; a message it cannot send is given back as an error, never raised."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[int]] = []

    def send(self, message: OutboundMessage) -> SendResult:
        raise AssertionError(f"{message.delivery_id}: a batch channel gets whole windows")

    def send_many(self, messages: list[OutboundMessage]) -> list[SendResult | DeliveryError]:
        self.batches.append([m.delivery_id for m in messages])
        return [
            TransientDeliveryError("try later", provider_code="451")
            if m.delivery_id % 4 == 0
            else SendResult(provider_message_id=f"provider-{m.delivery_id}")
            for m in messages
        ]


def test_a_channel_that_sends_batches_gets_each_window_at_once(world: World) -> None:
    campaign = launched(world, "batches", 11)
    channel = Batches()

    report = dispatch_once(world, campaign, channel, DispatchConfig(batch_size=50, window=8))

    assert [len(b) for b in channel.batches] == [8, 3]  # one call per window
    assert report.claimed == 11
    assert_every_fourth_retried(world, [i for batch in channel.batches for i in batch], report)


class Broken(Batches):
    def send_many(self, messages: list[OutboundMessage]) -> list[SendResult | DeliveryError]:
        raise RuntimeError(f"a bug in the adapter, {len(messages)} messages in hand")


def test_a_batch_channel_that_breaks_loses_no_outcome(world: World) -> None:
    campaign = launched(world, "broken", 3)

    report = dispatch_once(world, campaign, Broken())

    with world.container.engine.connect() as conn:
        statuses = conn.execute(select(deliveries.c.status)).scalars().all()
    assert statuses == ["failed"] * 3  # recorded, never left in flight
    assert (report.claimed, report.failed) == (3, 3)


class AllDelivered(Batches):
    def send_many(self, messages: list[OutboundMessage]) -> list[SendResult | DeliveryError]:
        self.batches.append([m.delivery_id for m in messages])
        return [SendResult(provider_message_id=f"provider-{m.delivery_id}") for m in messages]


def test_a_window_that_went_out_whole_is_recorded_in_full(world: World) -> None:
    campaign = launched(world, "whole", 5)
    before = utcnow()

    report = dispatch_once(world, campaign, AllDelivered())

    d = deliveries.c
    with world.container.engine.connect() as conn:
        rows = conn.execute(
            select(d.id, d.status, d.provider_message_id, d.error_code, d.error_detail,
                   d.next_attempt_at, d.sent_at, d.updated_at, d.lease_owner, d.lease_until)
        ).all()  # fmt: skip
    assert report.sent == len(rows) == 5
    (sent_at,) = {r.sent_at for r in rows}  # the window's one instant
    assert sent_at is not None
    assert sent_at >= before.replace(microsecond=0) - timedelta(seconds=1)
    for row in rows:
        assert (row.status, row.provider_message_id) == ("sent", f"provider-{row.id}")
        assert (row.error_code, row.error_detail, row.next_attempt_at) == (None, None, None)
        assert (row.updated_at, row.lease_owner, row.lease_until) == (sent_at, None, None)


def test_a_campaign_completes_on_the_claim_that_finds_nothing_more(world: World) -> None:
    campaign = launched(world, "done", 4)
    config = DispatchConfig(batch_size=4, window=4)

    def status() -> str:
        with world.new_uow() as uow:
            return uow.campaigns.get(campaign.tenant_id, campaign.id).status.value

    full = dispatch_once(world, campaign, AllDelivered(), config)  # a full claim: maybe more
    after_full = status()
    empty = dispatch_once(world, campaign, AllDelivered(), config)

    assert (full.sent, after_full) == (4, "running")
    assert (empty.claimed, status()) == (0, "completed")


def test_a_claim_takes_what_is_due_first_and_never_what_is_not(world: World) -> None:
    campaign = launched(world, "due", 8)
    now = utcnow()
    d = deliveries.c
    with world.container.engine.begin() as conn:
        ids = conn.execute(select(d.id).order_by(d.id)).scalars().all()
        # ids[0:3] not yet tried; a retry and a deferral that are due; two that are not yet
        plan = {
            ids[3]: ("queued", now - timedelta(minutes=5)),
            ids[4]: ("deferred", now - timedelta(minutes=1)),
            ids[5]: ("queued", now + timedelta(minutes=5)),
            ids[6]: ("deferred", now + timedelta(hours=8)),
            ids[7]: ("queued", now - timedelta(minutes=9)),
        }
        for delivery_id, (status, at) in plan.items():
            conn.execute(
                deliveries.update()
                .where(d.id == delivery_id)
                .values(status=status, next_attempt_at=at)
            )

    with world.new_uow() as uow:
        first = uow.deliveries.claim("w1", now, now + timedelta(minutes=2), 3, campaign.id)
        rest = uow.deliveries.claim("w2", now, now + timedelta(minutes=2), 50, campaign.id)
        uow.commit()

    assert {c.id for c in first} == {ids[3], ids[4], ids[7]}  # the due retries and deferral
    assert {c.id for c in rest} == {ids[0], ids[1], ids[2]}  # then the untried
    assert [c.id for c in first] == sorted(c.id for c in first)  # handed over in id order
