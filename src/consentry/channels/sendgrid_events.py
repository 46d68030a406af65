"""Bounce and complaint reports from SendGrid's Event Webhook.

SendGrid POSTs a JSON array of events, many to a request. ``SendGridEvents.parse`` turns each
element into one ``ParsedInput`` from ``SignalSource.PROVIDER``, keyed by its ``sg_event_id``
(``sha256:<hex>`` of the element's canonical JSON when it has none), dated by its ``timestamp``::

    bounce, type "bounce" or "blocked"   -> Bounce, its kind from the enhanced status code as for
                                            a DSN (5.x.x hard, 5.2.2 soft, 5.7.x policy, 4.x.x
                                            soft); without a code "bounce" is hard, "blocked" soft
    deferred                             -> Bounce(kind=DELAYED): noted, not a bounce
    spamreport                           -> Complaint(feedback_type=ABUSE)
    dropped                              -> Unrecognised(reason): SendGrid never tried to deliver
    processed, delivered, open, click,
      unsubscribe, group_unsubscribe,
      group_resubscribe, anything else   -> Unrecognised: nothing to apply
    an element that is not an object, a
      bounce, deferral or report without
      an address                         -> Unrecognised, so the rest of the batch still applies
    a body that is not a JSON array of
      at most 10,000 elements            -> InvalidInput

A drop for "Bounced Address", "Spam Reporting Address" or "Unsubscribed Address" means the
address is on SendGrid's own suppression list. The bounce or report that put it there arrived as
an event of its own; acting on the drop would suppress on SendGrid's word alone, so it is noted.
``unsubscribe`` and ``group_unsubscribe`` come from SendGrid's own subscription tracking links,
not from consentry's: they could become opt-outs later, and are Unrecognised until then.

Reports are tied to what consentry sent by ``smtp-id``, the Message-ID. SendGrid keeps the
sender's own Message-ID there only when the From domain is authenticated with it; otherwise it
puts its own id there, and the pipeline keeps such reports as unattributed.

Requests are signed ("Signed Event Webhook"): ``X-Twilio-Email-Event-Webhook-Signature`` is a
base64 DER ECDSA signature, with the P-256 key whose public half SendGrid shows as base64 DER
SubjectPublicKeyInfo, of SHA-256 over the ``X-Twilio-Email-Event-Webhook-Timestamp`` value
followed by the raw body. ``verify`` also refuses a timestamp further than ``max_age`` from now.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from consentry.channels import header, redact
from consentry.domain.errors import ConfigurationError, InvalidInput
from consentry.domain.signals import (
    Bounce,
    BounceKind,
    Complaint,
    FeedbackType,
    ParsedInput,
    Signal,
    SignalSource,
    Unrecognised,
    classify_status,
)
from consentry.services.clock import utcnow

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
MAX_EVENTS = 10_000
MAX_BODY_BYTES = 32 * 1024 * 1024
# SendGrid's drop reasons for an address already on one of its own suppression lists.
SENDGRID_SUPPRESSED = frozenset(
    {"Bounced Address", "Spam Reporting Address", "Unsubscribed Address"}
)
_MAX_SIGNATURE = 200  # a DER P-256 signature is at most 72 bytes, 96 in base64
_MAX_EVENT_ID = 200
_MAX_ADDRESS = 320
_MAX_DIAGNOSTIC = 500
_MAX_NAME = 40
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
_BASIC = re.compile(r"\s*([45])\d\d(?!\d)")  # the reply code that starts an SMTP answer
_MESSAGE_ID = re.compile(r"<?\s*([^<>\s@]+@[^<>\s]+?)\s*>?\s*")
_EPOCH_LIMIT = 253_402_300_799  # 9999-12-31T23:59:59Z
_JSON_KINDS: dict[type, str] = {
    list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean",
    type(None): "a null",
}  # fmt: skip


class SendGridEvents:
    """Verifies and reads the Event Webhook of one SendGrid account (or subuser)."""

    def __init__(
        self,
        public_key: str,
        *,
        max_age: timedelta | None = timedelta(minutes=10),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        """``public_key`` as SendGrid shows it (base64 DER) or as PEM; ConfigurationError when
        it is not a P-256 public key. ``max_age`` None accepts any timestamp."""
        self._key = _load_key(public_key)
        self._max_age = max_age
        self._clock = clock

    def verify(self, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether the signature headers sign ``body`` with this account's key, at a time within
        ``max_age`` of now (either side: a captured request is not replayable for long). False
        for a missing, garbled or wrong signature; never raises."""
        signature = header(headers, SIGNATURE_HEADER) or ""
        timestamp = (header(headers, TIMESTAMP_HEADER) or "").strip()
        if not signature or len(signature) > _MAX_SIGNATURE or not _TIMESTAMP.fullmatch(timestamp):
            return False
        if self._max_age is not None:
            signed_at = datetime.fromtimestamp(min(int(timestamp), _EPOCH_LIMIT), UTC)
            if abs(self._clock() - signed_at) > self._max_age:
                return False
        try:
            der = base64.b64decode(signature.strip(), validate=True)
            self._key.verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError, TypeError):  # binascii.Error is a ValueError
            return False
        return True

    def parse(self, body: bytes) -> list[ParsedInput]:
        """One ``ParsedInput`` per element of the batch, in order (see the module docstring);
        InvalidInput for a body that is not a JSON array of objects. Call it on a verified
        body only: parsing does not check the signature."""
        if len(body) > MAX_BODY_BYTES:
            raise InvalidInput("a SendGrid event batch is too large")
        try:
            events: object = json.loads(body)
        except (ValueError, RecursionError) as exc:  # bad JSON or UTF-8, huge numbers, nesting
            raise InvalidInput("a SendGrid event batch is a JSON array") from exc
        if not isinstance(events, list):
            raise InvalidInput("a SendGrid event batch is a JSON array")
        if len(events) > MAX_EVENTS:
            raise InvalidInput(f"a SendGrid event batch has at most {MAX_EVENTS} events")
        if events and not any(isinstance(event, dict) for event in events):
            raise InvalidInput("a SendGrid event batch is an array of event objects")
        return [_parse_event(event, body, index) for index, event in enumerate(events)]


