"""WhatsApp free text goes only inside the 24-hour window a person opened, however the messages
waiting to leave happen to be batched together."""

from __future__ import annotations

from datetime import timedelta

from tests.integration.delivery.conftest import SLUG, World
from tests.integration.helpers import grant

from consentry.domain.model import Channel, Contact
from consentry.services.clock import utcnow
from consentry.services.messages import (
    MessageRequest,
    SentMessage,
    TemplateInput,
    create_template,
    send_message,
)
from consentry.workers.inprocess import drain


def _templates(world: World) -> None:
    create_template(
        world.new_uow(),
        SLUG,
        TemplateInput(name="wa-approved", topic="reminders", channel=Channel.WHATSAPP,
                      text="Reminder for {{ data.when }}", whatsapp_template="appointment_reminder",
                      whatsapp_parameters=("data.when",)),
    )  # fmt: skip
    create_template(
        world.new_uow(),
        SLUG,
        TemplateInput(name="wa-free", topic="reminders", channel=Channel.WHATSAPP,
                      text="Your car is ready."),
    )  # fmt: skip


def _person(world: World, n: int, wrote_hours_ago: float | None) -> Contact:
    contact = world.contact(n, whatsapp=f"+1617555{n:04d}")
    grant(world.new_uow, SLUG, str(contact.id), world.evidence, topic="reminders",
          channel=Channel.WHATSAPP)  # fmt: skip
    if wrote_hours_ago is not None:
        with world.new_uow() as uow:
            key = uow.contacts.point_key(contact, Channel.WHATSAPP)
            assert key is not None
            uow.signals.open_service_window(key, utcnow() - timedelta(hours=wrote_hours_ago))
            uow.commit()
    return contact


def _statuses(world: World, sent: list[SentMessage]) -> list[tuple[str, tuple[str, ...]]]:
    out = []
    with world.new_uow() as uow:
        for s in sent:
            d = uow.deliveries.get(s.delivery.tenant_id, s.delivery.id)
            out.append((d.status.value, d.reasons))
    return out


def test_free_text_whose_window_closed_is_refused_beside_an_approved_template(
    world: World,
) -> None:
    _templates(world)
    reminded = _person(world, 1, wrote_hours_ago=None)
    wrote = _person(world, 2, wrote_hours_ago=30)
    approved = send_message(
        world.new_uow(), SLUG,
        MessageRequest(contact=str(reminded.id), template="wa-approved", data={"when": "Mon"}),
    )  # fmt: skip
    # Queued 29 hours ago, inside the window then; it has closed since.
    free = send_message(
        world.new_uow(), SLUG, MessageRequest(contact=str(wrote.id), template="wa-free", data={}),
        now=utcnow() - timedelta(hours=29),
    )  # fmt: skip
    drain(world.container)
    assert _statuses(world, [approved, free]) == [
        ("sent", ()),
        ("suppressed", ("OUTSIDE_SERVICE_WINDOW",)),
    ]
    assert [m.recipient for m in world.container.outbox().list(None)] == [reminded.whatsapp]


def test_an_approved_template_goes_beside_free_text_to_someone_who_never_wrote(
    world: World,
) -> None:
    _templates(world)
    wrote = _person(world, 3, wrote_hours_ago=0.1)
    never = _person(world, 4, wrote_hours_ago=None)
    free = send_message(
        world.new_uow(), SLUG, MessageRequest(contact=str(wrote.id), template="wa-free", data={})
    )
    approved = send_message(
        world.new_uow(), SLUG,
        MessageRequest(contact=str(never.id), template="wa-approved", data={"when": "Mon"}),
    )  # fmt: skip
    drain(world.container)
    assert _statuses(world, [free, approved]) == [("sent", ()), ("sent", ())]
    assert sorted(m.recipient for m in world.container.outbox().list(None)) == sorted(
        [wrote.whatsapp, never.whatsapp]
    )
