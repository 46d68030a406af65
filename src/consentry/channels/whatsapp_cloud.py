"""WhatsApp through Meta's Cloud API (``POST /{version}/{phone_number_id}/messages``).

Answers (Graph API errors come as ``{"error": {"code": ..., "message": ...}}``, mostly with
HTTP 400 whatever the cause, so the code decides before the status does)::

    {"messages": [{"id": "wamid..."}]}              -> SendResult(provider_message_id=id)
    131050 the person stopped marketing messages    -> PermanentDeliveryError(signal=OPT_OUT)
    131026 undeliverable, 131047 outside the 24-hour
      window, 132001 no such template, other 4xx    -> PermanentDeliveryError(provider_code)
    130429, 131056, 4, 80007 rate limits; 1, 2,
      131016, 133004 "temporarily unavailable"; 5xx;
      timeouts, refused connections                 -> TransientDeliveryError
    2xx without a message id                        -> TransientDeliveryError

The last case is a choice: such a 2xx is most likely not Meta's own answer (a proxy page).
Unlike Twilio the Cloud API has no idempotency key, so a retry after an answer that was lost
could send twice; a lost answer is rarer than a proxy error, and a missed reminder costs more.

Webhooks are JSON signed with ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body,
keyed with the app secret>``; the subscription handshake is ``verify_subscription``.
``parse_webhook`` reads the delivery reports (``statuses``) of a webhook, ``parse_inbound`` what
people did, one ``ParsedInput`` each::

    messages[] (any type but system)     -> InboundMessage: opens or extends the 24-hour window
      type text                          -> + Keyword (STOP and its variants, per language)
      type button / interactive reply
        that is a marketing opt-out       -> + ButtonOptOut ("Stop promotions", a STOP payload)
      type system (number or identity
        changed: not the person writing)  -> Unrecognised
    user_preferences[] marketing "stop"  -> ButtonOptOut (stopped in WhatsApp's own settings)
    user_preferences[] "resume"          -> Unrecognised: marketing again needs a new opt-in

Meta sends no webhook when a person blocks or reports a business: messages to them then fail
with 131026 ("undeliverable"), which has other causes too (no WhatsApp account, old client), so
it is no evidence of a block and ``Block`` is not produced from the Cloud API. The marketing
opt-out that Meta does report on a send (131050) arrives in ``statuses`` and is ``parse_webhook``'s.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from consentry.channels import HttpChannel, header, json_object, pooled_client, rejection
from consentry.channels.http_pool import HttpPool, HttpReply
from consentry.domain.chat_opt_in import parse_ref
from consentry.domain.delivery import (
    DeliveryStatus,
    OutboundMessage,
    PermanentDeliveryError,
    ProviderEvent,
    ProviderSignal,
    SendResult,
    TransientDeliveryError,
    WhatsAppMessage,
)
from consentry.domain.errors import InvalidInput
from consentry.domain.keywords import KeywordLists, classify, normalise
from consentry.domain.model import Channel
from consentry.domain.signals import (
    ButtonOptOut,
    ChatOptIn,
    InboundMessage,
    Keyword,
    KeywordKind,
    ParsedInput,
    Signal,
    SignalSource,
    Unrecognised,
)

OPT_OUT_CODE = 131050  # "user has chosen to stop receiving marketing messages" from the business
TRANSIENT_CODES = frozenset({1, 2, 4, 80007, 130429, 131016, 131056, 133004})
_STATUSES = {
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.DELIVERED,  # read implies delivered; reads are not tracked
    "failed": DeliveryStatus.FAILED,
}


def request_payload(message: WhatsAppMessage) -> dict[str, object]:
    """The JSON object of the send request: a template message, or free text."""
    payload: dict[str, object] = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": message.to,
    }
    if message.template_name is not None:
        template: dict[str, object] = {
            "name": message.template_name,
            "language": {"code": message.language},
        }
        if message.parameters:
            body = [{"type": "text", "text": value} for value in message.parameters]
            template["components"] = [{"type": "body", "parameters": body}]
        payload |= {"type": "template", "template": template}
    elif message.text is not None:
        payload |= {"type": "text", "text": {"body": message.text}}
    else:
        raise PermanentDeliveryError("a WhatsApp message needs a template or a text")
    return payload


def request_body(message: WhatsAppMessage) -> bytes:
    """The bytes of the send request (also what ``capture`` keeps)."""
    return json.dumps(request_payload(message), ensure_ascii=False).encode("utf-8")


_STOP_WORDS = frozenset({"stop", "stopall", "unsubscribe", "optout"})
_MAX_TEXT = 4096  # the longest text body WhatsApp delivers


def verify_subscription(params: Mapping[str, str], verify_token: str) -> str | None:
    """The GET handshake Meta makes when a webhook is configured: the ``hub.challenge`` to echo
    back, or None when the mode or the verify token is wrong."""
    given = params.get("hub.verify_token", "").encode()
    if params.get("hub.mode") != "subscribe" or not verify_token:
        return None
    if not hmac.compare_digest(given, verify_token.encode()):
        return None
    return params.get("hub.challenge")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _list(container: Mapping[str, object], key: str) -> list[dict[str, object]]:
    """``container[key]`` as a list of objects; InvalidInput when it is anything else."""
    value = container.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise InvalidInput(f"a Cloud API webhook's {key} is a list of objects")
    return value


class WhatsAppCloudChannel(HttpChannel):
    """Sends ``WhatsAppMessage`` through the Cloud API with one system-user token; thread-safe."""

    channel: Channel = Channel.WHATSAPP

    def __init__(
        self,
        access_token: str,
        app_secret: str,
        base_url: str = "https://graph.facebook.com",
        api_version: str = "v21.0",
        client: HttpPool | None = None,
        *,
        timeout: float = 10.0,
        connections: int = 32,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._base = f"{base_url.rstrip('/')}/{api_version}"
        self._headers = {
            "Authorization": f"Bearer {access_token}",
            "Content-Type": "application/json",
        }
        self._secret = app_secret.encode()
        self._owns_client = client is None
        self._client = client or pooled_client(timeout, connections)
        # Sends worth running at once: one per connection (the dispatcher sizes its lanes so).
        self.concurrency = self._client.max_connections

    def _request(self, message: OutboundMessage) -> tuple[str, bytes, Mapping[str, str]]:
        if not isinstance(message, WhatsAppMessage):
            raise PermanentDeliveryError(f"the WhatsApp channel cannot send {message.channel}")
        url = f"{self._base}/{message.phone_number_id}/messages"
        return url, request_body(message), self._headers

    def _result(self, response: HttpReply) -> SendResult:
        payload = json_object(response) or {}
        if response.is_success:
            messages = payload.get("messages")
            first = messages[0] if isinstance(messages, list) and messages else None
            wamid = first.get("id") if isinstance(first, dict) else None
            if not isinstance(wamid, str) or not wamid:
                raise TransientDeliveryError(
                    f"the Cloud API answered {response.status_code} without a message id",
                    provider_code=str(response.status_code),
                )
            return SendResult(provider_message_id=wamid)
        error = payload.get("error")
        error = error if isinstance(error, dict) else {}
        code = _int(error.get("code"))
        raise rejection(
            response,
            None if code is None else str(code),
            str(error.get("message", "")),
            transient=code in TRANSIENT_CODES,
            signal=ProviderSignal.OPT_OUT if code == OPT_OUT_CODE else None,
        )

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Whether ``X-Hub-Signature-256`` is the app secret's HMAC of ``body``."""
        del url  # Meta signs the body only
        given = (header(headers, "X-Hub-Signature-256") or "").encode("utf-8", "replace")
        expected = b"sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest().encode()
        return hmac.compare_digest(given.lower(), expected)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        """The delivery reports (``statuses``) of a webhook; inbound ``messages`` in the same
        envelope belong to another feature and are skipped here."""
        del headers
        events: list[ProviderEvent | None] = []
        for value in _values(body):
            events += [_event(status) for status in _list(value, "statuses")]
        return [event for event in events if event is not None]

    def parse_inbound(
        self, body: bytes, keywords: Mapping[str, KeywordLists] | None = None
    ) -> list[ParsedInput]:
        """What people did, one ``ParsedInput`` per message or preference change (see the
        module docstring); [] for a webhook of delivery reports only. InvalidInput for a body
        that is not a Cloud API webhook."""
        parsed: list[ParsedInput] = []
        for value in _values(body):
            business = _business_number(value)
            parsed += [self._message(item, business, keywords) for item in _list(value, "messages")]
            parsed += [
                self._preference(item, business) for item in _list(value, "user_preferences")
            ]
        return parsed

    def verify_subscription(
        self, mode: str, token: str, challenge: str, verify_token: str
    ) -> str | None:
        """The subscription handshake (``hub.mode``, ``hub.verify_token``, ``hub.challenge``):
        the challenge to echo, or None; the token is compared in constant time."""
        params = {"hub.mode": mode, "hub.verify_token": token, "hub.challenge": challenge}
        return verify_subscription(params, verify_token) or None

    def _message(
        self,
        item: dict[str, object],
        business: str,
        keywords: Mapping[str, KeywordLists] | None,
    ) -> ParsedInput:
        event_id = _item_id(item, "message")
        sender = _number(item.get("from"))
        kind = item.get("type")
        if sender is None:
            return _parsed(event_id, Unrecognised("a Cloud API message without a sender"))
        if kind == "system":
            # A number or identity change that WhatsApp reports: the person wrote nothing.
            return _parsed(event_id, Unrecognised("a WhatsApp system message"))
        at = _timestamp(item.get("timestamp")) or self._clock()
        signals: list[Signal] = [InboundMessage(Channel.WHATSAPP, sender, business, at)]
        if kind == "text":
            text_object = item.get("text")
            text = text_object.get("body") if isinstance(text_object, dict) else None
            if isinstance(text, str):
                word, language = classify(text[:_MAX_TEXT], keywords)
                ref = parse_ref(text[:_MAX_TEXT])
                if ref is not None and word is KeywordKind.OTHER:
                    signals.append(ChatOptIn(sender, business, *ref, text[:_MAX_TEXT]))
                else:
                    signals.append(
                        Keyword(
                            Channel.WHATSAPP, sender, business, word, text[:_MAX_TEXT], language
                        )
                    )
        elif kind in ("button", "interactive"):
            payload = _reply_payload(item)
            if payload is not None and _is_stop(*payload, keywords=keywords):
                signals.append(ButtonOptOut(sender, business, payload[0] or payload[1]))
        return _parsed(event_id, *signals, received_at=at)

    def _preference(self, item: dict[str, object], business: str) -> ParsedInput:
        event_id = _item_id(item, "user_preferences")
        sender = _number(item.get("wa_id"))
        category, choice = item.get("category"), item.get("value")
        if sender is None or category != "marketing_messages":
            return _parsed(event_id, Unrecognised("a user preference this adapter does not read"))
        if choice == "stop":
            at = _timestamp(item.get("timestamp")) or self._clock()
            return _parsed(
                event_id, ButtonOptOut(sender, business, "user_preferences:stop"), received_at=at
            )
        # "resume": the person allows marketing again in WhatsApp, but consent for a topic
        # still needs a new affirmative act with its own evidence.
        return _parsed(event_id, Unrecognised(f"marketing messages preference {choice!s:.20}"))

    def close(self) -> None:
        if self._owns_client:
            self._client.close()