def _parse_event(event: object, body: bytes, index: int) -> ParsedInput:
    if not isinstance(event, dict):
        why = f"{_JSON_KINDS.get(type(event), 'a value')} in the batch, not an event object"
        return ParsedInput(SignalSource.PROVIDER, _digest(event, body, index), (Unrecognised(why),))
    name = _text(event.get("event"), _MAX_NAME) or "untyped"
    meta = {"event": name}
    if isinstance(event.get("type"), str):
        meta["type"] = _text(event["type"], _MAX_NAME)
    return ParsedInput(
        source=SignalSource.PROVIDER,
        event_id=_event_id(event.get("sg_event_id")) or _digest(event, body, index),
        signals=(_signal(name, event),),
        received_at=_timestamp(event.get("timestamp")),
        meta=meta,
    )


def _signal(name: str, event: dict[str, object]) -> Signal:
    if name == "dropped":
        reason = redact(_text(event.get("reason"), 200), 100) or "no reason given"
        if reason in SENDGRID_SUPPRESSED:
            return Unrecognised(f"dropped event: {reason}, on SendGrid's own suppression list")
        return Unrecognised(f"dropped event: {reason}")
    if name not in ("bounce", "deferred", "spamreport"):
        return Unrecognised(f"{name} event: nothing to apply")
    recipient = _address(event.get("email"))
    if recipient is None:
        return Unrecognised(f"{name} event without a recipient address")
    message_id = _message_id(event.get("smtp-id"))
    if name == "spamreport":
        return Complaint(
            recipient=recipient,
            feedback_type=FeedbackType.ABUSE,
            original_message_id=message_id,
            arrival_date=_timestamp(event.get("timestamp")),
        )
    if name == "deferred":
        response = _text(event.get("response"), _MAX_DIAGNOSTIC * 2) or _text(
            event.get("reason"), _MAX_DIAGNOSTIC * 2
        )
        return Bounce(
            recipient=recipient,
            kind=BounceKind.DELAYED,
            status=_status("", response),
            diagnostic=response[:_MAX_DIAGNOSTIC],
            original_message_id=message_id,
        )
    reason = _text(event.get("reason"), _MAX_DIAGNOSTIC * 2)
    status = _status(_text(event.get("status"), _MAX_NAME), reason)
    if status:
        kind = classify_status(status)
    else:  # a blocked message is one the receiver refused for its own reasons, not the address
        kind = BounceKind.SOFT if event.get("type") == "blocked" else BounceKind.HARD
    return Bounce(
        recipient=recipient,
        kind=kind,
        status=status,
        diagnostic=reason[:_MAX_DIAGNOSTIC],
        original_message_id=message_id,
    )


