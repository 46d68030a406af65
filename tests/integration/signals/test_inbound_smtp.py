"""The inbound SMTP server on each database, spoken to over a real SMTP conversation: bounces to
a message's VERP return path, feedback-loop complaints, mailto unsubscribes, mail that is no
mail; and ``consentry inbound-mail`` taking one message on standard input."""

from __future__ import annotations

import base64
import re
import smtplib
import socket
from collections.abc import Iterator
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from tests.integration.delivery.conftest import SLUG, World
from typer.testing import CliRunner

from consentry.cli.app import app
from consentry.domain.model import Channel, Contact, PointKind
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.tables import (
    complaint_cases,
    consent_events,
    deliveries,
    inbound_events,
)
from consentry.services.campaigns import CampaignInput, create_campaign, launch_campaign
from consentry.services.clock import utcnow
from consentry.services.gate import explain_decision
from consentry.services.signals import message_id_from_verp
from consentry.services.suppressions import list_suppressions
from consentry.workers.inbound_smtp import make_controller
from consentry.workers.inprocess import drain

FIXTURES = Path(__file__).parents[2] / "fixtures" / "inbound_mail"
DOMAIN = "harbour.example"  # the world's sender domain
# A message that is no mail: binary bytes without a header section.
GARBAGE = b"\x89PNG\r\n\x1a\r\n\x00\x00\x00\rIHDR\x00\x00\x01\x00\r\nnot a mail message\r\n"