def _values(body: bytes) -> list[dict[str, object]]:
    """The ``entry[].changes[].value`` objects of a webhook; InvalidInput for anything else."""
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise InvalidInput("a Cloud API webhook is a JSON object") from exc
    if not isinstance(envelope, dict):
        raise InvalidInput("a Cloud API webhook is a JSON object")
    values: list[dict[str, object]] = []
    for entry in _list(envelope, "entry"):
        for change in _list(entry, "changes"):
            value = change.get("value", {})
            if not isinstance(value, dict):
                raise InvalidInput("a Cloud API change's value is an object")
            values.append(value)
    return values


def _number(value: object) -> str | None:
    """A WhatsApp id or display number (digits, no ``+``) in E.164 form."""
    if not isinstance(value, str):
        return None
    digits = value.strip().removeprefix("+")
    if not (digits.isascii() and digits.isdigit()) or not 6 <= len(digits) <= 15:
        return None
    return "+" + digits


def _business_number(value: Mapping[str, object]) -> str:
    metadata = value.get("metadata")
    if not isinstance(metadata, dict):
        return ""
    display = _number(metadata.get("display_phone_number"))
    if display is not None:
        return display
    phone_number_id = metadata.get("phone_number_id")
    return phone_number_id[:64] if isinstance(phone_number_id, str) else ""


