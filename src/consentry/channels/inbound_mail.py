"""Mail received by the inbound SMTP server: bounces, complaints and mailto unsubscribes.

``parse_inbound_mail`` turns one received message (its raw bytes and the envelope recipients)
into a ``ParsedInput`` from ``SignalSource.INBOUND_SMTP``::

    RCPT TO unsubscribe+<token>@<domain>         -> MailtoUnsubscribe(token, sender) per token,
                                                     whatever the body says
    multipart/report with message/delivery-status -> one Bounce per per-recipient block (RFC 3464)
    multipart/report with message/feedback-report -> Complaint (RFC 5965 ARF)
    a bounce without a report (qmail, old Exim),
      another report type, any other mail          -> Unrecognised(why), kept for inspection
    bytes that are not a mail message at all      -> InvalidInput

The event id is the received message's own Message-ID, else ``sha256:<hex>`` of the raw bytes
(the key ``services.signals.keep_rejected`` uses too). For a mailto unsubscribe it is followed by
a digest of the tokens: an MTA may hand one message over in several transactions, one per
recipient, and each must count.

All MIME structure comes from the standard library parser (``email.policy.default``). Header
values are read unparsed (``raw_items``): the structured header parser is strict, and what a
remote MTA writes into a report is not always well-formed. The report fields are plain header
blocks, read the same way.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from email import errors as email_errors
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import parseaddr, parsedate_to_datetime

from consentry.domain.errors import InvalidInput
from consentry.domain.signals import (
    Bounce,
    Complaint,
    FeedbackType,
    MailtoUnsubscribe,
    ParsedInput,
    Signal,
    SignalSource,
    Unrecognised,
    classify_status,
)

_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d])")
_BASIC = re.compile(r"(?<!\d)([45])\d\d(?!\d)")
_FOLD = re.compile(r"\r?\n[ \t]+")
_MAILTO_LOCAL = r"(?P<token>[A-Za-z0-9_-]{1,512})"  # the token alphabet: base64url
_SUCCESS_ACTIONS = frozenset({"delivered", "relayed", "expanded"})
# Mailbox providers redact the complainant's address in ARF reports ("xxxxx@yahoo.com",
# "redacted@...", "*****@..."): such a value names nobody.
_REDACTED_LOCAL = re.compile(r"[xX*#._-]+|.*redacted.*", re.IGNORECASE)
_BOUNCE_SENDER = re.compile(r"mailer-daemon|postmaster|mail delivery", re.IGNORECASE)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery (status|failure|has failed)|failure notice|returned mail|"
    r"mail delivery failed|could not be delivered|non-delivery",
    re.IGNORECASE,
)
_MAX_EVENT_ID = 200
_MAX_TEXT = 1000
# What the standard library's email package may raise on hostile input (its header folding and
# charset lookups are not all total); such a message is read as "not understood", never a crash.
_EMAIL_FAILURES = (
    email_errors.MessageError,
    LookupError,
    ValueError,
    TypeError,
    AttributeError,
    AssertionError,
    RecursionError,
)


def parse_inbound_mail(
    raw: bytes, rcpt_tos: Sequence[str], unsubscribe_mailbox: str = "unsubscribe"
) -> ParsedInput:
    """The signals one received message carries (see the module docstring).

    ``unsubscribe_mailbox`` is the local part of the List-Unsubscribe mailto address
    (``unsubscribe``), or a whole ``local@domain`` to accept that domain only.
    """
    tokens = _mailto_tokens(rcpt_tos, unsubscribe_mailbox)
    message = _read(raw) if raw.strip() else None
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    own_id = _message_id(_header(message, "Message-ID")) if message is not None else None
    if tokens:
        sender = _address(_header(message, "From")) if message is not None else None
        joined = hashlib.sha256("\n".join(tokens).encode()).hexdigest()[:16]
        return ParsedInput(
            source=SignalSource.INBOUND_SMTP,
            event_id=f"{own_id or digest}:{joined}",
            signals=tuple(MailtoUnsubscribe(token, sender) for token in tokens),
            meta={"kind": "mailto"},
        )
    if message is None:
        raise InvalidInput("the inbound mail is not an RFC 5322 message")
    try:
        kind, signals = _report(message, rcpt_tos)
    except _EMAIL_FAILURES as exc:
        kind, signals = "unreadable", (Unrecognised(f"the report could not be read ({exc!r})"),)
    return ParsedInput(
        source=SignalSource.INBOUND_SMTP,
        event_id=own_id or digest,
        signals=signals,
        meta={"kind": kind},
    )


# -- reading ---------------------------------------------------------------------------------


def _read(raw: bytes) -> Message | None:
    """The parsed message, or None when the bytes do not start with a header section."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
    except _EMAIL_FAILURES:
        return None
    if not list(message.raw_items()):
        return None
    if any(isinstance(d, email_errors.MissingHeaderBodySeparatorDefect) for d in message.defects):
        return None
    return message


