"""The system's own single-part service mail, written out directly: what a parser reads back."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage as ParsedMessage
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.services.compose.mime import ascii_address, plain_text_email

NOW = datetime(2026, 12, 7, 14, 5, 9, 123456, tzinfo=UTC)


def _content(message: ParsedMessage) -> str:
    """The decoded body with its line ends as written in Python (quoted-printable keeps CRLF)."""
    return str(message.get_content()).replace("\r\n", "\n")


def _parsed(data: bytes) -> ParsedMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, ParsedMessage)
    return message


def _mail(**overrides: object) -> bytes:
    parts: dict[str, object] = {
        "sender_name": "Harbour Auto",
        "sender": "harbour@harbourauto.example",
        "to": "ana@example.com",
        "subject": "Please confirm: Offers from Harbour Auto",
        "text": "Please confirm:\nhttps://consentry.example/c/abc\n",
        "now": NOW,
        "message_id": "m1@harbourauto.example",
    }
    parts.update(overrides)
    return plain_text_email(**parts)  # type: ignore[arg-type]


def test_headers_and_body_read_back() -> None:
    data = _mail(reply_to="help@harbourauto.example")
    message = _parsed(data)
    (sender,) = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (
        "Harbour Auto",
        "harbour@harbourauto.example",
    )
    assert message["To"] == "ana@example.com"
    assert message["Subject"] == "Please confirm: Offers from Harbour Auto"
    assert message["Message-ID"] == "<m1@harbourauto.example>"
    assert message["Reply-To"] == "help@harbourauto.example"
    assert parsedate_to_datetime(message["Date"]) == NOW.replace(microsecond=0)
    assert message.get_content_type() == "text/plain"
    assert message["Content-Transfer-Encoding"] == "7bit"
    assert _content(message) == "Please confirm:\nhttps://consentry.example/c/abc\n"
    assert b"\r\n" in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # every line ends in CRLF
    assert "Reply-To" not in _parsed(_mail())


def test_a_long_link_stays_on_one_line() -> None:
    url = "https://consentry.example/c/" + "A" * 300
    assert url.encode() in _mail(text=f"Open:\n{url}\n")


def test_non_ascii_text_is_quoted_printable_and_reads_back() -> None:
    text = "Bitte bestätigen Sie: Angebote von Müller & Söhne = gut\n"
    message = _parsed(_mail(sender_name="Müller & Söhne", subject="Bestätigen: Müller", text=text))
    assert message["Content-Transfer-Encoding"] == "quoted-printable"
    assert _content(message) == text
    assert str(message["Subject"]) == "Bestätigen: Müller"
    assert message["From"].addresses[0].display_name == "Müller & Söhne"


def test_line_breaks_in_names_and_subjects_cannot_add_headers() -> None:
    message = _parsed(
        _mail(sender_name="Shop\r\nBcc: x@evil.example", subject="Hi\nBcc: y@evil.example")
    )
    assert message["Bcc"] is None
    assert "evil" in str(message["Subject"])  # kept, as text on the one line


def test_a_non_ascii_recipient_is_written_as_utf8() -> None:
    data = _mail(to="jöe@exämple.com")
    assert "To: jöe@exämple.com\r\n".encode() in data


def test_the_date_must_be_aware_and_is_written_in_its_zone() -> None:
    with pytest.raises(ValueError, match="aware"):
        _mail(now=NOW.replace(tzinfo=None))
    local = NOW.astimezone(timezone(timedelta(hours=-5)))
    assert parsedate_to_datetime(_parsed(_mail(now=local))["Date"]) == NOW.replace(microsecond=0)


@given(
    name=st.text(max_size=80),
    subject=st.text(max_size=200),
    text=st.text(max_size=2000),
)
def test_any_name_subject_and_text_read_back(name: str, subject: str, text: str) -> None:
    message = _parsed(_mail(sender_name=name, subject=subject, text=text))
    assert set(message.keys()) >= {"From", "To", "Subject", "Date", "Message-ID"}
    assert message["To"] == "ana@example.com"
    body = text.replace("\r\n", "\n").replace("\r", "\n")
    assert _content(message).rstrip("\n") == body.rstrip("\n")
    expected = " ".join(subject.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    assert str(message["Subject"]) == expected


def test_a_reply_address_goes_in_ascii_form_or_not_at_all() -> None:
    idn = _parsed(_mail(reply_to="help@bücher.example"))
    assert idn["Reply-To"] == "help@xn--bcher-kva.example"
    assert "Reply-To" not in _parsed(_mail(reply_to="hëlp@bücher.example"))
    assert ascii_address("help@harbourauto.example") == "help@harbourauto.example"
    assert ascii_address("not an address") is None
