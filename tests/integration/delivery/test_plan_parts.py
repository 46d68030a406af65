"""A large campaign planned in parts on PostgreSQL: the same rows and counts as one statement,
each recipient once, and a launch that fails after some parts committed leaves nothing that can
be sent and nothing that a second launch would plan twice."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, func, select
from tests.integration.delivery.conftest import SLUG, World
from tests.integration.helpers import grant

from consentry.domain.campaigns import AudienceFilter
from consentry.domain.consent import ConsentAction
from consentry.domain.delivery import CampaignStatus, InvalidCampaignTransition
from consentry.persistence.campaigns import SqlCampaigns
from consentry.persistence.deliveries import PlanSplit, SqlDeliveries
from consentry.persistence.tables import deliveries
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.campaigns import (
    CampaignInput,
    campaign_progress,
    change_campaign,
    create_campaign,
    launch_campaign,
)
from consentry.workers.inprocess import drain

# Every audience of two or more is split here, with pivots from all of its contacts.
IN_PARTS = PlanSplit(parts=3, min_part_rows=1, sample_percent=100)


def _uow(world: World, split: PlanSplit) -> SqlUnitOfWork:
    c = world.container
    return SqlUnitOfWork(c.engine, c.keys, refs=c.refs, plan_split=split)


@pytest.fixture
def people(world: World) -> dict[str, list[uuid.UUID]]:
    """Thirty people: most said yes, some withdrew, some never answered; a third in Canada."""
    out: dict[str, list[uuid.UUID]] = {"yes": [], "withdrawn": [], "never": [], "CA": []}
    for n in range(30):
        contact = world.contact(n, country="CA" if n % 3 == 0 else "US")
        if n % 3 == 0:
            out["CA"].append(contact.id)
        if n % 7 == 5:
            out["never"].append(contact.id)
            continue
        world.opt_in(contact)
        if n % 5 == 4:
            grant(world.new_uow, SLUG, str(contact.id), world.evidence,
                  action=ConsentAction.WITHDRAWN)  # fmt: skip
            out["withdrawn"].append(contact.id)
        else:
            out["yes"].append(contact.id)
    return out


@pytest.fixture
def inserts(world: World) -> Iterator[list[int]]:
    """How many planning statements (``INSERT INTO deliveries ... SELECT``) ran."""
    seen: list[int] = []
    engine: Engine = world.container.engine

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        head = statement.lstrip()[:200]  # PostgreSQL: WITH written AS (INSERT ...) SELECT ...
        if "INSERT INTO deliveries" in head and "SELECT" in statement:
            seen.append(1)

    event.listen(engine, "before_cursor_execute", count)
    yield seen
    event.remove(engine, "before_cursor_execute", count)


def _planned(world: World, campaign_id: uuid.UUID) -> dict[uuid.UUID, tuple[str, str | None]]:
    d = deliveries.c
    with world.container.engine.connect() as conn:
        rows = conn.execute(
            select(d.contact_id, d.status, d.reasons).where(d.campaign_id == campaign_id)
        ).all()
    planned = {r.contact_id: (r.status, r.reasons) for r in rows}
    assert len(planned) == len(rows)  # one row a recipient
    return planned


def _create(world: World, name: str, audience: AudienceFilter | None = None) -> uuid.UUID:
    campaign = CampaignInput(
        name=name, topic="promotions", template="spring", audience=audience or AudienceFilter()
    )
    return create_campaign(world.new_uow(), SLUG, campaign, actor="test").id


def _launch(world: World, campaign_id: uuid.UUID, split: PlanSplit) -> Any:
    review = world.container.composer().reviewer
    return launch_campaign(_uow(world, split), SLUG, str(campaign_id), review)


def test_parts_plan_the_rows_and_counts_of_one_statement(
    world: World, people: dict[str, list[uuid.UUID]], inserts: list[int], engine: Engine
) -> None:
    whole = _create(world, "whole")
    in_parts = _create(world, "in-parts")
    one = _launch(world, whole, PlanSplit())
    assert len(inserts) == 1
    inserts.clear()
    split = _launch(world, in_parts, IN_PARTS)
    # PostgreSQL plans three ranges at once; SQLite, with its one writer, plans in one statement.
    assert len(inserts) == (3 if engine.dialect.name == "postgresql" else 1)

    assert split.campaign.status is CampaignStatus.RUNNING
    assert split.by_status == one.by_status == {"queued": 21, "suppressed": 9}
    assert split.campaign.plan_counts == one.campaign.plan_counts
    assert split.campaign.plan_counts == {"ALLOW": 21, "CONSENT_WITHDRAWN": 5, "NO_CONSENT": 4}
    assert _planned(world, in_parts) == _planned(world, whole)
    queued = {c for c, (status, _) in _planned(world, in_parts).items() if status == "queued"}
    assert queued == set(people["yes"])


def test_parts_keep_the_audience_filter(
    world: World, people: dict[str, list[uuid.UUID]], inserts: list[int], engine: Engine
) -> None:
    canada = AudienceFilter(fields={"country": ("CA",)})
    launched = _launch(world, _create(world, "canada", canada), IN_PARTS)
    assert len(inserts) == (3 if engine.dialect.name == "postgresql" else 1)
    assert set(_planned(world, launched.campaign.id)) == set(people["CA"])
    assert sum(launched.by_status.values()) == len(people["CA"]) == 10


class _Boom(RuntimeError):
    pass


def _launch_failing_after_planning(
    world: World, campaign_id: uuid.UUID, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A launch in parts that fails once every part has planned, before it commits."""

    def failing_after(*_: Any) -> None:
        raise _Boom("the launch failed after planning")

    monkeypatch.setattr(SqlCampaigns, "set_planned", failing_after)
    with pytest.raises(_Boom):
        _launch(world, campaign_id, IN_PARTS)
    monkeypatch.undo()


