"""SmtpChannel against real aiosmtpd servers on 127.0.0.1."""

from __future__ import annotations

import smtplib
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

import pytest
from tests.integration.channels.servers import Mailbox, SmtpSink, Tls, unused_port

from consentry.channels.smtp import SmtpChannel, SmtpRelay
from consentry.domain.delivery import (
    EmailMessage,
    PermanentDeliveryError,
    ProviderSignal,
    SmsMessage,
    TransientDeliveryError,
)

TENANT = uuid.UUID("5f0c8a52-3d6e-4b1a-9c7f-2e8d4a6b1c30")
StartSmtp = Callable[..., SmtpSink]


def email(n: int = 1, rcpt: str = "anna@example.org") -> EmailMessage:
    message_id = f"{n}.reminder@mail.shop.test"
    data = (
        "From: Main Street Motors <hello@shop.test>\r\n"
        f"To: {rcpt}\r\n"
        f"Subject: Your appointment #{n}\r\n"
        f"Message-ID: <{message_id}>\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n"
        "\r\n"
        "Grüße aus der Werkstatt.\r\n"
        ".a line that starts with a dot (RFC 5321 4.5.2 transparency)\r\n"
        ".\r\n"
        "Reply STOP to opt out.\r\n"
    ).encode()
    return EmailMessage(n, TENANT, "bounces+1@shop.test", rcpt, data, message_id)


def relay(sink_or_port: SmtpSink | int, **options: Any) -> SmtpRelay:
    port = sink_or_port if isinstance(sink_or_port, int) else sink_or_port.port
    settings: dict[str, Any] = {"security": "none", "timeout": 5.0, "helo_name": "client.test"}
    return SmtpRelay("127.0.0.1", port, **(settings | options))


@pytest.fixture(params=["pipelining", "one command at a time"])
def mailbox(request: pytest.FixtureRequest) -> Mailbox:
    """Every test against a relay that offers PIPELINING (RFC 2920) and one that does not."""
    return Mailbox(pipelining=request.param == "pipelining")


@pytest.fixture
def sink(start_smtp: StartSmtp, mailbox: Mailbox) -> SmtpSink:
    return start_smtp(mailbox)


@pytest.fixture
def channel(sink: SmtpSink) -> Iterator[SmtpChannel]:
    smtp = SmtpChannel([relay(sink)])
    yield smtp
    smtp.close()


def test_messages_arrive_byte_exact_over_one_reused_connection(
    channel: SmtpChannel, mailbox: Mailbox
) -> None:
    first, second = email(1), email(2, "ben@example.net")

    results = [channel.send(first), channel.send(second)]

    assert [r.provider_message_id for r in results] == [first.message_id, second.message_id]
    assert [(m.mail_from, m.rcpt_tos, m.data) for m in mailbox.messages] == [
        (first.mail_from, [first.rcpt_to], first.data),
        (second.mail_from, [second.rcpt_to], second.data),
    ]
    assert mailbox.messages[0].peer == mailbox.messages[1].peer
    assert channel.verify_webhook("https://x.test/", {}, b"") is False
    assert channel.parse_webhook({}, b"anything") == []


