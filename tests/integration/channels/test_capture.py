"""CaptureChannel with an in-memory outbox, and raw_bytes against what the HTTP adapters send."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

import pytest
from tests.integration.channels.servers import Reply, StubServer, fixture

from consentry.channels.capture import CaptureChannel, raw_bytes
from consentry.channels.http_pool import HttpPool
from consentry.channels.twilio_sms import TwilioSmsChannel
from consentry.channels.whatsapp_cloud import WhatsAppCloudChannel
from consentry.domain.delivery import (
    EmailMessage,
    OutboundMessage,
    PermanentDeliveryError,
    SmsMessage,
    WhatsAppMessage,
)
from consentry.domain.model import Channel
from consentry.services.ports import CapturedMessage

NOW = datetime(2025, 1, 14, 9, 30, tzinfo=UTC)
TENANT = uuid.UUID("5f0c8a52-3d6e-4b1a-9c7f-2e8d4a6b1c30")
EMAIL = EmailMessage(
    7, TENANT, "bounces@shop.test", "anna@example.org",
    b"From: <hello@shop.test>\r\nTo: <anna@example.org>\r\nSubject: Hi\r\n\r\nBody\r\n",
    "7.x@shop.test",
)  # fmt: skip
SMS = SmsMessage(8, TENANT, "+15558675310", "+15017122661", "Ready & waiting: 50% off?", "d-8")
WHATSAPP = WhatsAppMessage(
    9, TENANT, "+16505551234", "106540352242922", "d-9",
    template_name="appointment_reminder", parameters=("Anna", "Dienstag 10 Uhr"),
)  # fmt: skip


class MemoryOutbox:
    """Stands in for the SQL outbox, which is its own component with its own tests."""

    def __init__(self) -> None:
        self.kept: list[CapturedMessage] = []

    def capture(
        self, message: OutboundMessage, captured_at: datetime, raw: bytes | None = None
    ) -> int:
        recipient = message.rcpt_to if isinstance(message, EmailMessage) else message.to
        self.kept.append(
            CapturedMessage(
                len(self.kept) + 1, message.tenant_id, message.delivery_id, message.channel,
                recipient, "", captured_at, raw if raw is not None else b"",
            )
        )  # fmt: skip
        return len(self.kept)

    def list(self, tenant_id: uuid.UUID | None, limit: int = 50) -> list[CapturedMessage]:
        return [m for m in self.kept if tenant_id in (None, m.tenant_id)][:limit]

    def get(self, capture_id: int) -> CapturedMessage:
        return self.kept[capture_id - 1]


@pytest.mark.parametrize("message", [EMAIL, SMS, WHATSAPP], ids=lambda m: str(m.channel))
def test_send_captures_exactly_the_raw_bytes(message: OutboundMessage) -> None:
    outbox = MemoryOutbox()
    channel = CaptureChannel(message.channel, outbox, lambda: NOW)
    outbox.capture(EMAIL, NOW)  # someone else's message first: ids come from the store

    result = channel.send(message)

    assert result.provider_message_id == "capture-2"
    kept = outbox.get(2)
    assert (kept.delivery_id, kept.channel, kept.captured_at) == (
        message.delivery_id,
        message.channel,
        NOW,
    )
    assert kept.raw == raw_bytes(message)
    assert channel.verify_webhook("https://x.test", {}, b"") is False
    assert channel.parse_webhook({}, b"{}") == []
    channel.close()


def test_raw_bytes_round_trip() -> None:
    assert raw_bytes(EMAIL) == EMAIL.data
    assert parse_qs(raw_bytes(SMS).decode(), strict_parsing=True) == {
        "To": [SMS.to],
        "From": [SMS.sender],
        "Body": [SMS.body],
    }
    document = json.loads(raw_bytes(WHATSAPP))
    assert document["to"] == WHATSAPP.to
    assert document["template"]["name"] == WHATSAPP.template_name
    assert [p["text"] for p in document["template"]["components"][0]["parameters"]] == list(
        WHATSAPP.parameters
    )


def test_raw_bytes_are_what_the_provider_adapters_send(stub: StubServer) -> None:
    stub.answer(
        Reply(201, fixture("twilio", "message_created.json")),
        Reply(200, fixture("whatsapp", "message_created.json")),
    )
    with HttpPool(timeout=2.0) as http:
        TwilioSmsChannel("AC" + "0" * 32, "token", stub.url, client=http).send(SMS)
        WhatsAppCloudChannel("token", "secret", stub.url, client=http).send(WHATSAPP)

    assert [r.body for r in stub.requests] == [raw_bytes(SMS), raw_bytes(WHATSAPP)]


def test_misrouted_or_empty_messages_are_refused_without_capture() -> None:
    outbox = MemoryOutbox()
    sms_channel = CaptureChannel(Channel.SMS, outbox, lambda: NOW)
    whatsapp_channel = CaptureChannel(Channel.WHATSAPP, outbox, lambda: NOW)

    with pytest.raises(PermanentDeliveryError):
        sms_channel.send(EMAIL)
    with pytest.raises(PermanentDeliveryError):
        whatsapp_channel.send(WhatsAppMessage(1, TENANT, "+16505551234", "1", "d-1"))

    assert outbox.kept == []
