"""Channel adapters: one module per provider, each conforming to ``ChannelAdapter``
(``services/ports.py``) with the same verbs ``send``, ``verify_webhook``, ``parse_webhook``::

    smtp            email through one or more SMTP relays (pooled connections, failover)
    twilio_sms      SMS through Twilio's Programmable Messaging API
    whatsapp_cloud  WhatsApp through Meta's Cloud API
    capture         the embedded default: keeps each message in the outbox instead of sending it
    http_pool       the keep-alive HTTP/1.1 connections the two HTTP adapters share

Import the module you need; nothing here opens a connection. This module holds what the HTTP
adapters share at the boundary: translating transport failures and HTTP answers into
``PermanentDeliveryError`` / ``TransientDeliveryError``, and keeping personal data (addresses,
phone numbers that providers echo in their error texts) out of what gets recorded and logged.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from urllib3.exceptions import HTTPError

from consentry.channels.http_pool import HttpPool, HttpReply
from consentry.domain.delivery import (
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    ProviderSignal,
    SendResult,
    TransientDeliveryError,
)

_EMAIL = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")
_PHONE = re.compile(r"\+?\d[\d ().-]{5,}\d")
_SECONDS = re.compile(r"[0-9]{1,9}")
# A provider asking us to wait longer than a day is treated as a day: backoff caps it anyway.
_MAX_RETRY_AFTER = timedelta(days=1)


def redact(text: str, limit: int = 200) -> str:
    """A provider's reply text without the e-mail addresses and phone numbers it may echo."""
    return _PHONE.sub("<number>", _EMAIL.sub("<address>", text))[:limit]


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A request header by name, whatever case the web framework handed it over in."""
    wanted = name.lower()
    return next((value for key, value in headers.items() if key.lower() == wanted), None)


def pooled_client(timeout: float, connections: int = 32) -> HttpPool:
    """Keep-alive connections for the dispatcher's threads (thread-safe), at most
    ``connections`` to each origin."""
    return HttpPool(timeout=timeout, max_connections=connections)


def post(pool: HttpPool, url: str, *, content: bytes, headers: Mapping[str, str]) -> HttpReply:
    """POST, with every transport failure (refused, reset, timeout, TLS) as transient."""
    try:
        return pool.post(url, content, headers)
    except (OSError, HTTPError) as exc:  # TimeoutError and ssl.SSLError are OSErrors
        raise _transport_error(exc) from exc


def answered(reply: HttpReply | Exception) -> HttpReply:
    """One answer of ``HttpPool.post_many``, its error raised as ``post`` would raise it."""
    if isinstance(reply, HttpReply):
        return reply
    if isinstance(reply, (OSError, HTTPError)):
        raise _transport_error(reply) from reply
    raise PermanentDeliveryError(f"channel error: {type(reply).__name__}") from reply


class HttpChannel(ABC):
    """What the HTTP adapters share: ``send`` posts one message and reads the answer,
    ``send_many`` posts a window's messages at once (``HttpPool.post_many``) and reads each
    answer the same way. An adapter builds a message's request (``_request``, raising a
    DeliveryError for a message it cannot send) and reads the provider's answer (``_result``)."""

    _client: HttpPool

    def send(self, message: OutboundMessage) -> SendResult:
        url, body, headers = self._request(message)
        return self._result(post(self._client, url, content=body, headers=headers))

    def send_many(self, messages: Sequence[OutboundMessage]) -> list[SendResult | DeliveryError]:
        """``send`` for each message, all posted at once; each message's result or error, in
        order."""
        results: list[SendResult | DeliveryError | None] = [None] * len(messages)
        requests, posted = [], []
        for i, message in enumerate(messages):
            try:
                requests.append(self._request(message))
            except DeliveryError as exc:
                results[i] = exc
            else:
                posted.append(i)
        for i, reply in zip(posted, self._client.post_many(requests), strict=True):
            try:
                results[i] = self._result(answered(reply))
            except DeliveryError as exc:
                results[i] = exc
        return [r for r in results if r is not None]

    @abstractmethod
    def _request(self, message: OutboundMessage) -> tuple[str, bytes, Mapping[str, str]]:
        """The URL, body and headers that send ``message`` to the provider."""

    @abstractmethod
    def _result(self, response: HttpReply) -> SendResult:
        """The provider's answer read as a result, or the DeliveryError it means."""


def _transport_error(exc: Exception) -> TransientDeliveryError:
    if isinstance(exc, TimeoutError):  # socket.timeout and a pool that stayed busy, too
        return TransientDeliveryError("the provider did not answer in time")
    return TransientDeliveryError(f"could not reach the provider ({type(exc).__name__})")


def json_object(response: HttpReply) -> dict[str, object] | None:
    """The response body as a JSON object, or None when it is anything else."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # garbage, wrong charset, or absurdly deep nesting
        return None
    return body if isinstance(body, dict) else None


def retry_after(response: HttpReply) -> timedelta | None:
    """Retry-After (RFC 9110 §10.2.3): delay-seconds or an HTTP-date."""
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if _SECONDS.fullmatch(value):
        return min(timedelta(seconds=int(value)), _MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP-dates are always GMT
        when = when.replace(tzinfo=UTC)
    return min(max(when - datetime.now(UTC), timedelta(0)), _MAX_RETRY_AFTER)


def rejection(
    response: HttpReply,
    provider_code: str | None,
    text: str,
    *,
    transient: bool = False,
    signal: ProviderSignal | None = None,
) -> DeliveryError:
    """The delivery error for a non-2xx answer: 408, 429 and 5xx (or ``transient``) are
    retried with the provider's Retry-After; any other 4xx is permanent."""
    status = response.status_code
    code = provider_code or str(status)
    message = f"HTTP {status}, provider code {code}: {redact(text)}"
    if transient or status in (408, 429) or status >= 500:
        return TransientDeliveryError(
            message, provider_code=code, retry_after=retry_after(response)
        )
    return PermanentDeliveryError(message, provider_code=code, signal=signal)
