"""Email composition: the compliance parts, and MIME that any parser reads back exactly."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import re
import uuid
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage as ParsedMessage
from email.utils import parsedate_to_datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.content import ContentUnderReview, review_message
from consentry.domain.errors import InvalidEmail
from consentry.domain.model import Category, Channel
from consentry.services.compose.dkim import DkimSigner, generate_dkim_key
from consentry.services.compose.email import (
    ComplianceLinks,
    EmailComposer,
    SenderIdentity,
    SenderMisconfigured,
    message_id_for,
)
from consentry.services.compose.templates import RenderedContent

TENANT_ID = uuid.UUID("0193a1f2-0000-7000-8000-0000000000aa")
NOW = datetime(2025, 6, 1, 12, 30, 15, 123456, tzinfo=UTC)
IDENTITY = SenderIdentity(
    from_address="news@garage.example",
    from_name="Zoë's Garage",
    envelope_from="bounce+d42@bounces.garage.example",
    postal_address="1 High Street\nSpringfield 12345",
    legal_name="Zoë <Garage> & Sons Ltd",
    reply_to="help@garage.example",
)
LINKS = ComplianceLinks(
    unsubscribe_url="https://links.example/u/AbC_12-x?l=en&t=1",
    unsubscribe_mailto="mailto:unsub+AbC@garage.example?subject=unsubscribe",
    preferences_url="https://links.example/p/AbC_12-x",
)
CONTENT = RenderedContent(
    subject="Spring offers, Ada",
    text="Hello Ada,\nTyres are 20% off this week.\n",
    html="<html><body><p>Hello Ada,</p><p>Tyres are 20% off.</p></body></html>",
)


def marketing() -> EmailComposer:
    return EmailComposer(tenant_id=TENANT_ID, identity=IDENTITY, category=Category.MARKETING)


def compose(
    composer: EmailComposer | None = None,
    content: RenderedContent = CONTENT,
    *,
    to_name: str | None = "Ada Lovelace",
    links: ComplianceLinks | None = LINKS,
) -> bytes:
    composer = composer or marketing()
    message = composer.compose(
        content,
        to_address="ada@example.org",
        to_name=to_name,
        delivery_id=42,
        message_id="42.abc@garage.example",
        now=NOW,
        links=links,
    )
    return message.data


def parse(data: bytes) -> ParsedMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, ParsedMessage)
    return parsed


def body(parsed: ParsedMessage, subtype: str) -> str:
    part = parsed.get_body((subtype,))
    assert part is not None
    assert part.get_content_subtype() == subtype
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def assert_wire_format(data: bytes) -> None:
    assert b"\n" not in data.replace(b"\r\n", b"")
    assert b"\r" not in data.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    assert data.isascii()


def test_the_email_message_for_the_channel() -> None:
    message = marketing().compose(
        CONTENT,
        to_address="ada@example.org",
        to_name=None,
        delivery_id=42,
        message_id="42.abc@garage.example",
        now=NOW,
        links=LINKS,
    )

    assert (message.delivery_id, message.tenant_id) == (42, TENANT_ID)
    assert message.mail_from == "bounce+d42@bounces.garage.example"
    assert message.rcpt_to == "ada@example.org"
    assert message.message_id == "42.abc@garage.example"


def test_marketing_headers() -> None:
    data = compose()
    parsed = parse(data)

    assert_wire_format(data)
    assert parsed.defects == []
    assert parsed["From"].addresses[0].display_name == "Zoë's Garage"
    assert parsed["From"].addresses[0].addr_spec == "news@garage.example"
    assert str(parsed["Reply-To"]) == "help@garage.example"
    assert str(parsed["To"]) == "Ada Lovelace <ada@example.org>"
    assert str(parsed["Subject"]) == "Spring offers, Ada"
    assert parsedate_to_datetime(str(parsed["Date"])) == NOW.replace(microsecond=0)
    assert str(parsed["Message-ID"]) == "<42.abc@garage.example>"
    assert str(parsed["MIME-Version"]) == "1.0"
    assert str(parsed["List-Unsubscribe"]) == (
        "<https://links.example/u/AbC_12-x?l=en&t=1>, "
        "<mailto:unsub+AbC@garage.example?subject=unsubscribe>"
    )
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert parsed.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert len(parsed.get_all(name) or []) == 1


def test_marketing_footer_in_text_and_escaped_in_html() -> None:
    parsed = parse(compose())
    text, markup = body(parsed, "plain"), body(parsed, "html")

    assert text == (
        "Hello Ada,\nTyres are 20% off this week.\n\n-- \n"
        "Zoë <Garage> & Sons Ltd\n1 High Street\nSpringfield 12345\n"
        "Unsubscribe: https://links.example/u/AbC_12-x?l=en&t=1\n"
        "Manage your preferences: https://links.example/p/AbC_12-x\n"
    )
    assert "Zoë &lt;Garage&gt; &amp; Sons Ltd<br>1 High Street<br>Springfield 12345" in markup
    assert '<a href="https://links.example/u/AbC_12-x?l=en&amp;t=1">Unsubscribe</a>' in markup
    assert '<a href="https://links.example/p/AbC_12-x">' in markup
    assert markup.endswith("</p></body></html>")  # the footer goes inside the body
    assert markup.startswith("<html><body><p>Hello Ada,</p><p>Tyres are 20% off.</p><hr>")


def test_the_composed_bytes_pass_the_content_review() -> None:
    parsed = parse(compose())
    under_review = ContentUnderReview(
        channel=Channel.EMAIL,
        category=Category.MARKETING,
        subject=str(parsed["Subject"]),
        text=body(parsed, "plain"),
        html=body(parsed, "html"),
        headers={k: str(v) for k, v in parsed.items()},
        composed=True,
        postal_address=IDENTITY.postal_address,
        unsubscribe_url=LINKS.unsubscribe_url,
    )

    assert review_message(under_review).findings == ()
    assert review_message(marketing().under_review(CONTENT, LINKS, in_reply_thread=False)).passed


def test_review_catches_a_marketing_email_without_links() -> None:
    review = review_message(marketing().under_review(CONTENT, None, in_reply_thread=False))

    assert {"MISSING_UNSUBSCRIBE", "MISSING_ONE_CLICK"} <= review.codes


def test_service_email_has_no_unsubscribe_parts_and_one_part_without_html() -> None:
    service = EmailComposer(tenant_id=TENANT_ID, identity=IDENTITY, category=Category.SERVICE)
    content = RenderedContent(subject="Your MOT is due", text="See you on Tuesday.")

    parsed = parse(compose(service, content, links=None))

    assert parsed["List-Unsubscribe"] is None
    assert parsed["List-Unsubscribe-Post"] is None
    assert parsed.get_content_type() == "text/plain"
    assert body(parsed, "plain") == "See you on Tuesday.\n"


def test_html_without_a_body_tag_gets_the_footer_appended() -> None:
    content = RenderedContent(subject="s", text="t", html="<p>Hi</p>")

    markup = body(parse(compose(content=content)), "html")

    assert markup.startswith("<p>Hi</p><hr>")
    assert markup.endswith("Manage your preferences</a></p>")


def test_the_footer_goes_before_the_last_closing_body_tag_in_any_case() -> None:
    content = RenderedContent(subject="s", text="t", html="<BODY>a</body>b</BODY \n></HTML>")

    markup = body(parse(compose(content=content)), "html")

    assert markup.startswith("<BODY>a</body>b<hr>")
    assert markup.endswith("preferences</a></p></BODY \n></HTML>")


def test_the_date_follows_the_clock_and_must_be_aware() -> None:
    composer = marketing()
    args: dict[str, Any] = {"to_address": "ada@example.org", "to_name": None, "delivery_id": 1,
                            "message_id": "1.a@garage.example", "links": LINKS}  # fmt: skip
    later = NOW.replace(hour=13, microsecond=0)

    first = parse(composer.compose(CONTENT, now=NOW, **args).data)
    second = parse(composer.compose(CONTENT, now=later, **args).data)

    assert parsedate_to_datetime(str(first["Date"])) == NOW.replace(microsecond=0)
    assert parsedate_to_datetime(str(second["Date"])) == later
    with pytest.raises(ValueError, match="aware"):
        composer.compose(CONTENT, now=datetime(2025, 6, 1), **args)


def test_marketing_needs_links() -> None:
    with pytest.raises(ValueError, match="compliance links"):
        compose(links=None)


def test_line_breaks_in_headers_cannot_inject_headers() -> None:
    content = RenderedContent(subject="Hi\r\nBcc: victim@example.org\nX: y", text="t")

    parsed = parse(compose(content=content, to_name="Ada\r\nBcc: other@example.org"))

    assert parsed["Bcc"] is None
    assert parsed["X"] is None
    assert str(parsed["Subject"]) == "Hi Bcc: victim@example.org X: y"
    assert parsed["To"].addresses[0].display_name == "Ada Bcc: other@example.org"


def test_display_names_lose_control_characters() -> None:
    parsed = parse(compose(to_name=" Ada\t\x00 Lovelace  "))

    assert str(parsed["To"]) == "Ada Lovelace <ada@example.org>"


@pytest.mark.parametrize(
    ("field", "kwargs"),
    [
        ("to_address", {"to_address": "ada@example.org>\r\nBcc: x@y.z"}),
        ("to_address", {"to_address": "ada lovelace@example.org"}),
        ("to_address", {"to_address": "ädä@example.org"}),
        ("to_address", {"to_address": "ada@localhost"}),
    ],
)
def test_recipient_addresses_are_checked(field: str, kwargs: dict[str, str]) -> None:
    args: dict[str, object] = {
        "to_address": "ada@example.org",
        "to_name": None,
        "delivery_id": 1,
        "message_id": "1.a@garage.example",
        "now": NOW,
        "links": LINKS,
    }
    args.update(kwargs)

    with pytest.raises(InvalidEmail) as caught:
        marketing().compose(CONTENT, **args)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_sender_identity_is_checked() -> None:
    for field in ("from_address", "envelope_from", "reply_to"):
        with pytest.raises(InvalidEmail) as caught:
            EmailComposer(
                tenant_id=TENANT_ID,
                identity=_identity(**{field: "not an address"}),
                category=Category.SERVICE,
            )
        assert caught.value.field == field
    with pytest.raises(SenderMisconfigured, match="postal address"):
        EmailComposer(
            tenant_id=TENANT_ID, identity=_identity(postal_address=" "), category=Category.MARKETING
        )
    # Service mail needs no postal address.
    EmailComposer(
        tenant_id=TENANT_ID, identity=_identity(postal_address=""), category=Category.SERVICE
    )


def test_the_from_domain_must_align_with_the_dkim_domain() -> None:
    pem, _ = generate_dkim_key(1024)
    signer = DkimSigner("garage.example", "s1", pem)
    EmailComposer(tenant_id=TENANT_ID, identity=_identity(dkim=signer), category=Category.SERVICE)
    sub = _identity(dkim=signer, from_address="news@mail.garage.example")
    EmailComposer(tenant_id=TENANT_ID, identity=sub, category=Category.SERVICE)

    for address in ("news@othergarage.example", "news@garage.example.evil.example"):
        with pytest.raises(SenderMisconfigured, match="DKIM"):
            EmailComposer(
                tenant_id=TENANT_ID,
                identity=_identity(dkim=signer, from_address=address),
                category=Category.SERVICE,
            )


def _identity(**changes: object) -> SenderIdentity:
    fields = {
        "from_address": IDENTITY.from_address,
        "from_name": IDENTITY.from_name,
        "envelope_from": IDENTITY.envelope_from,
        "postal_address": IDENTITY.postal_address,
        "legal_name": IDENTITY.legal_name,
        "reply_to": IDENTITY.reply_to,
        "dkim": None,
    }
    fields.update(changes)
    return SenderIdentity(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"unsubscribe_url": "http://links.example/u"},
        {"unsubscribe_url": "https://links.example/u x"},
        {"unsubscribe_url": "https://links.example/u>, <https://evil.example"},
        {"unsubscribe_mailto": "unsub@garage.example"},
        {"preferences_url": "https://links.example/p\r\n"},
    ],
)
def test_links_are_checked(kwargs: dict[str, str]) -> None:
    fields = {
        "unsubscribe_url": LINKS.unsubscribe_url,
        "unsubscribe_mailto": LINKS.unsubscribe_mailto,
        "preferences_url": LINKS.preferences_url,
        **kwargs,
    }
    with pytest.raises(ValueError, match="URI"):
        ComplianceLinks(**fields)


def test_message_ids_are_stable_per_delivery() -> None:
    assert message_id_for(TENANT_ID, 42, "garage.example") == message_id_for(
        TENANT_ID, 42, "garage.example"
    )
    assert message_id_for(TENANT_ID, 42, "g.example") != message_id_for(TENANT_ID, 43, "g.example")
    assert re.fullmatch(
        r"42\.[0-9a-f]{12}@garage\.example", message_id_for(TENANT_ID, 42, "garage.example")
    )


def test_one_composer_serves_many_recipients() -> None:
    composer = marketing()
    first = parse(compose(composer, RenderedContent(subject="A", text="one")))
    second = parse(compose(composer, RenderedContent(subject="B", text="two", html="<p>2</p>")))

    assert str(first["Subject"]) == "A"
    assert str(second["Subject"]) == "B"
    assert body(first, "plain").startswith("one\n")
    assert body(second, "html").startswith("<p>2</p>")
    assert first.get_content_type() == "text/plain"


# -- round trips -----------------------------------------------------------------------------

header_text = st.text(max_size=300)
# Any text, and mostly printable ASCII (sent as it is, 7bit) with the odd long line.
body_text = st.one_of(
    st.text(max_size=2000),
    st.text(st.sampled_from([*" .=-\t\n\r", *"aZ09<>&_"]), max_size=2000),
    st.lists(st.text("ab =.", min_size=990, max_size=1010), max_size=2).map("\n".join),
)


def display_name(data: bytes, header: str) -> str:
    """The display name as RFC 2047 section 6.2 reads it.

    CPython before gh-128110 (fixed in 3.14) keeps the folding space between two adjacent
    encoded-words of an address header's display name, so a long non-ASCII name comes back with
    spaces inserted; mail clients drop them, as the RFC says. For such names the legacy
    ``email.header`` decoder, which implements 6.2, is used instead.
    """
    parsed = parse(data)[header].addresses[0].display_name
    raw = email.message_from_bytes(data, policy=email.policy.compat32)[header]
    if raw.count("?=") < 2:
        return str(parsed)
    assert parsed.replace(" ", "") == str(
        make_header(decode_header(raw.rsplit("<", 1)[0]))
    ).replace(" ", "")
    return str(make_header(decode_header(raw.rsplit("<", 1)[0][:-1])))


def display_text(value: str) -> str:
    return re.sub(r"[\s\x00-\x1f\x7f-\x9f]+", " ", value).strip()


def expected_header(value: str) -> str:
    return re.sub(r"\r\n|\r|\n", " ", value)


def expected_body(value: str) -> str:
    return re.sub(r"\r\n|\r", "\n", value)


@settings(max_examples=300, deadline=None)
@given(header_text, body_text, st.one_of(st.none(), body_text), header_text, header_text)
def test_any_unicode_round_trips_through_the_parser(
    subject: str, text: str, html: str | None, to_name: str, from_name: str
) -> None:
    service = EmailComposer(
        tenant_id=TENANT_ID, identity=_identity(from_name=from_name), category=Category.SERVICE
    )
    content = RenderedContent(subject=subject, text=text, html=html)

    data = compose(service, content, to_name=to_name, links=None)
    parsed = parse(data)

    assert_wire_format(data)
    assert str(parsed["Subject"]) == expected_header(subject)
    assert display_name(data, "To") == display_text(to_name)
    assert parsed["To"].addresses[0].addr_spec == "ada@example.org"
    assert display_name(data, "From") == display_text(from_name)
    plain = expected_body(text)
    if html is None and plain and not plain.endswith("\n"):
        plain += "\n"  # a single-part body ends with a line break, as SMTP would make it
    assert body(parsed, "plain") == plain
    if html is not None:
        assert body(parsed, "html") == expected_body(html)
    assert parsed["Bcc"] is None


@settings(max_examples=100, deadline=None)
@given(body_text, body_text)
def test_marketing_bodies_keep_the_content_and_add_the_footer(text: str, html: str) -> None:
    composer = marketing()
    content = RenderedContent(subject="s", text=text, html=html)

    parsed = parse(compose(composer, content))

    assert body(parsed, "plain") == expected_body(composer.text_part(content, LINKS))
    assert body(parsed, "plain").startswith(expected_body(text.rstrip()))
    assert body(parsed, "html") == expected_body(composer.html_part(content, LINKS) or "")


def test_a_verp_return_path_carries_the_message_id() -> None:
    identity = dataclasses.replace(IDENTITY, envelope_from="bounces@garage.example", verp=True)
    assert identity.return_path("42.0a1b2c3d4e5f@garage.example") == (
        "bounces+42.0a1b2c3d4e5f@garage.example"
    )
    assert IDENTITY.return_path("42.0a1b2c3d4e5f@garage.example") == IDENTITY.envelope_from


def transfer_encodings(data: bytes) -> list[str]:
    parsed = parse(data)
    return [
        str(part["Content-Transfer-Encoding"]) for part in parsed.walk() if not part.is_multipart()
    ]


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Hello Ada,\n\tTyres are 20% off = cheap.\n.\nFrom the shop\n", "7bit"),
        ("Hello Zoë\n", "quoted-printable"),  # not ASCII
        ("a" * 998 + "\n", "7bit"),
        ("a" * 999 + "\n", "quoted-printable"),  # longer than a line may be
        ("bell \x07\n", "quoted-printable"),  # a control character
        ("NUL \x00\n", "quoted-printable"),
    ],
)
def test_plain_ascii_bodies_go_as_they_are(text: str, encoding: str) -> None:
    content = RenderedContent(subject="s", text=text, html=None)
    service = EmailComposer(tenant_id=TENANT_ID, identity=IDENTITY, category=Category.SERVICE)

    data = compose(service, content, links=None)

    assert transfer_encodings(data) == [encoding]
    assert_wire_format(data)
    assert body(parse(data), "plain") == text


def test_a_body_holding_the_boundary_is_encoded() -> None:
    composer = EmailComposer(tenant_id=TENANT_ID, identity=IDENTITY, category=Category.SERVICE)
    boundary = parse(compose(composer, links=None)).get_boundary()
    assert boundary is not None
    content = RenderedContent(subject="s", text=f"--{boundary}\nnot a part\n", html="<p>x</p>")

    data = compose(composer, content, links=None)

    assert transfer_encodings(data) == ["quoted-printable", "7bit"]
    assert body(parse(data), "plain").startswith(f"--{boundary}\nnot a part")