def _text(value: str) -> str:
    """A header value as readable text: unfolded, undecodable bytes replaced."""
    try:
        value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return _FOLD.sub(" ", value).strip()


def _fields(block: Message) -> dict[str, str]:
    """A header block as {lower-case name: first value}."""
    fields: dict[str, str] = {}
    for name, value in block.raw_items():
        fields.setdefault(name.strip().lower(), _text(str(value)))
    return fields


def _header(message: Message | None, name: str) -> str | None:
    if message is None:
        return None
    return _fields(message).get(name.lower()) or None


def _message_id(value: str | None) -> str | None:
    """``left@right`` of a Message-ID (with or without angle brackets); None if unusable."""
    if not value:
        return None
    match = re.search(r"<([^<>\s]+)>", value)
    found = match.group(1) if match else value.strip()
    if not found or len(found) > _MAX_EVENT_ID or any(ch.isspace() for ch in found):
        return None
    return found


def _address(value: str | None) -> str | None:
    if not value:
        return None
    address = parseaddr(value)[1].strip()
    return address if "@" in address else None


def _typed_address(value: str | None) -> str | None:
    """The address of ``rfc822; user@example.com`` (or of a bare address)."""
    if not value:
        return None
    kind, sep, rest = value.partition(";")
    if sep and kind.strip().lower() not in ("rfc822", "utf-8"):
        return None
    address = (rest if sep else value).strip().strip("<>").strip()
    return address if "@" in address and len(address) <= 320 else None


