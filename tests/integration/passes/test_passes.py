"""Permission passes on SQLite and PostgreSQL: who is asked, what the gate refuses, renewing by
the link, and who lapses at the deadline."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from urllib.parse import parse_qs

import pytest
from sqlalchemy import select
from tests.integration.helpers import grant, person
from tests.integration.passes.conftest import PAGE, SLUG, World, after

from consentry.domain.campaigns import ListNotFound
from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, ConsentStatus
from consentry.domain.errors import TopicNotFound
from consentry.domain.imports import ImportNotFound
from consentry.domain.model import Channel
from consentry.domain.passes import (
    PassDeadlineInvalid,
    PassMessageInvalid,
    PassNotDue,
    PassNotFound,
    PassSourceInvalid,
    PassStatus,
)
from consentry.domain.signals import Keyword, KeywordKind, ParsedInput, SignalSource
from consentry.domain.suppression import SuppressionReason
from consentry.persistence.tables import consent_events, permission_passes
from consentry.services import pass_end, passes, reconfirming
from consentry.services.clock import utcnow
from consentry.services.consent import consent_history
from consentry.services.ledger import verify_ledger
from consentry.services.signals import IngestResult, SignalPolicy, ingest
from consentry.services.suppressions import add_suppression
from consentry.workers.inprocess import drain


def _state(
    world: World, contact_id: uuid.UUID, channel: Channel = Channel.EMAIL
) -> ConsentStatus | None:
    with world.new_uow() as uow:
        tenant = uow.tenants.by_slug(SLUG)
        topic = uow.topics.by_key(tenant.id, "promotions")
        state = uow.consent_states.get(tenant.id, contact_id, topic.id, channel)
        return None if state is None else state.status


def test_a_pass_asks_the_active_members_and_the_gate_still_decides(world: World) -> None:
    yes = [world.contact(n) for n in range(1, 4)]
    for c in yes:
        world.opt_in(c)
    never = world.contact(4)  # on the list without consent: not asked
    bounced = world.contact(5)
    world.opt_in(bounced)
    add_suppression(world.new_uow(), SLUG, address=bounced.email, channels=[Channel.EMAIL],
                    reason=SuppressionReason.HARD_BOUNCE)  # fmt: skip
    outside = world.contact(6)  # consents, but is not on the list
    world.opt_in(outside)
    listed = world.listed("spring", *yes, never, bounced)

    view = world.start(list=listed)
    assert view.permission_pass.status is PassStatus.RUNNING
    assert view.report.targeted == 4  # the three, and the suppressed one
    assert view.report.refused == {"SUPPRESSED_HARD_BOUNCE": 1}
    assert view.report.waiting == 3
    assert view.report.awaiting == 4

    drain(world.container)
    links = world.links()
    assert sorted(links) == sorted(c.email for c in yes)  # nobody else got anything
    report = passes.get_pass(world.new_uow(), SLUG, view.permission_pass.id).report
    assert (report.sent, report.waiting, report.failed) == (3, 0, 0)


def test_renewed_keep_their_consent_the_rest_lapse_and_withdrawals_stay(world: World) -> None:
    people = [world.contact(n) for n in range(1, 6)]
    for c in people:
        world.opt_in(c)
    keeps, keeps_too, silent, withdrew, signed_up_again = people
    view = world.start(list=world.listed("all", *people))
    pass_id = view.permission_pass.id
    drain(world.container)
    links = world.links()

    shown = reconfirming.read_reconfirmation(
        world.new_uow(), world.container.reconfirmation_tokens(), links[keeps.email]
    )
    assert shown.topic.key == "promotions"
    assert shown.deadline == view.permission_pass.deadline
    assert _state(world, keeps.id) is ConsentStatus.ACTIVE  # reading changed nothing
    for c in (keeps, keeps_too):
        reconfirming.renew(
            world.new_uow(), world.container.reconfirmation_tokens(), links[c.email], PAGE
        )
    # A link renews once.
    with pytest.raises(reconfirming.InvalidToken):
        reconfirming.renew(
            world.new_uow(), world.container.reconfirmation_tokens(), links[keeps.email], PAGE
        )
    grant(world.new_uow, SLUG, str(withdrew.id), world.evidence, action=ConsentAction.WITHDRAWN)
    with pytest.raises(reconfirming.InvalidToken):  # a withdrawal is not undone by the link
        reconfirming.renew(
            world.new_uow(), world.container.reconfirmation_tokens(), links[withdrew.email], PAGE
        )
    world.opt_in(signed_up_again)  # a new sign-up during the pass is a renewal too

    running = passes.get_pass(world.new_uow(), SLUG, pass_id).report
    assert (running.renewed, running.other, running.awaiting, running.lapsed) == (3, 1, 1, 0)

    deadline = view.permission_pass.deadline
    with pytest.raises(PassNotDue):
        pass_end.end_pass(world.new_uow(), SLUG, pass_id, now=deadline - timedelta(minutes=1))
    assert pass_end.end_due_passes(world.new_uow(), now=after(deadline)) == {pass_id: 1}
    assert pass_end.end_due_passes(world.new_uow(), now=after(deadline)) == {}  # once

    statuses = {c.email: _state(world, c.id) for c in people}
    assert statuses == {
        keeps.email: ConsentStatus.ACTIVE,
        keeps_too.email: ConsentStatus.ACTIVE,
        silent.email: ConsentStatus.LAPSED,
        withdrew.email: ConsentStatus.WITHDRAWN,
        signed_up_again.email: ConsentStatus.ACTIVE,
    }
    ended = passes.get_pass(world.new_uow(), SLUG, pass_id)
    assert ended.permission_pass.status is PassStatus.ENDED
    r = ended.report
    assert (r.targeted, r.sent, r.renewed, r.lapsed, r.other, r.awaiting) == (5, 5, 3, 1, 1, 0)

    # The renewal is in the history with its own evidence; the lapse names the pass.
    history = consent_history(world.new_uow(), SLUG, str(keeps.id))
    renewal = history[-1].event
    assert renewal.action is ConsentAction.GRANTED
    assert renewal.basis is ConsentBasis.EXPRESS
    assert renewal.evidence.source == "https://consentry.example/r"
    assert renewal.evidence.ip_address == PAGE.ip_address
    assert renewal.evidence.user_agent == PAGE.user_agent
    assert renewal.evidence.actor == f"permission_pass:{pass_id}"
    assert renewal.evidence.policy_document_id == view.permission_pass.disclosure_document_id
    assert renewal.evidence.disclosure_hash
    lapse = consent_history(world.new_uow(), SLUG, str(silent.id))[-1].event
    assert lapse.action is ConsentAction.LAPSED
    assert lapse.evidence.actor == f"permission_pass:{pass_id}"
    assert all(report.intact for report in verify_ledger(world.new_uow()))
    # After the deadline the links renew nothing.
    with pytest.raises(reconfirming.InvalidToken):
        reconfirming.read_reconfirmation(
            world.new_uow(), world.container.reconfirmation_tokens(), links[silent.email]
        )


def test_messages_not_sent_by_the_deadline_are_cancelled(world: World) -> None:
    a = world.contact(1)
    world.opt_in(a)
    view = world.start(list=world.listed("one", a))
    pass_end.end_pass(
        world.new_uow(), SLUG, view.permission_pass.id, now=after(view.permission_pass.deadline)
    )
    drain(world.container)
    assert world.links() == {}
    report = passes.get_pass(world.new_uow(), SLUG, view.permission_pass.id).report
    assert (report.cancelled, report.sent, report.lapsed) == (1, 0, 1)


def test_an_import_batch_pass_asks_only_that_batch(world: World) -> None:
    from tests.integration.imports.helpers import attestation, run, spec

    outside = world.contact(9)
    world.opt_in(outside)
    data = b"email\nnew1@example.com\nnew2@example.com\n"
    outcome = run(world.new_uow, SLUG, data, spec(attestation(world.evidence.policy_document_id)))
    import_id = outcome.record.id
    outcome.close()
    view = world.start(import_id=import_id)
    assert view.report.targeted == 2
    drain(world.container)
    assert sorted(world.links()) == ["new1@example.com", "new2@example.com"]
    pass_end.end_due_passes(world.new_uow(), now=after(view.permission_pass.deadline))
    assert _state(world, outside.id) is ConsentStatus.ACTIVE
    with world.container.engine.connect() as conn:
        lapsed = conn.execute(
            select(consent_events.c.contact_id).where(consent_events.c.action == "lapsed")
        ).scalars()
        assert len(list(lapsed)) == 2


def test_bad_input_is_refused_and_writes_nothing(world: World) -> None:
    a = world.contact(1)
    world.opt_in(a)
    listed = world.listed("one", a)
    now = utcnow()
    cases: list[tuple[type[Exception], dict[str, object]]] = [
        (PassDeadlineInvalid, {"list": listed, "deadline": now - timedelta(hours=1)}),
        (PassDeadlineInvalid, {"list": listed, "deadline": now + timedelta(days=91)}),
        (PassSourceInvalid, {}),
        (PassSourceInvalid, {"list": listed, "import_id": uuid.uuid4()}),
        (ListNotFound, {"list": "nope"}),
        (ImportNotFound, {"import_id": uuid.uuid4()}),
        (TopicNotFound, {"list": listed, "topic": "nope"}),
        (PassMessageInvalid, {"list": listed, "text": "Hello, no link here."}),
    ]
    for error, change in cases:
        with pytest.raises(error):
            world.start(**change)
    with world.container.engine.connect() as conn:
        assert conn.execute(select(permission_passes.c.id)).first() is None
    with pytest.raises(PassNotFound):
        passes.get_pass(world.new_uow(), SLUG, uuid.uuid4())


def test_an_sms_pass_texts_the_link_and_renews_by_it(world: World) -> None:
    ana = person(world.new_uow, SLUG, email="ana@example.com", phone="+447400123456",
                 country="GB")  # fmt: skip
    ben = person(world.new_uow, SLUG, email="ben@example.com", phone="+447400123457",
                 country="GB")  # fmt: skip
    for c in (ana, ben):
        world.opt_in(c, Channel.SMS)
    view = world.start(list=world.listed("texts", ana, ben), channel=Channel.SMS)
    drain(world.container)
    outbox = world.container.outbox()
    texts = {
        m.recipient: parse_qs(outbox.get(m.id).raw.decode())["Body"][0] for m in outbox.list(None)
    }
    assert sorted(texts) == ["+447400123456", "+447400123457"]
    for text in texts.values():
        assert text.startswith("Harbour Auto LLC: do you still want Promotions texts?")
        assert "Reply STOP to opt out." in text
    token = re.search(r"/r/([A-Za-z0-9_-]+)", texts["+447400123456"])
    assert token is not None
    tokens = world.container.reconfirmation_tokens()
    view_of = reconfirming.read_reconfirmation(world.new_uow(), tokens, token.group(1))
    assert view_of.channel is Channel.SMS
    reconfirming.renew(world.new_uow(), tokens, token.group(1), PAGE)
    pass_end.end_due_passes(world.new_uow(), now=after(view.permission_pass.deadline))
    assert _state(world, ana.id, Channel.SMS) is ConsentStatus.ACTIVE
    assert _state(world, ben.id, Channel.SMS) is ConsentStatus.LAPSED


def test_a_yes_text_renews_an_sms_pass_once_with_the_message_as_evidence(world: World) -> None:
    ana = person(world.new_uow, SLUG, email="ana@example.com", phone="+447400123456",
                 country="GB")  # fmt: skip
    ben = person(world.new_uow, SLUG, email="ben@example.com", phone="+447400123457",
                 country="GB")  # fmt: skip
    for c in (ana, ben):
        world.opt_in(c, Channel.SMS)
    view = world.start(list=world.listed("texts", ana, ben), channel=Channel.SMS)
    drain(world.container)
    [text] = [
        parse_qs(world.container.outbox().get(m.id).raw.decode())["Body"][0]
        for m in world.container.outbox().list(None)
        if m.recipient == "+447400123456"
    ]
    assert "Reply YES by" in text

    def yes(sid: str) -> IngestResult:
        word = Keyword(Channel.SMS, "+447400123456", "+15005550006", KeywordKind.OPT_IN, "Yes")
        parsed = ParsedInput(source=SignalSource.TWILIO, event_id=sid, signals=(word,))
        return ingest(world.new_uow(), parsed, b"Body=Yes", "application/x-www-form-urlencoded",
                      policy=SignalPolicy())  # fmt: skip

    first = yes("SM-yes-1")
    again = yes("SM-yes-2")  # a second YES renews nothing more

    assert first.replies == [
        "Harbour Auto: thank you, you will keep getting Promotions texts. Reply STOP to opt out."
    ]
    assert again.replies == []
    renewal = consent_history(world.new_uow(), SLUG, str(ana.id))[-1].event
    assert renewal.action is ConsentAction.GRANTED
    assert (renewal.evidence.method, renewal.evidence.inbound_message_id) == (
        ConsentMethod.KEYWORD, "SM-yes-1",
    )  # fmt: skip
    assert renewal.evidence.actor == f"permission_pass:{view.permission_pass.id}"
    pass_end.end_due_passes(world.new_uow(), now=after(view.permission_pass.deadline))
    assert _state(world, ana.id, Channel.SMS) is ConsentStatus.ACTIVE
    assert _state(world, ben.id, Channel.SMS) is ConsentStatus.LAPSED
