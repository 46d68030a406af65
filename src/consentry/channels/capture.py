"""The embedded default channel: every message is kept in the outbox instead of being sent.

A fresh installation, a demo or a staging copy delivers nothing to real people until an operator
configures a provider, yet every message can be inspected exactly as it would have left: the
RFC 5322 bytes of an email, or the request body the Twilio or WhatsApp adapter would have sent
(the same functions build both, so the two cannot drift apart).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from consentry.channels import twilio_sms, whatsapp_cloud
from consentry.domain.delivery import (
    EmailMessage,
    OutboundMessage,
    PermanentDeliveryError,
    ProviderEvent,
    SendResult,
    SmsMessage,
    WhatsAppMessage,
)
from consentry.domain.model import Channel
from consentry.services.ports import OutboxStore


def raw_bytes(message: OutboundMessage) -> bytes:
    """Exactly what would have been sent: the email's RFC 5322 bytes, the Twilio form body
    (without a StatusCallback, which belongs to a configured account) or the Cloud API JSON."""
    if isinstance(message, EmailMessage):
        return message.data
    if isinstance(message, SmsMessage):
        return twilio_sms.request_body(message)
    if isinstance(message, WhatsAppMessage):
        return whatsapp_cloud.request_body(message)
    raise TypeError(f"not an outbound message: {type(message).__name__}")


class CaptureChannel:
    """Captures the messages of one channel in ``store``.

    The store's own errors propagate as they are: capturing is a database write that failed,
    not a provider's answer, and the dispatcher treats it like any other crash."""

    def __init__(self, channel: Channel, store: OutboxStore, clock: Callable[[], datetime]) -> None:
        self.channel = channel
        self._store = store
        self._clock = clock

    def send(self, message: OutboundMessage) -> SendResult:
        if message.channel != self.channel:
            raise PermanentDeliveryError(
                f"the {self.channel} capture channel was handed a {message.channel} message"
            )
        raw = raw_bytes(message)  # a WhatsApp message without content is refused here
        capture_id = self._store.capture(message, self._clock(), raw=raw)
        return SendResult(provider_message_id=f"capture-{capture_id}", detail="captured")

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Always False: nothing outside calls back about a captured message."""
        del url, headers, body  # the signature is ChannelAdapter's
        return False

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        """Always empty: a captured message has no later delivery reports."""
        del headers, body
        return []

    def close(self) -> None:
        """Nothing to release: the store belongs to whoever composed this channel."""
