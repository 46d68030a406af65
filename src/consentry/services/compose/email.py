"""Complete emails, composed from a skeleton built once per campaign and filled per recipient.

Marketing email carries what mailbox providers and the law ask of it: one-click unsubscribe
headers (RFC 2369 and RFC 8058; Gmail and Yahoo reject bulk mail without them since 2024) and
a footer with the sender's legal name, postal address (CAN-SPAM 15 U.S.C. 7704(a)(5)), an
unsubscribe link and a link to the preference centre. Service email carries neither: it is
not an advertisement, and its List-Unsubscribe would offer to stop messages the person needs.

Errors::

    ConsentryError
    └── InvalidInput
        ├── InvalidEmail           INVALID_EMAIL          an address that cannot go in a header
        └── SenderMisconfigured    SENDER_MISCONFIGURED   an identity unfit for its mail
"""

from __future__ import annotations

import html
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.content import ContentUnderReview
from consentry.domain.delivery import EmailMessage
from consentry.domain.errors import InvalidInput
from consentry.domain.model import Category, Channel
from consentry.services.compose.dkim import DkimSigner
from consentry.services.compose.mime import (
    CRLF,
    DateHeader,
    body_part,
    check_address,
    mailbox,
    unstructured,
)
from consentry.services.compose.templates import RenderedContent

# Each part's Content-Transfer-Encoding line comes with its body (mime.body_part).
_TEXT_PART = f"Content-Type: text/plain; charset=utf-8{CRLF}"
_HTML_PART = f"Content-Type: text/html; charset=utf-8{CRLF}"
_URI = re.compile(r"[\x21\x23-\x3b\x3d\x3f-\x7e]+")  # printable ASCII but < > ": it sits in <...>
_LAST_BODY_END = re.compile(r"(?is).*(</body\s*>)")  # greedy: the last one
_MESSAGE_ID = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+")


def _attr(url: str) -> str:
    # Links are ASCII URIs (checked in ComplianceLinks); only & and ' can need escaping.
    return html.escape(url) if "&" in url or "'" in url else url


class SenderMisconfigured(InvalidInput):
    code = "SENDER_MISCONFIGURED"


@dataclass(frozen=True, slots=True)
class SenderIdentity:
    """Who a tenant's email is from. ``from_address`` is on the tenant's registered domain,
    which is also the DKIM signing domain (or a subdomain of it) so DMARC aligns."""

    from_address: str
    from_name: str
    envelope_from: str  # bounces come back here (a VERP address on the bounce domain)
    postal_address: str
    legal_name: str
    reply_to: str | None = None
    dkim: DkimSigner | None = None
    # Per-message return path: ``local+<Message-ID left part>@domain``, so that a bounce or a
    # complaint report that lost the original headers still names the message it is about.
    verp: bool = False

    def return_path(self, message_id: str) -> str:
        if not self.verp:
            return self.envelope_from
        local, _, domain = self.envelope_from.rpartition("@")
        return f"{local.split('+', 1)[0]}+{message_id.partition('@')[0]}@{domain}"


@dataclass(frozen=True, slots=True)
class ComplianceLinks:
    """One recipient's links: one-click unsubscribe (https), mailto unsubscribe, preferences."""

    unsubscribe_url: str
    unsubscribe_mailto: str
    preferences_url: str

    def __post_init__(self) -> None:
        for name, value, scheme in (
            ("unsubscribe_url", self.unsubscribe_url, "https://"),
            ("unsubscribe_mailto", self.unsubscribe_mailto, "mailto:"),
            ("preferences_url", self.preferences_url, "https://"),
        ):
            if not value.startswith(scheme) or _URI.fullmatch(value) is None:
                raise ValueError(f"{name} must be an ASCII {scheme} URI without spaces")


def message_id_for(tenant_id: uuid.UUID, delivery_id: int, domain: str) -> str:
    """A Message-ID for a delivery: the same on every retry, so a re-sent service message is
    recognised as the same message, and unique across tenants."""
    return f"{delivery_id}.{tenant_id.hex[:12]}@{domain}"


def _check_identity(identity: SenderIdentity, category: Category) -> None:
    check_address(identity.from_address, "from_address")
    check_address(identity.envelope_from, "envelope_from")
    if identity.reply_to is not None:
        check_address(identity.reply_to, "reply_to")
    if category is Category.MARKETING and not identity.postal_address.strip():
        raise SenderMisconfigured("marketing email needs a postal address", field="postal_address")
    if identity.dkim is not None:
        domain = identity.from_address.rsplit("@", 1)[1].lower()
        signing = identity.dkim.domain.lower()
        if domain != signing and not domain.endswith("." + signing):
            raise SenderMisconfigured(
                "the From domain must be the DKIM signing domain or below it", field="from_address"
            )