def _item_id(item: Mapping[str, object], kind: str) -> str:
    """The wamid of a message, else a stable digest of the item (preference changes have none)."""
    wamid = item.get("id")
    if isinstance(wamid, str) and 0 < len(wamid) <= 200 and kind == "message":
        return wamid
    canonical = json.dumps(item, sort_keys=True, ensure_ascii=True, default=str)
    return f"{kind}:sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _timestamp(value: object) -> datetime | None:
    seconds = _int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        seconds = int(value[:15])
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _reply_payload(item: Mapping[str, object]) -> tuple[str, str] | None:
    """(payload or id, text or title) of a template quick-reply or an interactive reply."""
    button = item.get("button")
    if isinstance(button, dict):
        payload, text = button.get("payload"), button.get("text")
    else:
        interactive = item.get("interactive")
        if not isinstance(interactive, dict):
            return None
        reply = interactive.get("button_reply") or interactive.get("list_reply")
        if not isinstance(reply, dict):
            return None
        payload, text = reply.get("id"), reply.get("title")
    return (
        payload[:256] if isinstance(payload, str) else "",
        text[:256] if isinstance(text, str) else "",
    )


def _is_stop(payload: str, text: str, *, keywords: Mapping[str, KeywordLists] | None) -> bool:
    """Whether a reply button is a marketing opt-out: its payload or label has a stop word
    ("STOP_PROMOTIONS", "Stop promotions", "unsubscribe"), or its label is an opt-out keyword."""
    for words in (normalise(payload), normalise(text)):
        if _STOP_WORDS & set(words) or any(
            words[i : i + 2] == ("opt", "out") for i in range(len(words))
        ):
            return True
    return classify(text, keywords)[0] is KeywordKind.OPT_OUT


