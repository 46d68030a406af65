"""Claims: a campaign's untried deliveries by its cursor, everything else by the due index.

A plan writes no due-index entry for a row that has not been tried; claims walk each running
campaign in contact order from where the last claim stopped, and a claimed row's next attempt is
its lease's end, so a row whose worker stopped is claimed again by time."""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta

from sqlalchemy import Engine, select, update
from tests.integration.delivery.conftest import SLUG, World
from tests.integration.helpers import grant

from consentry.domain.campaigns import ClaimedDelivery
from consentry.domain.delivery import DeliveryStatus
from consentry.persistence.migrate import current_revision, downgrade, head_revision, upgrade
from consentry.persistence.tables import campaigns, deliveries
from consentry.services.campaigns import CampaignInput
from consentry.services.clock import utcnow
from consentry.services.messages import MessageRequest, send_message

D = deliveries.c
LEASE = timedelta(minutes=5)


def _campaign(world: World, people: int, name: str = "spring") -> tuple[uuid.UUID, list[uuid.UUID]]:
    contacts = [world.contact(n) for n in range(people)]
    for c in contacts:
        world.opt_in(c)
    campaign_id = world.launch(CampaignInput(name=name, topic="promotions", template="spring"))
    return campaign_id, sorted(c.id for c in contacts)


def _claim(
    world: World, owner: str, now: datetime, limit: int, campaign_id: uuid.UUID | None = None
) -> list[ClaimedDelivery]:
    with world.new_uow() as uow:
        claimed = uow.deliveries.claim(owner, now, now + LEASE, limit, campaign_id)
        uow.commit()
    return claimed


def _cursor(engine: Engine, campaign_id: uuid.UUID) -> uuid.UUID | None:
    with engine.connect() as conn:
        query = select(campaigns.c.claimed_through).where(campaigns.c.id == campaign_id)
        return conn.execute(query).scalar_one()  # type: ignore[no-any-return]


def test_untried_deliveries_are_claimed_in_contact_order_from_the_cursor(world: World) -> None:
    campaign_id, people = _campaign(world, 7)
    engine = world.container.engine
    now = utcnow()
    assert _cursor(engine, campaign_id) is None

    first = _claim(world, "w1", now, 3)
    assert sorted(d.contact_id for d in first) == people[:3]
    assert _cursor(engine, campaign_id) == people[2]
    second = _claim(world, "w2", now, 3, campaign_id)
    assert sorted(d.contact_id for d in second) == people[3:6]
    assert _cursor(engine, campaign_id) == people[5]
    with engine.connect() as conn:  # a claimed row is due again when its lease ends
        leased = conn.execute(
            select(D.next_attempt_at, D.lease_until).where(D.lease_owner == "w1")
        ).all()
    assert len(leased) == 3
    assert all(row.next_attempt_at == row.lease_until for row in leased)

    last = _claim(world, "w3", now, 3)
    assert [d.contact_id for d in last] == [people[6]]
    assert _claim(world, "w4", now, 3) == []  # every lease holds, nothing is left untried


def test_a_row_whose_worker_stopped_is_claimed_again_when_its_lease_ends(world: World) -> None:
    campaign_id, people = _campaign(world, 5)
    now = utcnow()
    gone = _claim(world, "gone", now, 2)
    assert len(_claim(world, "w2", now + LEASE / 2, 10)) == 3  # the rest, leased later
    assert _claim(world, "w3", now + LEASE - timedelta(seconds=1), 10) == []

    later = now + LEASE + timedelta(seconds=1)
    again = _claim(world, "w4", later, 10, campaign_id)
    assert sorted(d.id for d in again) == sorted(d.id for d in gone)
    assert {d.contact_id for d in again} == set(people[:2])


def test_refused_failed_and_cancelled_rows_leave_nothing_due(world: World) -> None:
    campaign_id, _people = _campaign(world, 4)
    now = utcnow()
    claimed = _claim(world, "w1", now, 4)
    ids = [d.id for d in claimed]
    with world.new_uow() as uow:
        uow.deliveries.refuse("w1", {ids[0]: ("CONSENT_WITHDRAWN",)}, now)
        uow.deliveries.fail_unsent("w1", {ids[1]: ("TEMPLATE_ERROR", "no such field")}, now)
        uow.deliveries.cancel_pending(campaign_id, now)
        uow.commit()
    with world.container.engine.connect() as conn:
        rows = conn.execute(select(D.status, D.next_attempt_at).where(D.id.in_(ids))).all()
    assert sorted(r.status for r in rows) == ["cancelled", "cancelled", "failed", "suppressed"]
    assert all(r.next_attempt_at is None for r in rows)
    assert _claim(world, "w2", now + 2 * LEASE, 10) == []


def test_transactional_messages_are_claimed_before_a_campaigns_untried_rows(
    world: World,
) -> None:
    _campaign(world, 3)
    contact = world.contact(50)
    grant(world.new_uow, SLUG, str(contact.id), world.evidence, topic="reminders")
    sent = send_message(
        world.new_uow(),
        SLUG,
        MessageRequest(
            contact=str(contact.id), template="reminder", data={"when": "Tuesday 9:00"},
            idempotency_key="booking-1",
        ),
    )  # fmt: skip
    assert sent.delivery.status is DeliveryStatus.QUEUED
    claimed = _claim(world, "w1", utcnow(), 1)
    assert [d.id for d in claimed] == [sent.delivery.id]
    assert claimed[0].campaign_id is None


def test_concurrent_claims_of_one_campaign_take_every_row_once(world: World) -> None:
    campaign_id, people = _campaign(world, 60)
    now = utcnow()
    taken: dict[str, list[uuid.UUID]] = {}
    errors: list[BaseException] = []

    def worker(owner: str) -> None:
        mine: list[uuid.UUID] = []
        try:
            while batch := _claim(world, owner, now, 4, campaign_id):
                mine += [d.contact_id for d in batch]
        except BaseException as exc:  # noqa: BLE001  (reported by the test thread)
            errors.append(exc)
        taken[owner] = mine

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    everything = [c for mine in taken.values() for c in mine]
    assert sorted(everything) == people  # each once, none left behind
    assert _cursor(world.container.engine, campaign_id) == people[-1]


def test_migration_0021_makes_rows_leased_before_it_due_when_their_lease_ends(
    world: World,
) -> None:
    campaign_id, people = _campaign(world, 3)
    engine = world.container.engine
    downgrade(engine, "0020")
    now = utcnow()
    try:
        assert current_revision(engine) == "0020"
        with engine.begin() as conn:  # a worker of the old code had leased the first row
            first = conn.execute(
                select(D.id).where(D.campaign_id == campaign_id, D.contact_id == people[0])
            ).scalar_one()
            conn.execute(
                update(deliveries)
                .where(D.id == first)
                .values(lease_owner="old", lease_until=now + LEASE, next_attempt_at=None)
            )
    finally:
        upgrade(engine)  # this database serves the tests after this one
    assert current_revision(engine) == head_revision()
    taken = _claim(world, "new", now + LEASE / 2, 10)
    assert sorted(d.contact_id for d in taken) == people[1:]
    again = _claim(world, "new", now + LEASE + timedelta(seconds=1), 10)
    assert [d.id for d in again] == [first]
