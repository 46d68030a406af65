"""Inbound mail parsing: recorded-style DSNs, ARF reports and mailto unsubscribes, and garbage."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.channels.inbound_mail import parse_inbound_mail
from consentry.domain.errors import InvalidInput
from consentry.domain.signals import (
    Bounce,
    BounceKind,
    Complaint,
    FeedbackType,
    MailtoUnsubscribe,
    ParsedInput,
    SignalSource,
    Unrecognised,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "inbound_mail"
VERP = "bounces+4711.5f0c8a523d6e@bounce.acme-motors.example"


def raw(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def parse(name: str, rcpt: str = VERP) -> ParsedInput:
    return parse_inbound_mail(raw(name), [rcpt])


def only(parsed: ParsedInput) -> object:
    assert len(parsed.signals) == 1
    return parsed.signals[0]


def test_postfix_hard_bounce() -> None:
    parsed = parse("postfix_hard_5.1.1.eml")
    assert parsed.source is SignalSource.INBOUND_SMTP
    assert parsed.event_id == "20250114101244.4YQ2cL1xKzz9sWn@relay1.consentry.example"
    bounce = only(parsed)
    assert isinstance(bounce, Bounce)
    assert bounce.recipient == "ana.lima@example.net"
    assert bounce.kind is BounceKind.HARD
    assert bounce.status == "5.1.1"
    assert bounce.diagnostic.startswith("smtp; 550 5.1.1 <ana.lima@example.net>: Recipient")
    assert "\n" not in bounce.diagnostic
    assert bounce.original_message_id == "4711.5f0c8a523d6e@acme-motors.example"
    assert bounce.reporting_mta == "relay1.consentry.example"
    assert bounce.original_envelope_id is None
    assert bounce.return_path == VERP


def test_gmail_hard_bounce_returns_the_whole_message() -> None:
    parsed = parse("gmail_hard_5.1.1.eml")
    assert parsed.event_id == "67863a3d.050a0220.2f4c1d.7b19.GMR@mx.google.com"
    bounce = only(parsed)
    assert isinstance(bounce, Bounce)
    assert bounce.recipient == "bruno.costa.nosuchuser@gmail.com"
    assert bounce.kind is BounceKind.HARD
    assert bounce.original_message_id == "4712.5f0c8a523d6e@acme-motors.example"
    assert bounce.reporting_mta == "googlemail.com"


def test_delayed_is_not_a_bounce() -> None:
    bounce = only(parse("exim_delayed_4.2.2.eml"))
    assert isinstance(bounce, Bounce)
    assert bounce.kind is BounceKind.DELAYED
    assert bounce.status == "4.2.2"
    assert bounce.recipient == "carla.dias@example.org"
    assert bounce.original_message_id == "4713.5f0c8a523d6e@acme-motors.example"


def test_mailbox_full_is_soft_and_keeps_the_envelope_id() -> None:
    bounce = only(parse("exchange_mailbox_full_5.2.2.eml"))
    assert isinstance(bounce, Bounce)
    assert bounce.kind is BounceKind.SOFT
    assert bounce.status == "5.2.2"
    assert bounce.original_envelope_id == "4714.5f0c8a523d6e"
    assert bounce.original_message_id == "4714.5f0c8a523d6e@acme-motors.example"


def test_policy_rejection_gives_one_bounce_per_recipient() -> None:
    parsed = parse("policy_5.7.1_two_recipients.eml")
    assert [(b.recipient, b.kind, b.status) for b in parsed.signals if isinstance(b, Bounce)] == [
        ("eva.faria@example.com", BounceKind.POLICY, "5.7.1"),
        ("fabio.gomes@example.com", BounceKind.POLICY, "5.7.26"),
    ]
    assert len(parsed.signals) == 2


def test_arf_abuse_report_in_the_rfc_5965_form() -> None:
    data = raw("arf_abuse_rfc5965.eml")
    parsed = parse_inbound_mail(data, ["fbl@bounce.acme-motors.example"])
    # The report has no Message-ID of its own: the raw bytes name the event.
    assert parsed.event_id == "sha256:" + hashlib.sha256(data).hexdigest()
    complaint = only(parsed)
    assert isinstance(complaint, Complaint)
    assert complaint.feedback_type is FeedbackType.ABUSE
    assert complaint.recipient == "gil.henriques@example.com"
    assert complaint.original_mail_from == "bounces+4716.5f0c8a523d6e@bounce.acme-motors.example"
    assert complaint.original_message_id == "4716.5f0c8a523d6e@acme-motors.example"
    assert complaint.user_agent == "SomeGenerator/1.0"
    assert complaint.arrival_date == datetime(2025, 1, 16, 19, 0, tzinfo=UTC)


def test_arf_with_a_redacted_recipient() -> None:
    parsed = parse("arf_yahoo_redacted.eml", "fbl@bounce.acme-motors.example")
    assert parsed.event_id == "1737100989.77123.YahooMailNeo@feedback.yahoo.example"
    complaint = only(parsed)
    assert isinstance(complaint, Complaint)
    assert complaint.recipient is None
    assert complaint.feedback_type is FeedbackType.ABUSE
    assert complaint.original_mail_from == "bounces+4717.5f0c8a523d6e@bounce.acme-motors.example"
    assert complaint.original_message_id == "4717.5f0c8a523d6e@acme-motors.example"


def test_arf_not_spam() -> None:
    complaint = only(parse("arf_not_spam.eml", "fbl@bounce.acme-motors.example"))
    assert isinstance(complaint, Complaint)
    assert complaint.feedback_type is FeedbackType.NOT_SPAM
    assert complaint.recipient == "helena.ito@mailprovider.example"
    assert complaint.original_message_id == "4718.5f0c8a523d6e@acme-motors.example"


def _mailto_rcpt() -> str:
    to = re.search(rb"^To: (\S+)$", raw("mailto_unsubscribe.eml"), re.MULTILINE)
    assert to is not None
    return to.group(1).decode()


def test_mailto_unsubscribe() -> None:
    rcpt = _mailto_rcpt()
    token = rcpt.split("+", 1)[1].split("@", 1)[0]
    parsed = parse_inbound_mail(raw("mailto_unsubscribe.eml"), [rcpt])
    assert parsed.signals == (MailtoUnsubscribe(token, "ivo.jardim@example.com"),)
    assert parsed.event_id.startswith("CAF3k9x_Zq1Yw7sL2mNp0R4t@mail.example.com:")
    assert parsed.meta == {"kind": "mailto"}


def test_mailto_token_keeps_its_case_and_the_mailbox_ignores_case() -> None:
    message = b"From: a@example.com\r\nSubject: unsubscribe\r\n\r\n"
    parsed = parse_inbound_mail(
        message, ["<UnSubscribe+AbC_-9@Acme-Motors.example>", "unsubscribe+AbC_-9@x.example"]
    )
    assert parsed.signals == (MailtoUnsubscribe("AbC_-9", "a@example.com"),)


def test_every_matching_recipient_counts_whatever_the_body() -> None:
    parsed = parse_inbound_mail(
        b"garbage that is no mail",
        ["unsubscribe+tok1@a.example", "someone@a.example", "unsubscribe+tok2@a.example"],
    )
    assert parsed.signals == (MailtoUnsubscribe("tok1", None), MailtoUnsubscribe("tok2", None))
    one = parse_inbound_mail(b"garbage that is no mail", ["unsubscribe+tok1@a.example"])
    assert one.event_id != parsed.event_id  # each transaction of one message counts


@pytest.mark.parametrize(
    "rcpt",
    [
        "unsubscribe@acme-motors.example",  # no token
        "unsubscribe+@acme-motors.example",
        "unsubscribe+to.ken@acme-motors.example",  # outside the token alphabet
        "unsubscribex+token@acme-motors.example",
        "bounces+token@acme-motors.example",
    ],
)
def test_other_recipients_are_no_mailto(rcpt: str) -> None:
    parsed = parse_inbound_mail(b"From: a@example.com\r\n\r\nunsubscribe\r\n", [rcpt])
    assert not any(isinstance(s, MailtoUnsubscribe) for s in parsed.signals)


def test_a_configured_mailbox_and_domain() -> None:
    message = b"From: a@example.com\r\n\r\n"
    mailbox = "optout@lists.example"
    assert parse_inbound_mail(message, ["optout+t1@lists.example"], mailbox).signals == (
        MailtoUnsubscribe("t1", "a@example.com"),
    )
    other = parse_inbound_mail(message, ["optout+t1@elsewhere.example"], mailbox)
    assert other.signals != (MailtoUnsubscribe("t1", "a@example.com"),)
    assert parse_inbound_mail(message, ["unsubscribe+t1@lists.example"], "optout").signals[0] == (
        Unrecognised("not a delivery or feedback report (text/plain)")
    )


def test_non_standard_bounce_is_unrecognised_with_a_reason() -> None:
    parsed = parse("qmail_plain_bounce.eml")
    signal = only(parsed)
    assert isinstance(signal, Unrecognised)
    assert "non-standard bounce" in signal.why
    assert parsed.event_id == "20250119120144.31337.qmail@mail.legacy.example"


def test_an_ordinary_mail_is_unrecognised() -> None:
    parsed = parse_inbound_mail(b"From: a@example.com\r\nSubject: hello\r\n\r\nhi\r\n", [VERP])
    assert parsed.signals == (Unrecognised("not a delivery or feedback report (text/plain)"),)


def test_other_report_types_are_unrecognised() -> None:
    mdn = (
        b"From: a@example.com\r\nMessage-ID: <mdn-1@example.com>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=disposition-notification; boundary="b"\r\n'
        b"\r\n--b\r\nContent-Type: text/plain\r\n\r\nread\r\n"
        b"--b\r\nContent-Type: message/disposition-notification\r\n\r\n"
        b"Disposition: manual-action/MDN-sent-manually; displayed\r\n--b--\r\n"
    )
    parsed = parse_inbound_mail(mdn, [VERP])
    assert parsed.event_id == "mdn-1@example.com"
    assert parsed.signals == (Unrecognised("a disposition-notification report is not acted on"),)


def test_a_success_notice_is_no_bounce() -> None:
    dsn = (
        b"From: MAILER-DAEMON@mx.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example\r\n\r\n"
        b"Final-Recipient: rfc822; a@example.com\r\nAction: delivered\r\nStatus: 2.0.0\r\n"
        b"--b--\r\n"
    )
    signal = only(parse_inbound_mail(dsn, [VERP]))
    assert isinstance(signal, Unrecognised)
    assert "without failed or delayed" in signal.why


def test_status_falls_back_to_the_diagnostic_code() -> None:
    dsn = (
        b"From: MAILER-DAEMON@mx.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Final-Recipient: rfc822; <a@example.com>\r\nAction: failed\r\n"
        b"Diagnostic-Code: smtp; 550 no such user\r\n\r\n"
        b"Final-Recipient: rfc822; b@example.com\r\nAction: failed\r\n"
        b"Status: unknown\r\nDiagnostic-Code: smtp; 452 4.2.2 over quota\r\n"
        b"--b--\r\n"
    )
    parsed = parse_inbound_mail(dsn, ["bounces@bounce.example"])
    bounces = [s for s in parsed.signals if isinstance(s, Bounce)]
    assert [(b.recipient, b.status, b.kind) for b in bounces] == [
        ("a@example.com", "5.0.0", BounceKind.HARD),
        ("b@example.com", "4.2.2", BounceKind.SOFT),
    ]
    assert all(b.return_path is None and b.original_message_id is None for b in bounces)


def test_crlf_line_endings_parse_the_same() -> None:
    lf = parse("postfix_hard_5.1.1.eml")
    crlf = parse_inbound_mail(raw("postfix_hard_5.1.1.eml").replace(b"\n", b"\r\n"), [VERP])
    assert crlf.signals == lf.signals
    assert crlf.event_id == lf.event_id


@pytest.mark.parametrize("data", [b"", b"   \r\n", b"just text", b"\x00\xff\xfe", b"From x\n"])
def test_bytes_that_are_no_mail_are_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_inbound_mail(data, [VERP])
    assert caught.value.code == "INVALID_INPUT"


def _check(parsed: ParsedInput) -> None:
    assert parsed.source is SignalSource.INBOUND_SMTP
    assert 0 < len(parsed.event_id) <= 255
    assert parsed.signals


@given(data=st.binary(max_size=600), rcpt=st.sampled_from([VERP, "unsubscribe+t@x.example"]))
def test_any_bytes_raise_only_invalid_input(data: bytes, rcpt: str) -> None:
    try:
        parsed = parse_inbound_mail(data, [rcpt])
    except InvalidInput:
        return
    _check(parsed)


_FIXTURE_BYTES = [raw(p.name) for p in sorted(FIXTURES.glob("*.eml"))]


@given(
    source=st.sampled_from(_FIXTURE_BYTES),
    cut=st.integers(min_value=0, max_value=6000),
    noise=st.binary(max_size=40),
    at=st.integers(min_value=0, max_value=6000),
)
def test_damaged_reports_raise_only_invalid_input(
    source: bytes, cut: int, noise: bytes, at: int
) -> None:
    damaged = source[:at] + noise + source[at:cut]
    try:
        parsed = parse_inbound_mail(damaged, [VERP])
    except InvalidInput:
        return
    _check(parsed)


_FIELD = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
    max_size=40,
)


@given(
    kind=st.sampled_from(["message/delivery-status", "message/feedback-report"]),
    fields=st.lists(
        st.tuples(
            st.sampled_from([
                "Final-Recipient", "Original-Recipient", "Action", "Status", "Diagnostic-Code",
                "Feedback-Type", "Original-Rcpt-To", "Original-Mail-From", "Arrival-Date",
                "Reporting-MTA", "Original-Envelope-Id", "User-Agent",
            ]),
            _FIELD,
        ),
        max_size=8,
    ),
)  # fmt: skip
def test_reports_with_arbitrary_fields_raise_nothing(
    kind: str, fields: list[tuple[str, str]]
) -> None:
    body = "".join(f"{name}: {value}\r\n" for name, value in fields)
    report = (
        "From: MAILER-DAEMON@mx.example\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=x; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: {kind}\r\n\r\nReporting-MTA: dns; mx\r\n\r\n{body}--b--\r\n"
    ).encode("utf-8", "surrogateescape")
    _check(parse_inbound_mail(report, [VERP]))