def _parsed(event_id: str, *signals: Signal, received_at: datetime | None = None) -> ParsedInput:
    return ParsedInput(SignalSource.WHATSAPP, event_id, tuple(signals), received_at=received_at)


def _event(status: dict[str, object]) -> ProviderEvent | None:
    """One status object; None for a status that is no delivery report (``deleted`` ...)."""
    wamid, name, timestamp = status.get("id"), status.get("status"), status.get("timestamp")
    if not isinstance(wamid, str) or not wamid or not isinstance(name, str):
        raise InvalidInput("a Cloud API status has an id and a status")
    seconds = _int(timestamp)
    if isinstance(timestamp, str) and timestamp.isascii() and timestamp.isdigit():
        seconds = int(timestamp[:15])  # Meta sends Unix seconds as a string of digits
    if seconds is None:
        raise InvalidInput("a Cloud API status has a Unix timestamp")
    try:
        occurred_at = datetime.fromtimestamp(seconds, UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise InvalidInput("a Cloud API status timestamp is out of range") from exc
    codes = [_int(error.get("code")) for error in _list(status, "errors")]
    error_code = next((code for code in codes if code is not None), None)
    if name not in _STATUSES:
        return None
    return ProviderEvent(
        provider_message_id=wamid,
        status=_STATUSES[name],
        occurred_at=occurred_at,
        event_id=f"{wamid}:{name}",
        error_code=None if error_code is None else str(error_code),
        signal=ProviderSignal.OPT_OUT if OPT_OUT_CODE in codes else None,
        # recipient_id is the person's number: kept out of the stored report.
        raw={key: value for key, value in status.items() if key != "recipient_id"},
    )