@pytest.fixture
def smtp_port(world: World) -> Iterator[int]:
    """The inbound server of the world's container, listening on a free local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    controller = make_controller(world.container, "127.0.0.1", port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


# --- the sending side ---------------------------------------------------------------------------


def sent(world: World, n: int = 2) -> list[tuple[Contact, str]]:
    """A campaign to ``n`` opted-in people, sent (captured); each with their Message-ID."""
    people = [world.contact(i) for i in range(n)]
    for p in people:
        world.opt_in(p)
    campaign = create_campaign(
        world.new_uow(),
        SLUG,
        CampaignInput(name="spring", topic="promotions", template="spring"),
        actor="test",
    )
    launch_campaign(world.new_uow(), SLUG, str(campaign.id), world.container.composer().reviewer)
    drain(world.container)
    with world.container.engine.connect() as conn:
        ids = dict(conn.execute(select(deliveries.c.contact_id, deliveries.c.message_id)).all())
    return [(p, ids[p.id]) for p in people]


def verp(message_id: str) -> str:
    """The return path the message left with (``SenderIdentity.return_path``)."""
    left, _, domain = message_id.partition("@")
    return f"bounces+{left}@{domain}"


def captured_email(world: World, contact: Contact) -> bytes:
    """The bytes of the email captured for ``contact``."""
    outbox = world.container.outbox()
    with world.container.engine.connect() as conn:
        delivery_id = conn.execute(
            select(deliveries.c.id).where(deliveries.c.contact_id == contact.id)
        ).scalar_one()
    [captured] = [m for m in outbox.list(None) if m.delivery_id == delivery_id]
    return outbox.get(captured.id).raw


# --- the receiving side -------------------------------------------------------------------------


def fixture(name: str, replace: dict[str, str] | None = None) -> bytes:
    """A recorded message with some strings replaced, as an MTA sends it: CRLF line ends."""
    text = (FIXTURES / name).read_text()
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def deliver(port: int, rcpt: str, raw: bytes, mail_from: str = "") -> tuple[int, str]:
    """One SMTP transaction, as a remote MTA makes it (a null sender for reports); the reply
    to RCPT when it is refused, else the reply to the end of DATA."""
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as smtp:
        assert smtp.ehlo("mx.example.net")[0] == 250
        assert smtp.mail(mail_from)[0] == 250
        code, reply = smtp.rcpt(rcpt)
        if code != 250:
            return code, reply.decode()
        code, reply = smtp.data(raw)
        return code, reply.decode()


def count(engine: Engine, table: object) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def delivery_status(world: World, contact: Contact) -> str:
    with world.container.engine.connect() as conn:
        return str(
            conn.execute(
                select(deliveries.c.status).where(deliveries.c.contact_id == contact.id)
            ).scalar_one()
        )


def reasons(world: World, contact: Contact, topic: str) -> tuple[str, ...]:
    """What the gate answers for an email to ``contact`` on ``topic`` now."""
    explained = explain_decision(world.new_uow(), SLUG, str(contact.id), topic, Channel.EMAIL)
    return explained.explanation.decision.reasons


def hard_bounce(contact: Contact, message_id: str) -> tuple[str, bytes]:
    """Postfix's DSN about ``contact``'s message, to the message's VERP return path. The
    returned headers name a Message-ID consentry never sent (a relay on the way rewrote it):
    the envelope recipient alone ties the report to the message."""
    assert contact.email is not None
    return_path = verp(message_id)
    raw = fixture(
        "postfix_hard_5.1.1.eml",
        {
            "ana.lima@example.net": contact.email,
            "bounces+4711.5f0c8a523d6e@bounce.acme-motors.example": return_path,
        },
    )
    return return_path, raw


# --- the tests ----------------------------------------------------------------------------------


def test_mail_for_anyone_but_the_handled_mailboxes_is_refused_at_rcpt(
    world: World, smtp_port: int
) -> None:
    raw = fixture("mailto_unsubscribe.eml")
    # Its own domain's other mailboxes, other domains, the percent hack, a bare local part.
    for rcpt in (
        f"someone@{DOMAIN}",
        "victim@example.org",
        f"bounces-x@{DOMAIN}",
        f"victim%example.org@{DOMAIN}",
        "unsubscribe",
    ):
        code, reply = deliver(smtp_port, rcpt, raw)
        assert code == 550, (rcpt, code, reply)
    assert count(world.container.engine, inbound_events) == 0


def test_a_dsn_to_the_verp_return_path_suppresses_the_address_for_the_tenant(
    world: World, smtp_port: int
) -> None:
    (ana, message_id), (bo, _) = sent(world)
    return_path, raw = hard_bounce(ana, message_id)
    assert message_id_from_verp(return_path) == message_id

    assert deliver(smtp_port, return_path, raw)[0] == 250

    assert delivery_status(world, ana) == "bounced"
    assert delivery_status(world, bo) == "sent"
    with world.new_uow() as uow:
        tenant = uow.tenants.by_slug(SLUG)
        ana_key = uow.contacts.point_key(ana, Channel.EMAIL)
    [suppression] = list_suppressions(world.new_uow(), SLUG)
    assert (suppression.tenant_id, suppression.point_key, suppression.channel) == (
        tenant.id,
        ana_key,
        Channel.EMAIL,
    )
    assert (suppression.reason, suppression.scope) == (
        SuppressionReason.HARD_BOUNCE,
        SuppressionScope.ALL,
    )
    # Every email of the tenant to the address stops, service messages too.
    assert "SUPPRESSED_HARD_BOUNCE" in reasons(world, ana, "promotions")
    assert "SUPPRESSED_HARD_BOUNCE" in reasons(world, ana, "reminders")
    assert "SUPPRESSED_HARD_BOUNCE" not in reasons(world, bo, "promotions")
    with world.new_uow() as uow:
        [record] = uow.signals.inbound()
        assert uow.signals.payload(record.id) == raw
    assert (record.status, record.tenant_id, record.kinds) == ("applied", tenant.id, "Bounce")
    assert ana.email is not None
    assert ana.email not in record.outcome


def test_the_same_dsn_sent_twice_is_applied_once(world: World, smtp_port: int) -> None:
    (ana, message_id), _ = sent(world)
    return_path, raw = hard_bounce(ana, message_id)

    assert deliver(smtp_port, return_path, raw)[0] == 250
    # The sender did not hear the 250 and tries again: accepted, and nothing more happens.
    assert deliver(smtp_port, return_path, raw)[0] == 250

    assert count(world.container.engine, inbound_events) == 1
    assert len(list_suppressions(world.new_uow(), SLUG)) == 1
    assert delivery_status(world, ana) == "bounced"


def test_an_abuse_report_suppresses_the_complainant_and_opens_a_case(
    world: World, smtp_port: int
) -> None:
    _, (bo, message_id) = sent(world)
    assert bo.email is not None
    raw = fixture(
        "arf_abuse_rfc5965.eml",
        {
            "gil.henriques@example.com": bo.email,
            "bounces+4716.5f0c8a523d6e@bounce.acme-motors.example": verp(message_id),
            "4716.5f0c8a523d6e@acme-motors.example": message_id,
        },
    )

    assert deliver(smtp_port, f"fbl@{DOMAIN}", raw, mail_from="abusedesk@example.com")[0] == 250

    assert delivery_status(world, bo) == "complained"
    [suppression] = list_suppressions(world.new_uow(), SLUG)
    assert (suppression.reason, suppression.scope, suppression.channel) == (
        SuppressionReason.COMPLAINT,
        SuppressionScope.ALL,
        Channel.EMAIL,
    )
    assert "SUPPRESSED_COMPLAINT" in reasons(world, bo, "reminders")
    with world.container.engine.connect() as conn:
        case = conn.execute(select(complaint_cases)).one()
    assert (case.contact_id, case.feedback_type, case.status, case.source) == (
        bo.id,
        "abuse",
        "open",
        "inbound_smtp",
    )


def test_a_mailto_unsubscribe_withdraws_the_topic_of_the_link(world: World, smtp_port: int) -> None:
    (ana, _), (bo, _) = sent(world)
    assert reasons(world, ana, "promotions") == ()
    # The List-Unsubscribe mailto address of the email Ana received.
    received = message_from_bytes(captured_email(world, ana), policy=policy.default)
    mailto = re.search(r"<mailto:([^>]+)>", str(received["List-Unsubscribe"]))
    assert mailto is not None
    address = mailto.group(1)
    local, _, domain = address.partition("@")
    token = local.removeprefix("unsubscribe+")
    assert (local.startswith("unsubscribe+"), domain) == (True, DOMAIN)
    claims = world.container.unsubscribe_tokens().read(token, utcnow())
    assert claims.contact_id == ana.id
    recorded = re.search(r"unsubscribe\+[\w-]+@[\w.-]+", fixture("mailto_unsubscribe.eml").decode())
    assert recorded is not None
    assert ana.email is not None
    raw = fixture(
        "mailto_unsubscribe.eml", {recorded.group(): address, "ivo.jardim@example.com": ana.email}
    )

    assert deliver(smtp_port, address, raw, mail_from=ana.email)[0] == 250

    assert "CONSENT_WITHDRAWN" in reasons(world, ana, "promotions")
    assert reasons(world, bo, "promotions") == ()
    # An unsubscribe is no bounce: the address still gets service email.
    assert list_suppressions(world.new_uow(), SLUG) == []
    with world.new_uow() as uow:
        [record] = uow.signals.inbound()
    assert record.kinds == "MailtoUnsubscribe"

    # The mail client sends it again: the topic is withdrawn already, the ledger gets no
    # second event.
    ledger = count(world.container.engine, consent_events)
    assert deliver(smtp_port, address, raw, mail_from=ana.email)[0] == 250
    # A token nobody minted (of the right length) is taken, since the sender could do nothing
    # with a refusal, and changes nothing.
    forged = base64.urlsafe_b64encode(bytes(102)).rstrip(b"=").decode()
    assert deliver(smtp_port, f"unsubscribe+{forged}@{DOMAIN}", raw)[0] == 250
    assert count(world.container.engine, consent_events) == ledger
    assert reasons(world, bo, "promotions") == ()


def test_mail_that_is_not_mail_is_refused_and_kept_as_rejected(
    world: World, smtp_port: int
) -> None:
    code, reply = deliver(smtp_port, f"postmaster@{DOMAIN}", GARBAGE)

    assert 500 <= code < 600, (code, reply)
    with world.new_uow() as uow:
        [record] = uow.signals.inbound()
        kept = uow.signals.payload(record.id)
    assert (record.status, record.source.value, record.tenant_id) == (
        "rejected",
        "inbound_smtp",
        None,
    )
    assert kept == GARBAGE
    assert record.outcome


# --- consentry inbound-mail ---------------------------------------------------------------------

# The keys of the ``keys`` fixture, given to the command as settings.
MASTER_KEY, INDEX_KEY = b"\x01" * 32, b"\x02" * 32


def inbound_mail(engine: Engine, tmp_path: Path, rcpt: str, raw: bytes) -> tuple[int, str]:
    """``consentry inbound-mail --rcpt <rcpt>`` with ``raw`` on standard input, against the
    test's database; (exit code, output)."""
    url = engine.url.render_as_string(hide_password=False)
    env = {
        "CONSENTRY_MASTER_KEY": base64.b64encode(MASTER_KEY).decode(),
        "CONSENTRY_INDEX_KEY": base64.b64encode(INDEX_KEY).decode(),
        "CONSENTRY_KEY_FILE": None,
        "CONSENTRY_DATA_DIR": None,
        "CONSENTRY_DATABASE_URL": None,
    }
    result = CliRunner().invoke(
        app,
        [
            "--data-dir",
            str(tmp_path / "cli"),
            "--database-url",
            url,
            "inbound-mail",
            "--rcpt",
            rcpt,
        ],
        input=raw,
        env=env,
        catch_exceptions=False,
    )
    return result.exit_code, result.output


def test_inbound_mail_takes_a_dsn_from_stdin_and_refuses_garbage(
    world: World, engine: Engine, keys: FileKeyRing, tmp_path: Path
) -> None:
    same = FileKeyRing({1: MASTER_KEY}, 1, INDEX_KEY)
    assert same.blind_index(PointKind.EMAIL, "a@example.com") == keys.blind_index(
        PointKind.EMAIL, "a@example.com"
    )
    (ana, message_id), _ = sent(world)
    return_path, raw = hard_bounce(ana, message_id)

    code, output = inbound_mail(engine, tmp_path, return_path, raw)
    assert code == 0, output
    assert delivery_status(world, ana) == "bounced"
    assert [s.reason for s in list_suppressions(world.new_uow(), SLUG)] == [
        SuppressionReason.HARD_BOUNCE
    ]

    code, output = inbound_mail(engine, tmp_path, f"bounces@{DOMAIN}", GARBAGE)
    assert code == 65, output  # EX_DATAERR: the MTA bounces it rather than retrying
    with world.new_uow() as uow:
        assert [r.status for r in uow.signals.inbound()] == ["rejected", "applied"]
