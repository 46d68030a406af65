"""DKIM: our signatures verify with dkimpy, and the canonicalisation matches RFC 6376."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from dkim.canonicalization import Relaxed
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.model import Category
from consentry.services.compose.dkim import (
    DkimSigner,
    generate_dkim_key,
    relaxed_body,
    relaxed_header,
    split_headers,
)
from consentry.services.compose.email import ComplianceLinks, EmailComposer, SenderIdentity
from consentry.services.compose.templates import RenderedContent

PEM, TXT = generate_dkim_key()
SIGNER = DkimSigner("garage.example", "mail2025", PEM)
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
ASKED: list[bytes] = []


def dns(name: bytes, timeout: int = 5) -> bytes | None:
    ASKED.append(name)
    return TXT.encode("ascii") if name == b"mail2025._domainkey.garage.example." else None


def verifies(message: bytes) -> bool:
    return bool(dkim.verify(message, dnsfunc=dns))


def signed_email(content: RenderedContent, category: Category = Category.MARKETING) -> bytes:
    identity = SenderIdentity(
        from_address="news@garage.example",
        from_name="Zoë's Garage — Springfield",
        envelope_from="bounces@garage.example",
        postal_address="1 High Street, Springfield",
        legal_name="Zoe Garage Ltd",
        dkim=SIGNER,
    )
    composer = EmailComposer(tenant_id=uuid.uuid4(), identity=identity, category=category)
    links = ComplianceLinks(
        "https://links.example/u/tok", "mailto:u+tok@garage.example", "https://links.example/p"
    )
    return composer.compose(
        content,
        to_address="ada@example.org",
        to_name="Ada Lovelace-Byron, Countess of Lovelace",
        delivery_id=1,
        message_id="1.x@garage.example",
        now=NOW,
        links=links if category is Category.MARKETING else None,
    ).data


CONTENT = RenderedContent(
    subject="Ünïcödé offers 🚗 — a subject long enough to be folded over several encoded-words",
    text="Hello  Ada, \t\nTrailing spaces   \n\n\n",
    html="<p>Hello</p>",
)


def test_composed_marketing_email_verifies() -> None:
    message = signed_email(CONTENT)

    assert message.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert verifies(message)
    assert ASKED[-1] == b"mail2025._domainkey.garage.example."


@pytest.mark.parametrize(
    "content",
    [
        RenderedContent(subject="", text=""),
        RenderedContent(subject="Plain", text="\r\n\r\n"),
        RenderedContent(subject="x" * 300, text="y" * 3000),
        RenderedContent(subject="Tabs\tand  spaces ", text=" leading\n\ttab\n", html=" "),
    ],
)
def test_edge_cases_verify(content: RenderedContent) -> None:
    assert verifies(signed_email(content, Category.SERVICE))
    assert verifies(signed_email(content, Category.MARKETING))


def test_the_signed_header_list() -> None:
    message = signed_email(CONTENT)
    header = message.split(b"\r\n\r\n", 1)[0].split(b"\r\nFrom:", 1)[0].decode()
    tags = dict(
        tag.strip().split("=", 1) for tag in "".join(header.split(":", 1)[1].split()).split(";")
    )

    names = tags["h"].split(":")
    assert set(names) == {
        "from", "to", "subject", "date", "message-id", "mime-version", "content-type",
        "reply-to", "list-unsubscribe", "list-unsubscribe-post",
    }  # fmt: skip
    assert names.count("from") == 2  # over-signed
    assert names.count("reply-to") == 1  # absent, still protected
    assert (tags["d"], tags["s"], tags["t"]) == (
        "garage.example",
        "mail2025",
        str(int(NOW.timestamp())),
    )
    assert all(len(line) <= 78 for line in header.split("\r\n"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b"<https://links.example/u/tok>", b"<https://evil.example/u/tok>"),
        (b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"List-Unsubscribe-Post: x"),
        (b"Hello  Ada", b"Hello Eve"),
        (b"Message-ID: <1.x", b"Message-ID: <2.x"),
    ],
)
def test_tampering_breaks_the_signature(old: bytes, new: bytes) -> None:
    message = signed_email(CONTENT)
    assert old in message

    assert not verifies(message.replace(old, new, 1))


def test_added_signed_headers_break_it_and_others_do_not() -> None:
    message = signed_email(CONTENT)
    head, body = message.split(b"\r\n\r\n", 1)

    assert not verifies(head + b"\r\nFrom: Eve <eve@evil.example>\r\n\r\n" + body)
    assert not verifies(head + b"\r\nReply-To: eve@evil.example\r\n\r\n" + body)
    assert verifies(head + b"\r\nX-Received-By: relay.example\r\n\r\n" + body)


def test_relaxed_canonicalisation_survives_transit_whitespace() -> None:
    message = signed_email(CONTENT)
    head, body = message.split(b"\r\n\r\n", 1)
    rewhitespaced = head.replace(b"Subject: ", b"Subject:   \t") + b"\r\n\r\n" + body + b"\r\n\r\n"

    assert verifies(rewhitespaced)


# -- canonicalisation ---------------------------------------------------------------------------


def test_rfc_6376_example() -> None:
    # Section 3.4.5.
    head = b"A: X\r\nB : Y\t\r\n\tZ  "
    fields = split_headers(head)

    assert [relaxed_header(n, v) for n, v in fields] == [b"a:X", b"b:Y Z"]
    assert relaxed_body(b" C \r\nD \t E\r\n\r\n\r\n") == b" C\r\nD E\r\n"


@pytest.mark.parametrize(
    ("body", "canonical"),
    [(b"", b""), (b"\r\n", b""), (b"\r\n\r\n", b""), (b"  \r\n\t\r\n", b""), (b"x", b"x\r\n"),
     (b"x  ", b"x\r\n"), (b"a\r\n \r\nb\r\n", b"a\r\n\r\nb\r\n")],
)  # fmt: skip
def test_relaxed_body_edges(body: bytes, canonical: bytes) -> None:
    assert relaxed_body(body) == canonical


line = st.text(alphabet=" \tabcXYZ:;=", max_size=30)
crlf_text = st.lists(line, max_size=12).map(lambda lines: "\r\n".join(lines).encode())


@given(crlf_text)
def test_relaxed_body_matches_dkimpy(body: bytes) -> None:
    if body == b"" or body.endswith(b"\r\n"):
        assert relaxed_body(body) == Relaxed.canonicalize_body(body)
    else:
        # An unterminated last line reaches the verifier with the CRLF that SMTP adds.
        assert relaxed_body(body) == Relaxed.canonicalize_body(body + b"\r\n")


@given(st.lists(line, min_size=1, max_size=4))
def test_relaxed_header_matches_dkimpy(lines: list[str]) -> None:
    value = " " + "\r\n ".join(lines)
    name = b"Subject "

    ours = relaxed_header(name, value.encode())
    (theirs,) = Relaxed.canonicalize_headers([(name, value.encode())])

    assert ours + b"\r\n" == theirs[0] + b":" + theirs[1]


header_value = st.lists(
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=20
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=60, deadline=None)
@given(header_value, st.sampled_from([" ", "\t", "  ", "\r\n ", "\r\n\t "]), crlf_text)
def test_any_folded_message_verifies(words: list[str], gap: str, body: bytes) -> None:
    subject = gap.join(words)
    message = (
        f"From: Zoe <news@garage.example>\r\nTo: ada@example.org\r\nSubject: {subject}  \r\n"
        "Date: Sun, 01 Jun 2025 12:00:00 +0000\r\nMessage-ID: <m@garage.example>\r\n\r\n"
    ).encode() + body

    signed = SIGNER.sign(message, now=NOW)

    assert verifies(signed)
    terminated = body == b"" or body.endswith(b"\r\n")
    assert signed.endswith(message if terminated else message + b"\r\n")


def test_generated_keys_and_records() -> None:
    pem, record = generate_dkim_key(1024)
    key = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 1024
    assert record.startswith("v=DKIM1; k=rsa; p=")
    der = base64.b64decode(record.split("p=", 1)[1])
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert der == public


def test_only_rsa_keys_and_plain_names() -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="RSA"):
        DkimSigner("garage.example", "s1", ec_key)
    with pytest.raises(ValueError, match="DNS labels"):
        DkimSigner("garage.example", "s1; d=evil.example", PEM)
