"""A signal names an address, not a tenant: finding its contacts must not scan every contact."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import event
from tests.integration.delivery.conftest import World

from consentry.domain.model import Channel
from consentry.services.clock import utcnow


def _plans(world: World, call: Any) -> list[str]:
    """The query plan of every statement ``call`` sends, as the database would run it."""
    engine = world.container.engine
    sent: list[tuple[str, Any]] = []

    def capture(_c: Any, _cur: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            sent.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with world.new_uow() as uow:
            call(uow)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    plans = []
    with engine.connect() as conn:
        postgres = engine.dialect.name == "postgresql"
        if postgres:  # a table this small would be scanned whatever indexes it has
            conn.exec_driver_sql("SET enable_seqscan = off")
        for statement, parameters in sent:
            prefix = "EXPLAIN " if postgres else "EXPLAIN QUERY PLAN "
            rows = conn.exec_driver_sql(prefix + statement, parameters)
            plan = "\n".join(str(r[-1]) for r in rows)
            if postgres:  # name the first column of each index the plan uses
                for index in re.findall(r"using (\w+) on contacts", plan):
                    first = conn.exec_driver_sql(
                        "SELECT a.attname FROM pg_index i"
                        " JOIN pg_class c ON c.oid = i.indexrelid"
                        " JOIN pg_attribute a ON a.attrelid = i.indrelid"
                        " AND a.attnum = i.indkey[0] WHERE c.relname = %(name)s",
                        {"name": index},
                    ).scalar_one()
                    plan += f"\n(index {index} leads with {first})"
            plans.append(plan)
        conn.rollback()
    return plans


def _assert_searched_by_address(plan: str) -> None:
    """The address is the index's search key: not a scan of the table, nor of a whole index
    filtered row by row."""
    assert "Seq Scan on contacts" not in plan, plan
    assert "SCAN contacts" not in plan.replace("SEARCH contacts", ""), plan
    # PostgreSQL also searches an index by a column that is not its first, reading all of it.
    for first in re.findall(r"\(index \w+ leads with (\w+)\)", plan):
        assert first in ("email_key", "phone_key", "whatsapp_key"), plan


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS, Channel.WHATSAPP])
def test_contacts_of_an_address_are_found_through_an_index(world: World, channel: Channel) -> None:
    contact = world.contact(7, whatsapp="+16175550007")
    with world.new_uow() as uow:
        key = uow.contacts.point_key(contact, channel)
    assert key is not None

    found: list[Any] = []
    plans = _plans(world, lambda uow: found.extend(uow.signals.contacts_with_point(channel, key)))
    assert found == [(contact.tenant_id, contact.id)]
    contact_plans = [p for p in plans if "contacts" in p]
    assert contact_plans, plans
    for plan in contact_plans:
        _assert_searched_by_address(plan)


def test_an_inbound_whatsapp_message_opens_the_window_through_an_index(world: World) -> None:
    contact = world.contact(8, whatsapp="+16175550008")
    with world.new_uow() as uow:
        key = uow.contacts.point_key(contact, Channel.WHATSAPP)
    assert key is not None

    def open_window(uow: Any) -> None:
        assert uow.signals.open_service_window(key, utcnow()) == 1

    plans = [p for p in _plans(world, open_window) if "contacts" in p]
    assert plans
    for plan in plans:
        _assert_searched_by_address(plan)
