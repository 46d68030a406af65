"""Erasing a person stops their messages not yet sent and drops what was sealed about them in
messages, captured copies, notice acceptances and lists; other people's stay as they were."""

from __future__ import annotations

from sqlalchemy import select
from tests.integration.delivery.conftest import SLUG, World
from tests.integration.helpers import grant

from consentry.domain.consent import ConsentBasis, ConsentMethod, Evidence
from consentry.persistence.tables import captured_messages, contact_list_members, deliveries
from consentry.services.campaigns import CampaignInput, create_list
from consentry.services.contacts import erase_contact
from consentry.services.messages import MessageRequest, send_message
from consentry.workers.inprocess import drain

_SERVICE = Evidence(method=ConsentMethod.API, source="crm", actor="crm-sync")


def test_erasure_stops_pending_messages_and_drops_their_sealed_data(world: World) -> None:
    ana, bo = world.contact(0), world.contact(1)
    for person in (ana, bo):
        world.opt_in(person)
        grant(
            world.new_uow, SLUG, str(person.id), _SERVICE,
            topic="reminders", basis=ConsentBasis.SERVICE_NECESSITY,
        )  # fmt: skip

    def remind(person_id: str, when: str) -> int:
        request = MessageRequest(person_id, "reminder", {"when": when}, None)
        return send_message(world.new_uow(), SLUG, request).delivery.id

    sent = {remind(str(ana.id), "Monday 9:00"), remind(str(bo.id), "Monday 10:00")}
    drain(world.container)  # both sent, and captured by the embedded channel
    waiting_ana, waiting_bo = remind(str(ana.id), "Friday 9:00"), remind(str(bo.id), "Friday 10:00")
    create_list(world.new_uow(), SLUG, "regulars", [ana.id, bo.id])
    world.launch(
        CampaignInput(name="spring", topic="promotions", template="spring", list="regulars")
    )

    with world.container.engine.connect() as conn:
        captured_before = conn.execute(select(captured_messages.c.delivery_id)).scalars().all()
    assert sent <= set(captured_before)

    erase_contact(world.new_uow(), SLUG, ana.id)

    with world.container.engine.connect() as conn:
        rows = {
            r.id: r
            for r in conn.execute(
                select(
                    deliveries.c.id, deliveries.c.contact_id, deliveries.c.campaign_id,
                    deliveries.c.status, deliveries.c.reasons, deliveries.c.variables_enc,
                )
            )
        }  # fmt: skip
        captured_after = set(conn.execute(select(captured_messages.c.delivery_id)).scalars())
        members = set(conn.execute(select(contact_list_members.c.contact_id)).scalars())

    anas = {i: r for i, r in rows.items() if r.contact_id == ana.id}
    bos = {i: r for i, r in rows.items() if r.contact_id == bo.id}
    assert len(anas) == len(bos) == 3  # sent, waiting, and the campaign's
    # Ana: what had not left is stopped and says why; what left stays recorded as sent.
    for i, r in anas.items():
        if i in sent:
            assert r.status == "sent"
        else:
            assert (r.status, r.reasons) == ("suppressed", "SUPPRESSED_ERASED,")
        assert r.variables_enc is None
    assert waiting_ana in anas
    assert anas[waiting_ana].campaign_id is None
    # Her captured copies are gone, Bo's are kept; she left the list, he did not.
    assert not captured_after & set(anas)
    assert captured_after & set(bos)
    assert members == {bo.id}
    # Bo: untouched.
    assert bos[waiting_bo].status == "queued"
    assert bos[waiting_bo].variables_enc is not None
    assert {r.status for i, r in bos.items() if i not in sent} == {"queued"}

    # Nothing more leaves for her; Bo's messages still go.
    drain(world.container)
    with world.container.engine.connect() as conn:
        statuses = dict(
            conn.execute(
                select(deliveries.c.id, deliveries.c.status).where(
                    deliveries.c.id.in_(list(anas) + list(bos))
                )
            ).all()
        )
    assert {statuses[i] for i in anas if i not in sent} == {"suppressed"}
    assert {statuses[i] for i in bos} == {"sent"}