@pytest.mark.parametrize("where", ["a part", "after planning"])
def test_a_failed_launch_sends_nothing_and_the_next_launch_plans_each_recipient_once(
    world: World,
    people: dict[str, list[uuid.UUID]],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
    where: str,
) -> None:
    campaign_id = _create(world, "interrupted")
    postgres = engine.dialect.name == "postgresql"
    if where == "a part":  # the last of the ranges to start fails (SQLite: the one statement)
        plan_rows = SqlDeliveries._plan_rows
        calls: list[int] = []
        lock = threading.Lock()

        def failing(self: SqlDeliveries, *args: Any) -> Any:
            with lock:
                calls.append(1)
                last = len(calls) == (3 if postgres else 1)
            if last:
                raise _Boom("a part failed")
            return plan_rows(self, *args)

        monkeypatch.setattr(SqlDeliveries, "_plan_rows", failing)
        with pytest.raises(_Boom):
            _launch(world, campaign_id, IN_PARTS)
        monkeypatch.undo()
    else:
        _launch_failing_after_planning(world, campaign_id, monkeypatch)

    left = _planned(world, campaign_id)
    if postgres:
        assert left  # parts on their own connections committed before the launch failed
        assert len(left) < 30 if where == "a part" else len(left) <= 30
    else:
        assert left == {}
    progress = campaign_progress(world.new_uow(), SLUG, str(campaign_id))
    assert progress.campaign.status is CampaignStatus.DRAFT
    assert progress.by_status == {}  # left-behind rows are not a draft's progress
    assert drain(world.container).claimed == 0  # a draft campaign's rows are never claimed
    assert world.container.outbox().list(None) == []

    relaunched = _launch(world, campaign_id, IN_PARTS)
    assert relaunched.campaign.status is CampaignStatus.RUNNING
    assert relaunched.by_status == {"queued": 21, "suppressed": 9}
    assert len(_planned(world, campaign_id)) == 30
    report = drain(world.container)
    assert (report.sent, report.refused) == (21, 0)
    assert len(world.container.outbox().list(None)) == 21
    with pytest.raises(InvalidCampaignTransition):
        _launch(world, campaign_id, IN_PARTS)
    with engine.connect() as conn:
        d = deliveries.c
        rows = conn.execute(select(func.count()).where(d.campaign_id == campaign_id)).scalar()
    assert rows == 30


def test_cancelling_a_draft_a_failed_launch_left_rows_for_removes_them(
    world: World,
    people: dict[str, list[uuid.UUID]],
    monkeypatch: pytest.MonkeyPatch,
    engine: Engine,
) -> None:
    campaign_id = _create(world, "abandoned")
    _launch_failing_after_planning(world, campaign_id, monkeypatch)
    assert bool(_planned(world, campaign_id)) is (engine.dialect.name == "postgresql")

    cancelled = change_campaign(world.new_uow(), SLUG, str(campaign_id), "cancel")
    assert cancelled.campaign.status is CampaignStatus.CANCELLED
    assert cancelled.by_status == {}
    assert _planned(world, campaign_id) == {}
    assert drain(world.container).claimed == 0