def _status(status: str, reason: str) -> str:
    """The enhanced status code: SendGrid's ``status``, unless it is the generic ``X.0.0`` and
    the receiver's reply names a code of the same class (``550 5.7.1 ...``, a policy refusal
    SendGrid reports as 5.0.0); else the reply's enhanced or basic code (``550`` -> 5.0.0)."""
    given = _ENHANCED.search(status)
    replied = _ENHANCED.search(reason)
    if given and replied and given.group(2, 3) == ("0", "0") and replied[1] == given[1]:
        return ".".join(replied.groups())
    found = given or replied
    if found:
        return ".".join(found.groups())
    basic = _BASIC.match(reason)
    return f"{basic[1]}.0.0" if basic else ""


def _load_key(public_key: str) -> ec.EllipticCurvePublicKey:
    text = public_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode("ascii"))
        else:
            key = load_der_public_key(base64.b64decode("".join(text.split()), validate=True))
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # binascii.Error is a ValueError
        raise ConfigurationError("the SendGrid verification key is not readable") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ConfigurationError("the SendGrid verification key is not an ECDSA P-256 key")
    return key


def _text(value: object, limit: int) -> str:
    """A string field as printable one-line text of at most ``limit`` characters; "" if absent.
    Lone surrogates and control characters (which JSON can carry) are dropped."""
    if not isinstance(value, str):
        return ""
    value = value[: limit * 2].encode("utf-8", "ignore").decode("utf-8")
    value = " ".join("".join(ch for ch in value if ch.isprintable() or ch.isspace()).split())
    return value[:limit]


def _address(value: object) -> str | None:
    address = _text(value, _MAX_ADDRESS + 1)
    if not address or len(address) > _MAX_ADDRESS or " " in address:
        return None
    local, at, domain = address.rpartition("@")
    return address if at and local and domain else None


def _message_id(value: object) -> str | None:
    """``left@right`` of ``smtp-id`` (``<left@right>`` as SendGrid writes it)."""
    match = _MESSAGE_ID.fullmatch(_text(value, _MAX_EVENT_ID + 2))
    return match[1] if match and len(match[1]) <= _MAX_EVENT_ID else None


def _event_id(value: object) -> str | None:
    if not isinstance(value, str) or not 0 < len(value) <= _MAX_EVENT_ID:
        return None
    return value if value.isascii() and value.isprintable() and " " not in value else None


def _timestamp(value: object) -> datetime | None:
    """A Unix time in seconds as an aware UTC datetime; None unless a plausible number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not 0 <= value <= _EPOCH_LIMIT:  # also false for NaN
        return None
    return datetime.fromtimestamp(value, UTC)


def _digest(event: object, body: bytes, index: int) -> str:
    """``sha256:<hex>`` of the element's canonical JSON (sorted keys, ASCII, no spaces)."""
    try:
        canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    except (ValueError, TypeError, RecursionError):  # what decoded may still not re-encode
        canonical = f"{hashlib.sha256(body).hexdigest()}#{index}"
    return "sha256:" + hashlib.sha256(canonical.encode("ascii")).hexdigest()


__all__ = ["MAX_EVENTS", "SIGNATURE_HEADER", "TIMESTAMP_HEADER", "SendGridEvents"]