class EmailComposer:
    """Composes one campaign's (or one transactional template's) emails.

    Built once per campaign, template and identity: the headers every message shares, the
    MIME boundary and the fixed part of the footer are prepared here, so composing for a
    recipient only encodes what differs (To, Subject, Date, Message-ID, List-Unsubscribe and
    the bodies).
    """

    def __init__(
        self, *, tenant_id: uuid.UUID, identity: SenderIdentity, category: Category
    ) -> None:
        _check_identity(identity, category)
        self.tenant_id = tenant_id
        self.identity = identity
        self.category = category
        self._marketing = category is Category.MARKETING
        self._boundary = "=_cs_" + secrets.token_hex(12)
        self._head = f"From: {mailbox(identity.from_name, identity.from_address)}{CRLF}"
        if identity.reply_to is not None:
            self._head += f"Reply-To: {identity.reply_to}{CRLF}"
        self._mime = f"MIME-Version: 1.0{CRLF}"
        if self._marketing:
            self._mime += f"List-Unsubscribe-Post: List-Unsubscribe=One-Click{CRLF}"
        self._multipart = (
            f'Content-Type: multipart/alternative; boundary="{self._boundary}"{CRLF}{CRLF}'
            f"--{self._boundary}{CRLF}{_TEXT_PART}"
        ).encode("ascii")
        self._middle = f"{CRLF}--{self._boundary}{CRLF}{_HTML_PART}".encode("ascii")
        self._end = f"{CRLF}--{self._boundary}--{CRLF}".encode("ascii")
        self._single = _TEXT_PART.encode("ascii")
        legal, address = identity.legal_name.strip(), identity.postal_address.strip()
        self._text_footer = f"\n\n-- \n{legal}\n{address}\n"
        lines = "<br>".join(html.escape(line.strip()) for line in address.splitlines())
        self._html_footer = f'<hr><p style="font-size:12px">{html.escape(legal)}<br>{lines}<br>'
        self._date = DateHeader()
        self._subject: tuple[str, str] = ("", unstructured("Subject", ""))

    def text_part(self, content: RenderedContent, links: ComplianceLinks | None) -> str:
        """The text part as sent: the rendered text, then the footer for marketing."""
        if not self._marketing or links is None:
            return content.text
        return (
            f"{content.text.rstrip()}{self._text_footer}"
            f"Unsubscribe: {links.unsubscribe_url}\n"
            f"Manage your preferences: {links.preferences_url}\n"
        )

    def html_part(self, content: RenderedContent, links: ComplianceLinks | None) -> str | None:
        """The html part as sent (None without one): the footer goes before ``</body>``."""
        if content.html is None or not self._marketing or links is None:
            return content.html
        footer = (
            f'{self._html_footer}<a href="{_attr(links.unsubscribe_url)}">Unsubscribe</a>'
            f' &middot; <a href="{_attr(links.preferences_url)}">Manage your preferences</a></p>'
        )
        end = _LAST_BODY_END.match(content.html)
        if end is None:
            return content.html + footer
        at = end.start(1)
        return content.html[:at] + footer + content.html[at:]

    def _list_unsubscribe(self, links: ComplianceLinks | None) -> str:
        if not self._marketing:
            return ""
        if links is None:
            raise ValueError("marketing email needs compliance links")
        return (
            f"List-Unsubscribe: <{links.unsubscribe_url}>,{CRLF} <{links.unsubscribe_mailto}>{CRLF}"
        )

    def _subject_line(self, subject: str) -> str:
        # Most campaigns do not personalise the subject: encode it once. The cache is one
        # tuple, read once, so threads sharing a composer never pair a subject with another's.
        cached, line = self._subject
        if subject != cached:
            line = unstructured("Subject", subject)
            self._subject = (subject, line)
        return line

    def compose(
        self,
        content: RenderedContent,
        *,
        to_address: str,
        to_name: str | None,
        delivery_id: int,
        message_id: str,
        now: datetime,
        links: ComplianceLinks | None = None,
    ) -> EmailMessage:
        """The complete message for one recipient, DKIM-signed when the identity has a key."""
        check_address(to_address, "to_address")
        if _MESSAGE_ID.fullmatch(message_id) is None:
            raise ValueError("message_id is id-left@id-right without angle brackets")
        head = (
            f"{self._head}To: {mailbox(to_name, to_address)}{CRLF}"
            f"{self._subject_line(content.subject or '')}{self._date.line(now)}"
            f"Message-ID: <{message_id}>{CRLF}{self._mime}{self._list_unsubscribe(links)}"
        ).encode("ascii")
        text = body_part(self.text_part(content, links), self._boundary)
        markup = self.html_part(content, links)
        if markup is None:
            if not text.endswith(b"\r\n"):
                text += b"\r\n"  # SMTP would add it; DKIM must hash what the receiver sees
            data = b"".join((head, self._single, text))
        else:
            html_body = body_part(markup, self._boundary)
            parts = (head, self._multipart, text, self._middle, html_body, self._end)
            data = b"".join(parts)
        if self.identity.dkim is not None:
            data = self.identity.dkim.sign(data, now=now)
        return EmailMessage(
            delivery_id=delivery_id,
            tenant_id=self.tenant_id,
            mail_from=self.identity.return_path(message_id),
            rcpt_to=to_address,
            data=data,
            message_id=message_id,
        )

    def under_review(
        self, content: RenderedContent, links: ComplianceLinks | None, *, in_reply_thread: bool
    ) -> ContentUnderReview:
        """The composed message as ``review_message`` sees it (headers, footers and all)."""
        headers = {}
        if self._marketing and links is not None:
            headers["List-Unsubscribe"] = f"<{links.unsubscribe_url}>, <{links.unsubscribe_mailto}>"
            headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
        return ContentUnderReview(
            channel=Channel.EMAIL,
            category=self.category,
            text=self.text_part(content, links),
            subject=content.subject,
            html=self.html_part(content, links),
            headers=headers,
            in_reply_thread=in_reply_thread,
            composed=True,
            brand_name=self.identity.from_name,
            postal_address=self.identity.postal_address,
            unsubscribe_url=links.unsubscribe_url if links is not None else None,
        )