def test_a_relay_offering_pipelining_gets_each_message_in_two_writes(
    channel: SmtpChannel, mailbox: Mailbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel.send(email(1))  # the connection and its EHLO
    writes: list[bytes] = []
    send = smtplib.SMTP.send

    def counted(self: smtplib.SMTP, data: bytes | str) -> None:
        writes.append(data if isinstance(data, bytes) else data.encode())
        send(self, data)

    monkeypatch.setattr(smtplib.SMTP, "send", counted)
    channel.send(email(2))

    if mailbox.pipelining:  # MAIL, RCPT and DATA together, then the message
        assert len(writes) == 2
        assert writes[0].count(b"\r\n") == 3
    else:
        assert len(writes) == 4
    assert writes[-1].endswith(b"\r\n.\r\n")
    assert [m.data for m in mailbox.messages] == [email(1).data, email(2).data]


@pytest.mark.parametrize(
    ("sender", "recipient"),
    [
        ("bounces+7@shop.test", "anna.lima+news@example.org"),
        ("bounces+7@shop.test", '"anna lima"@example.org'),  # quoted: smtplib's own quoting
        ("bounces+7@shop.test", "jürgen@müller.example"),  # SMTPUTF8
    ],
)
def test_envelope_addresses_arrive_exactly(
    start_smtp: StartSmtp, mailbox: Mailbox, sender: str, recipient: str
) -> None:
    sink = start_smtp(mailbox, enable_SMTPUTF8=True)
    smtp = SmtpChannel([relay(sink)])
    try:
        smtp.send(replace(email(3, recipient), mail_from=sender))
    finally:
        smtp.close()
    assert [(m.mail_from, m.rcpt_tos) for m in mailbox.messages] == [(sender, [recipient])]


@pytest.mark.parametrize(
    ("reply", "signal"),
    [
        ("550 5.1.1 <gone@example.org>: Recipient address rejected", ProviderSignal.HARD_BOUNCE),
        ("550 No such user here", ProviderSignal.HARD_BOUNCE),
        ("551 User not local; please try <x@y.test>", ProviderSignal.HARD_BOUNCE),
        ("553 5.1.3 Bad destination mailbox address syntax", ProviderSignal.HARD_BOUNCE),
        ("550 5.7.1 Relaying denied", None),
        ("554 5.7.1 Rejected as spam", None),
        ("550 5.1.8 Bad sender's system address", None),
    ],
)
def test_rcpt_5xx_is_permanent_and_user_unknown_a_hard_bounce(
    channel: SmtpChannel, mailbox: Mailbox, reply: str, signal: ProviderSignal | None
) -> None:
    mailbox.rcpt_replies["gone@example.org"] = reply

    with pytest.raises(PermanentDeliveryError) as caught:
        channel.send(email(1, "gone@example.org"))

    assert caught.value.signal == signal
    assert caught.value.provider_code == reply[:3]
    assert "gone@example.org" not in str(caught.value)  # no addresses in delivery records
    # The refused transaction was reset: the same connection carries the next message.
    channel.send(email(2))
    channel.send(email(3))
    assert [m.rcpt_tos for m in mailbox.messages] == [["anna@example.org"]] * 2
    assert mailbox.messages[0].peer == mailbox.messages[1].peer


@pytest.mark.parametrize(
    "reply",
    [
        "452 4.2.2 Mailbox full, try again later",
        "451 4.7.1 Greylisted, come back in 5 minutes",
        "421 4.3.2 Service shutting down",
        "552 5.2.2 Mailbox full",  # RFC 3463 says permanent; this product counts it as soft
        "552 Requested mail action aborted: exceeded storage allocation",
    ],
)
def test_temporary_and_mailbox_full_refusals_are_transient(
    channel: SmtpChannel, mailbox: Mailbox, reply: str
) -> None:
    mailbox.rcpt_replies["full@example.org"] = reply

    with pytest.raises(TransientDeliveryError) as caught:
        channel.send(email(1, "full@example.org"))

    assert caught.value.signal is None
    assert mailbox.messages == []
    channel.send(email(2))
    assert len(mailbox.messages) == 1


def test_data_refusals(channel: SmtpChannel, mailbox: Mailbox) -> None:
    mailbox.data_replies.extend(
        ["552 5.3.4 Message size exceeds fixed limit", "451 4.3.0 Try again", "550 5.1.1 Gone"]
    )

    with pytest.raises(PermanentDeliveryError) as too_big:
        channel.send(email(1))
    with pytest.raises(TransientDeliveryError):
        channel.send(email(2))
    with pytest.raises(PermanentDeliveryError) as gone:
        channel.send(email(3))

    assert (too_big.value.provider_code, too_big.value.signal) == ("552", None)
    assert gone.value.signal == ProviderSignal.HARD_BOUNCE
    channel.send(email(4))
    assert [m.data for m in mailbox.messages] == [email(4).data]


def test_a_connection_the_server_dropped_is_replaced(
    channel: SmtpChannel, mailbox: Mailbox
) -> None:
    mailbox.drop_after_message = True  # like an idle timeout between two messages

    for n in range(3):
        channel.send(email(n))

    assert [m.data for m in mailbox.messages] == [email(n).data for n in range(3)]
    assert len({m.peer for m in mailbox.messages}) == 3


def test_a_restarted_server_gets_the_next_message(
    start_smtp: StartSmtp, sink: SmtpSink, channel: SmtpChannel, mailbox: Mailbox
) -> None:
    channel.send(email(1))
    sink.stop()
    after = Mailbox()
    start_smtp(after, port=sink.port)

    channel.send(email(2))

    assert [m.data for m in after.messages] == [email(2).data]


def test_failover_to_the_next_relay(start_smtp: StartSmtp, mailbox: Mailbox) -> None:
    greylisting, second = Mailbox(), start_smtp(mailbox)
    greylisting.rcpt_replies["anna@example.org"] = "451 4.7.1 Greylisted"
    first = start_smtp(greylisting)
    relays = [relay(unused_port()), relay(first), relay(second)]
    smtp = SmtpChannel(relays)
    try:
        smtp.send(email(1))
        greylisting.rcpt_replies["anna@example.org"] = "550 5.1.1 No such user"
        with pytest.raises(PermanentDeliveryError):  # a 5xx is final: not tried elsewhere
            smtp.send(email(2))
    finally:
        smtp.close()

    assert [m.data for m in mailbox.messages] == [email(1).data]
    assert greylisting.messages == []


def test_no_reachable_relay_is_transient() -> None:
    silent = socket.create_server(("127.0.0.1", 0))  # accepts TCP, never greets
    smtp = SmtpChannel([relay(unused_port()), relay(silent.getsockname()[1], timeout=0.2)])
    try:
        with pytest.raises(TransientDeliveryError):
            smtp.send(email(1))
    finally:
        smtp.close()
        silent.close()


def test_starttls_and_auth(start_smtp: StartSmtp, mailbox: Mailbox, tls: Tls) -> None:
    mailbox.logins[b"shop"] = b"s3cret"
    sink = start_smtp(
        mailbox,
        tls_context=tls.server,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=mailbox.authenticate,
    )
    good = relay(
        sink, security="starttls", username="shop", password="s3cret", ssl_context=tls.client
    )
    channels = [
        SmtpChannel([good]),
        SmtpChannel([replace(good, password="wrong")]),
        # The system trust store does not know the self-signed certificate.
        SmtpChannel([replace(good, ssl_context=None)]),
    ]
    try:
        channels[0].send(email(1))
        for refused in channels[1:]:
            with pytest.raises(TransientDeliveryError):
                refused.send(email(2))
    finally:
        for smtp in channels:
            smtp.close()

    assert [(m.data, m.login) for m in mailbox.messages] == [(email(1).data, b"shop")]
    assert "s3cret" not in repr(good)


def test_implicit_tls(start_smtp: StartSmtp, mailbox: Mailbox, tls: Tls) -> None:
    sink = start_smtp(mailbox, ssl_context=tls.server)
    smtp = SmtpChannel([relay(sink, security="tls", ssl_context=tls.client)])
    try:
        smtp.send(email(1))
    finally:
        smtp.close()

    assert [m.data for m in mailbox.messages] == [email(1).data]


def test_sixteen_threads_share_four_connections(sink: SmtpSink, mailbox: Mailbox) -> None:
    smtp = SmtpChannel([relay(sink, max_connections=4)])
    per_thread, errors = 40, []

    def work(thread: int) -> None:
        try:
            for i in range(per_thread):
                smtp.send(email(thread * 1000 + i))
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        smtp.close()

    assert errors == []
    counts = Counter(m.data for m in mailbox.messages)
    assert sorted(counts) == sorted(email(t * 1000 + i).data for t in range(16) for i in range(40))
    assert set(counts.values()) == {1}
    assert len({m.peer for m in mailbox.messages}) <= 4


def test_wrong_message_kind_and_unsafe_configuration_are_refused(channel: SmtpChannel) -> None:
    sms = SmsMessage(1, TENANT, "+15558675310", "+15017122661", "hi", "key-1")
    with pytest.raises(PermanentDeliveryError):
        channel.send(sms)
    with pytest.raises(ValueError, match="TLS"):
        SmtpRelay("127.0.0.1", 25, security="none", username="u", password="p")


HEAD = b"From: a@shop.test\r\nTo: anna@example.org\r\nSubject: dots\r\n\r\n"


@pytest.mark.parametrize(
    "data",
    [
        HEAD + b".a first line with a dot\r\n..two dots\r\n.\r\nend\r\n",
        HEAD + b"no line break at the end\r\n.",
        b".the very first line\r\n\r\nbody\r\n",  # transparency from the first octet on
        HEAD + b"bare\nline feeds\n.and a dot\n",  # not CRLF: smtplib's own path
        HEAD + b"a bare\rcarriage return\r\n.dot\r\n",
    ],
)
def test_the_message_arrives_as_smtplib_would_send_it(
    channel: SmtpChannel, sink: SmtpSink, mailbox: Mailbox, data: bytes
) -> None:
    message = EmailMessage(1, TENANT, "bounces+1@shop.test", "anna@example.org", data, "1@x")
    with smtplib.SMTP("127.0.0.1", sink.port, "client.test", timeout=5.0) as plain:
        plain.sendmail(message.mail_from, [message.rcpt_to], message.data)

    channel.send(message)

    by_smtplib, ours = mailbox.messages
    assert ours.data == by_smtplib.data
    assert ours.data.startswith(data[:20])
