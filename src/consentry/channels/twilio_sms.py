"""SMS through Twilio's Messaging API (``POST /2010-04-01/Accounts/{sid}/Messages.json``).

Answers::

    201 {"sid": "SM..."}                          -> SendResult(provider_message_id=sid)
    4xx {"code": 21610, ...} recipient sent STOP  -> PermanentDeliveryError(signal=OPT_OUT)
    4xx {"code": 21211 | 21614 | ...}             -> PermanentDeliveryError(provider_code=code)
    429, 408, 5xx; timeouts, refused connections  -> TransientDeliveryError (Retry-After kept)
    2xx whose body is not a message resource      -> TransientDeliveryError

The last case is a choice: a 2xx we cannot read is most likely not Twilio's own answer (a proxy
or captive portal page), and retrying is safe because every attempt carries the delivery's
``I-Twilio-Idempotency-Token``, with which Twilio ignores a repeat of a request it already took.

Status callbacks and inbound messages are form posts signed with ``X-Twilio-Signature``
(HMAC-SHA1 of the URL followed by the POST parameters sorted by name, each name then value, keyed
with the auth token). ``parse_webhook`` reads status callbacks; ``parse_inbound`` reads a message
a person sent (``MessageSid``, ``From``, ``To``, ``Body``) into an ``InboundMessage`` and a
``Keyword``. With Advanced Opt-Out Twilio has already matched the keyword itself and says so in
``OptOutType`` (STOP, START, HELP); its reading wins over ours, since Twilio acts on it anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from consentry.channels import HttpChannel, header, json_object, pooled_client, rejection
from consentry.channels.http_pool import HttpPool, HttpReply
from consentry.domain.delivery import (
    DeliveryStatus,
    OutboundMessage,
    PermanentDeliveryError,
    ProviderEvent,
    ProviderSignal,
    SendResult,
    SmsMessage,
    TransientDeliveryError,
)
from consentry.domain.errors import InvalidInput
from consentry.domain.keywords import KeywordLists, classify
from consentry.domain.model import Channel
from consentry.domain.signals import (
    InboundMessage,
    Keyword,
    KeywordKind,
    ParsedInput,
    SignalSource,
    Unrecognised,
)

log = logging.getLogger("consentry.channels.twilio")

OPT_OUT_CODE = 21610  # "Attempt to send to unsubscribed recipient": the person replied STOP
_SID = re.compile(r"[A-Z]{2}[0-9a-fA-F]{32}")
_STATUSES = {
    "accepted": DeliveryStatus.SENT,  # Twilio holds it; for us it has left
    "scheduled": DeliveryStatus.SENT,
    "queued": DeliveryStatus.SENT,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,
    "undelivered": DeliveryStatus.FAILED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
_OPT_OUT_TYPES = {
    "STOP": KeywordKind.OPT_OUT,
    "START": KeywordKind.OPT_IN,
    "HELP": KeywordKind.HELP,
}
_MAX_BODY_TEXT = 1600  # ten concatenated segments: the longest SMS Twilio delivers
# Parameters kept in ProviderEvent.raw; To, From, Body and the caller's location are personal.
_KEPT = frozenset({"AccountSid", "ApiVersion", "ErrorCode", "MessageSid", "MessageStatus",
                   "MessagingServiceSid", "SmsSid", "SmsStatus"})  # fmt: skip


def request_body(message: SmsMessage, status_callback_url: str | None = None) -> bytes:
    """The form-encoded body of the create-message request (also what ``capture`` keeps)."""
    form = {"To": message.to}
    # A Messaging Service (MG...) picks the sending number from its pool itself.
    form["MessagingServiceSid" if message.sender.startswith("MG") else "From"] = message.sender
    form["Body"] = message.body
    if status_callback_url:
        form["StatusCallback"] = status_callback_url
    return urlencode(form).encode("ascii")


def signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """X-Twilio-Signature of a request to ``url`` with these POST parameters."""
    payload = url + "".join(name + value for name, value in sorted(params))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL with and without its scheme's default port: Twilio signs whichever form it
    called, and a proxy in front of us may have added or dropped ``:443`` (its SDKs try both)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return [url]
    default = {"https": 443, "http": 80}.get(parts.scheme)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if default is None or not hostport:
        return [url]
    if port is None:
        return [url, urlunsplit(parts._replace(netloc=f"{userinfo}{at}{hostport}:{default}"))]
    if port == default:
        host = hostport.rsplit(":", 1)[0]
        return [url, urlunsplit(parts._replace(netloc=f"{userinfo}{at}{host}"))]
    return [url]


class TwilioSmsChannel(HttpChannel):
    """Sends ``SmsMessage`` through one Twilio account; thread-safe."""

    channel: Channel = Channel.SMS

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str = "https://api.twilio.com",
        status_callback_url: str | None = None,
        client: HttpPool | None = None,
        *,
        timeout: float = 10.0,
        connections: int = 32,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._url = f"{base_url.rstrip('/')}/2010-04-01/Accounts/{account_sid}/Messages.json"
        self._auth = "Basic " + base64.b64encode(f"{account_sid}:{auth_token}".encode()).decode()
        self._token = auth_token
        self._callback = status_callback_url
        self._owns_client = client is None
        self._client = client or pooled_client(timeout, connections)
        # Sends worth running at once: one per connection (the dispatcher sizes its lanes so).
        self.concurrency = self._client.max_connections
        self._clock = clock

    def _request(self, message: OutboundMessage) -> tuple[str, bytes, Mapping[str, str]]:
        if not isinstance(message, SmsMessage):
            raise PermanentDeliveryError(f"the Twilio SMS channel cannot send {message.channel}")
        headers = {
            "Authorization": self._auth,
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            "I-Twilio-Idempotency-Token": message.idempotency_key,
        }
        return self._url, request_body(message, self._callback), headers

    def _result(self, response: HttpReply) -> SendResult:
        payload = json_object(response) or {}
        if response.is_success:
            sid = payload.get("sid")
            if not isinstance(sid, str) or not sid:
                raise TransientDeliveryError(
                    f"Twilio answered {response.status_code} without a message sid",
                    provider_code=str(response.status_code),
                )
            return SendResult(provider_message_id=sid, detail=str(payload.get("status", "")))
        code = payload.get("code")
        provider_code = str(code) if isinstance(code, int) and not isinstance(code, bool) else None
        raise rejection(
            response,
            provider_code,
            str(payload.get("message", "")),
            signal=ProviderSignal.OPT_OUT if code == OPT_OUT_CODE else None,
        )

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether ``X-Twilio-Signature`` signs ``url`` (as Twilio called it, query included)
        and the form parameters in ``body``; compared in constant time."""
        given = header(headers, "X-Twilio-Signature")
        if not given:
            return False
        try:
            params = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return False
        expected = given.encode("utf-8", "replace")
        return any(
            hmac.compare_digest(signature(self._token, candidate, params).encode(), expected)
            for candidate in _url_variants(url)
        )

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        """One event from a status callback; [] for an inbound message (another feature) or a
        status this adapter does not know yet."""
        del headers  # the body alone carries the report
        fields = _form(body)
        sid = fields.get("MessageSid") or fields.get("SmsSid") or ""
        status = fields.get("MessageStatus") or fields.get("SmsStatus") or ""
        error_code = fields.get("ErrorCode") or None
        if not _SID.fullmatch(sid) or not status:
            raise InvalidInput("a Twilio status callback has a MessageSid and a MessageStatus")
        if error_code is not None and not (error_code.isascii() and error_code.isdigit()):
            raise InvalidInput("a Twilio ErrorCode is a number")
        if status not in _STATUSES:
            if status not in ("receiving", "received"):
                log.info("ignoring Twilio status %r for %s", status[:20], sid)
            return []
        return [
            ProviderEvent(
                provider_message_id=sid,
                status=_STATUSES[status],
                # Status callbacks carry no timestamp: the report is as recent as its arrival.
                occurred_at=self._clock(),
                event_id=f"{sid}:{status}",
                error_code=error_code,
                signal=ProviderSignal.OPT_OUT if error_code == str(OPT_OUT_CODE) else None,
                raw={name: value for name, value in fields.items() if name in _KEPT},
            )
        ]

    def parse_inbound(
        self, body: bytes, keywords: Mapping[str, KeywordLists] | None = None
    ) -> ParsedInput:
        """A message a person sent: an ``InboundMessage`` and a ``Keyword`` classified with
        ``keywords`` (the defaults when None). A status callback posted here instead is
        ``Unrecognised`` (``parse_webhook`` reads those); InvalidInput for a body that is no
        Twilio form or lacks the message sid, sender or recipient."""
        fields = _form(body)
        if "MessageStatus" in fields and "Body" not in fields:
            return ParsedInput(
                source=SignalSource.TWILIO,
                event_id="sha256:" + hashlib.sha256(body).hexdigest(),
                signals=(Unrecognised("a status callback, not an inbound message"),),
            )
        sid = fields.get("MessageSid") or fields.get("SmsMessageSid") or fields.get("SmsSid") or ""
        sender, recipient = fields.get("From", "").strip(), fields.get("To", "").strip()
        if not _SID.fullmatch(sid) or not sender or not recipient:
            raise InvalidInput("an inbound Twilio message has a MessageSid, a From and a To")
        text = fields.get("Body", "")[:_MAX_BODY_TEXT]
        kind, language = classify(text, keywords)
        twilio_kind = _OPT_OUT_TYPES.get(fields.get("OptOutType", "").strip().upper())
        by_provider = twilio_kind is not None
        if twilio_kind is not None and twilio_kind is not kind:
            kind, language = twilio_kind, None
        at = self._clock()  # inbound webhooks carry no timestamp: as recent as their arrival
        return ParsedInput(
            source=SignalSource.TWILIO,
            event_id=sid,
            signals=(
                InboundMessage(Channel.SMS, sender, recipient, at),
                Keyword(Channel.SMS, sender, recipient, kind, text, language, by_provider),
            ),
            received_at=at,
        )

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _form(body: bytes) -> dict[str, str]:
    """The parameters of a Twilio webhook; InvalidInput unless a UTF-8 form naming each once."""
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
    except ValueError as exc:  # UnicodeDecodeError too
        raise InvalidInput("a Twilio callback is a form-encoded UTF-8 body") from exc
    fields = dict(pairs)
    if len(fields) != len(pairs):
        raise InvalidInput("a Twilio callback names each parameter once")
    return fields