def _blocks(part: Message) -> list[dict[str, str]]:
    """The header blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [_fields(block) for block in payload if isinstance(block, Message)]
    decoded = part.get_payload(decode=True)
    text = decoded.decode("utf-8", "replace") if isinstance(decoded, bytes) else str(payload)
    parser = HeaderParser(policy=policy.default)
    chunks = re.split(r"\r?\n[ \t]*\r?\n", text.strip())
    return [fields for fields in (_fields(parser.parsestr(c)) for c in chunks) if fields]


def _returned_headers(parts: Iterable[Message]) -> dict[str, str]:
    """The headers of the message a report returns (message/rfc822 or text/rfc822-headers)."""
    for part in parts:
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return _fields(payload[0])
        if kind == "text/rfc822-headers":
            decoded = part.get_payload(decode=True)
            text = decoded.decode("utf-8", "replace") if isinstance(decoded, bytes) else ""
            return _fields(HeaderParser(policy=policy.default).parsestr(text))
    return {}


# -- reports ---------------------------------------------------------------------------------


def _report(message: Message, rcpt_tos: Sequence[str]) -> tuple[str, tuple[Signal, ...]]:
    if message.get_content_type() != "multipart/report":
        return "other", (Unrecognised(_why_not_a_report(message)),)
    payload = message.get_payload() if message.is_multipart() else []
    parts = [part for part in payload if isinstance(part, Message)]
    types = {part.get_content_type() for part in parts}
    if "message/delivery-status" in types:
        return "dsn", _bounces(message, parts, rcpt_tos)
    if "message/feedback-report" in types:
        return "arf", (_complaint(parts),)
    report_type = str(message.get_param("report-type") or "unknown")[:40]
    return "report", (Unrecognised(f"a {report_type} report is not acted on"),)


def _why_not_a_report(message: Message) -> str:
    sender = _header(message, "From") or ""
    subject = _header(message, "Subject") or ""
    if _BOUNCE_SENDER.search(sender) or _BOUNCE_SUBJECT.search(subject):
        return "a non-standard bounce without an RFC 3464 delivery-status report"
    return f"not a delivery or feedback report ({message.get_content_type()})"


def _bounces(message: Message, parts: list[Message], rcpt_tos: Sequence[str]) -> tuple[Signal, ...]:
    status_part = next(p for p in parts if p.get_content_type() == "message/delivery-status")
    blocks = _blocks(status_part)
    if not blocks:
        return (Unrecognised("a delivery-status report without fields"),)
    per_message, per_recipient = blocks[0], blocks[1:]
    if "final-recipient" in per_message or "action" in per_message:
        # No per-message block: the report starts with the recipients.
        per_message, per_recipient = {}, blocks
    returned = _returned_headers(parts)
    original_id = (
        _message_id(returned.get("message-id"))
        or _message_id(per_message.get("x-original-message-id"))
        or _message_id(_header(message, "In-Reply-To"))
    )
    return_path = _verp(rcpt_tos) or _address(returned.get("return-path"))
    reporting_mta = per_message.get("reporting-mta", "").partition(";")[2].strip()
    envelope_id = per_message.get("original-envelope-id", "").strip()[:255] or None
    bounces: list[Signal] = []
    for fields in per_recipient:
        action = fields.get("action", "failed").strip().lower() or "failed"
        if action in _SUCCESS_ACTIONS:
            continue  # a success notice says nothing against the address
        diagnostic = fields.get("diagnostic-code", "")
        status = _status(fields.get("status", ""), diagnostic)
        bounces.append(
            Bounce(
                recipient=_typed_address(fields.get("final-recipient"))
                or _typed_address(fields.get("original-recipient")),
                kind=classify_status(status, action),
                status=status,
                diagnostic=" ".join(diagnostic.split())[:_MAX_TEXT],
                original_message_id=original_id,
                original_envelope_id=envelope_id,
                reporting_mta=reporting_mta[:255],
                return_path=return_path,
            )
        )
    if not bounces:
        return (Unrecognised("a delivery-status report without failed or delayed recipients"),)
    return tuple(bounces)


def _status(status: str, diagnostic: str) -> str:
    """The enhanced status code: from Status, else from the diagnostic's enhanced or basic
    SMTP code (``550`` -> ``5.0.0``), else as given."""
    for text in (status, diagnostic):
        match = _ENHANCED.search(text)
        if match:
            return ".".join(match.groups())
    basic = _BASIC.search(diagnostic)
    if basic:
        return f"{basic.group(1)}.0.0"
    return status.strip()[:20]


def _verp(rcpt_tos: Sequence[str]) -> str | None:
    """The envelope recipient that looks like a VERP return path (a ``+`` in the local part)."""
    for rcpt in rcpt_tos:
        address = rcpt.strip().strip("<>")
        local, at, _domain = address.rpartition("@")
        if at and "+" in local:
            return address
    return None


def _complaint(parts: list[Message]) -> Complaint:
    report = next(p for p in parts if p.get_content_type() == "message/feedback-report")
    fields: dict[str, str] = {}
    for block in _blocks(report):
        for name, value in block.items():
            fields.setdefault(name, value)
    raw_type = fields.get("feedback-type", "").strip().lower()
    feedback_type = next((t for t in FeedbackType if t.value == raw_type), FeedbackType.OTHER)
    recipient = _typed_address(fields.get("original-rcpt-to")) or _typed_address(
        fields.get("removal-recipient")
    )
    if recipient is not None and _REDACTED_LOCAL.fullmatch(recipient.rpartition("@")[0]):
        recipient = None
    returned = _returned_headers(parts)
    return Complaint(
        recipient=recipient,
        feedback_type=feedback_type,
        original_message_id=_message_id(returned.get("message-id")),
        original_mail_from=_typed_address(fields.get("original-mail-from")),
        user_agent=fields.get("user-agent", "")[:200],
        arrival_date=_date(fields.get("arrival-date")),
    )


def _date(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


# -- mailto ----------------------------------------------------------------------------------


def _mailto_tokens(rcpt_tos: Sequence[str], mailbox: str) -> list[str]:
    """The tokens of the recipients addressed ``<mailbox>+<token>@<domain>``, in order, once."""
    local, _, domain = mailbox.strip().partition("@")
    if not local:
        return []
    domain_pattern = re.escape(domain) if domain else r"[^@\s]+"
    pattern = re.compile(
        rf"{re.escape(local)}\+{_MAILTO_LOCAL}@{domain_pattern}", re.IGNORECASE | re.ASCII
    )
    tokens: list[str] = []
    for rcpt in rcpt_tos:
        match = pattern.fullmatch(rcpt.strip().removeprefix("<").removesuffix(">"))
        # The token is case-sensitive: only the mailbox and domain ignore case.
        if match and match.group("token") not in tokens:
            tokens.append(match.group("token"))
    return tokens


__all__ = ["parse_inbound_mail"]
