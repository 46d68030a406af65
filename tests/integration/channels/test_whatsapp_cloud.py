"""WhatsAppCloudChannel against a real HTTP server answering with recorded Cloud API payloads."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.integration.channels.conftest import Send
from tests.integration.channels.servers import Reply, StubServer, fixture, unused_port

from consentry.channels.http_pool import HttpPool
from consentry.channels.whatsapp_cloud import (
    WhatsAppCloudChannel,
    request_body,
    verify_subscription,
)
from consentry.domain.delivery import (
    DeliveryStatus,
    PermanentDeliveryError,
    ProviderSignal,
    TransientDeliveryError,
    WhatsAppMessage,
)
from consentry.domain.errors import InvalidInput

TOKEN = "EAAJB3x-system-user-token"
APP_SECRET = "4f1e2d3c5b6a79880716253443526170"
# openssl dgst -sha256 -hmac "$APP_SECRET" tests/fixtures/whatsapp/webhook_statuses.json
STATUSES_SIGNATURE = "sha256=b365a3ccd738744c3b54975f27cac79e5d123aef0727c652306fbb4391137367"
PHONE_NUMBER_ID = "106540352242922"
TENANT = uuid.UUID("5f0c8a52-3d6e-4b1a-9c7f-2e8d4a6b1c30")


def template(n: int = 1, *parameters: str) -> WhatsAppMessage:
    return WhatsAppMessage(
        n, TENANT, "+16505551234", PHONE_NUMBER_ID, f"delivery-{n}",
        template_name="appointment_reminder", language="en_US",
        parameters=parameters or ("Anna", "Tuesday 10:00"),
    )  # fmt: skip


def meta_json(name: str, status: int) -> Reply:
    return Reply(status, fixture("whatsapp", name))


@pytest.fixture
def whatsapp(stub: StubServer) -> Iterator[WhatsAppCloudChannel]:
    with HttpPool(timeout=2.0) as http:
        yield WhatsAppCloudChannel(TOKEN, APP_SECRET, stub.url, client=http)


def test_send_posts_the_documented_requests(
    stub: StubServer, whatsapp: WhatsAppCloudChannel, deliver: Send
) -> None:
    stub.default = meta_json("message_created.json", 200)
    text = WhatsAppMessage(2, TENANT, "+16505551234", PHONE_NUMBER_ID, "d-2", text="Grüße 👋")

    result = deliver(whatsapp, template(1))
    deliver(whatsapp, text)

    assert result.provider_message_id == (
        "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3QkYzQzg5MDRFNTg2RTFBQjQA"
    )
    first, second = stub.requests
    assert first.path == f"/v21.0/{PHONE_NUMBER_ID}/messages"
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["content-type"] == "application/json"
    assert json.loads(first.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "template",
        "template": {
            "name": "appointment_reminder",
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [
                        {"type": "text", "text": "Anna"},
                        {"type": "text", "text": "Tuesday 10:00"},
                    ],
                }
            ],
        },
    }
    assert json.loads(second.body) == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "+16505551234",
        "type": "text",
        "text": {"body": "Grüße 👋"},
    }
    assert first.body == request_body(template(1))


@pytest.mark.parametrize(
    ("reply", "error", "code", "signal"),
    [
        (meta_json("error_131050_marketing_opt_out.json", 400), PermanentDeliveryError, "131050",
         ProviderSignal.OPT_OUT),
        (meta_json("error_131026_undeliverable.json", 400), PermanentDeliveryError, "131026",
         None),
        (meta_json("error_132001_template_missing.json", 404), PermanentDeliveryError, "132001",
         None),
        (meta_json("error_131047_reengagement.json", 400), PermanentDeliveryError, "131047",
         None),
        # Graph answers rate limits with HTTP 400: the error code decides.
        (meta_json("error_130429_rate_limit.json", 400), TransientDeliveryError, "130429", None),
        (meta_json("error_131056_pair_rate_limit.json", 400), TransientDeliveryError, "131056",
         None),
        (meta_json("error_1_unknown.json", 500), TransientDeliveryError, "1", None),
        (Reply(503, b"upstream connect error", {"Retry-After": "30"}), TransientDeliveryError,
         "503", None),
        (Reply(200, b"\x00\x01not json", {}), TransientDeliveryError, "200", None),
        (Reply(200, b'{"messages": []}'), TransientDeliveryError, "200", None),
    ],
)  # fmt: skip
def test_answers_map_to_delivery_errors(
    stub: StubServer,
    whatsapp: WhatsAppCloudChannel,
    reply: Reply,
    error: type[Exception],
    code: str,
    signal: ProviderSignal | None,
    deliver: Send,
) -> None:
    stub.answer(reply)

    with pytest.raises(error) as caught:
        deliver(whatsapp, template())

    assert caught.value.provider_code == code  # type: ignore[attr-defined]
    assert caught.value.signal == signal  # type: ignore[attr-defined]


def test_a_slow_provider_times_out_and_a_closed_port_is_refused(
    stub: StubServer, deliver: Send
) -> None:
    stub.answer(Reply(200, fixture("whatsapp", "message_created.json"), delay=5.0))
    with HttpPool(timeout=0.2) as http:
        slow = WhatsAppCloudChannel(TOKEN, APP_SECRET, stub.url, client=http)
        closed = WhatsAppCloudChannel(TOKEN, APP_SECRET, f"http://127.0.0.1:{unused_port()}",
                                      client=http)  # fmt: skip
        with pytest.raises(TransientDeliveryError, match="in time"):
            deliver(slow, template())
        with pytest.raises(TransientDeliveryError, match="ConnectionRefusedError"):
            deliver(closed, template())


def test_a_message_without_content_is_refused_before_any_request(
    stub: StubServer, whatsapp: WhatsAppCloudChannel, deliver: Send
) -> None:
    empty = WhatsAppMessage(1, TENANT, "+16505551234", PHONE_NUMBER_ID, "d-1")
    with pytest.raises(PermanentDeliveryError):
        deliver(whatsapp, empty)
    assert stub.requests == []


# -- webhooks ------------------------------------------------------------------------------------


def test_verify_webhook_with_a_known_vector(whatsapp: WhatsAppCloudChannel) -> None:
    body = fixture("whatsapp", "webhook_statuses.json")
    url = "https://hooks.shop.test/webhooks/whatsapp"

    assert whatsapp.verify_webhook(url, {"X-Hub-Signature-256": STATUSES_SIGNATURE}, body)
    assert whatsapp.verify_webhook(url, {"x-hub-signature-256": STATUSES_SIGNATURE}, body)
    assert not whatsapp.verify_webhook(url, {"X-Hub-Signature-256": STATUSES_SIGNATURE},
                                       body.replace(b"delivered", b"read"))  # fmt: skip
    assert not whatsapp.verify_webhook(url, {"X-Hub-Signature-256": STATUSES_SIGNATURE[7:]}, body)
    assert not whatsapp.verify_webhook(url, {"X-Hub-Signature": "sha1=00"}, body)
    assert not whatsapp.verify_webhook(url, {"X-Hub-Signature-256": "sha256=é"}, body)
    other = WhatsAppCloudChannel(TOKEN, "another-secret", client=HttpPool())
    try:
        assert not other.verify_webhook(url, {"X-Hub-Signature-256": STATUSES_SIGNATURE}, body)
    finally:
        other.close()


def test_verify_subscription() -> None:
    params = {"hub.mode": "subscribe", "hub.verify_token": "t0ken", "hub.challenge": "1158201444"}
    assert verify_subscription(params, "t0ken") == "1158201444"
    assert verify_subscription(params, "other") is None
    assert verify_subscription(params | {"hub.mode": "unsubscribe"}, "t0ken") is None
    assert verify_subscription({"hub.challenge": "1"}, "t0ken") is None


def test_status_webhook(whatsapp: WhatsAppCloudChannel) -> None:
    events = whatsapp.parse_webhook({}, fixture("whatsapp", "webhook_statuses.json"))

    first = "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3QkYzQzg5MDRFNTg2RTFBQjQA"
    second = "wamid.HBgLMTY1MDU1NTk4NzYVAgARGBJEQzFBMjM0NTY3ODlBQkNERUYA"
    assert [(e.provider_message_id, e.status, e.event_id, e.occurred_at) for e in events] == [
        (first, DeliveryStatus.SENT, f"{first}:sent", datetime.fromtimestamp(1736846467, UTC)),
        (first, DeliveryStatus.DELIVERED, f"{first}:delivered",
         datetime.fromtimestamp(1736846469, UTC)),
        (second, DeliveryStatus.DELIVERED, f"{second}:read",
         datetime.fromtimestamp(1736846530, UTC)),
    ]  # fmt: skip
    assert all(e.signal is None and e.error_code is None for e in events)
    assert all("recipient_id" not in e.raw for e in events)


def test_failed_status_with_marketing_opt_out(whatsapp: WhatsAppCloudChannel) -> None:
    (event,) = whatsapp.parse_webhook({}, fixture("whatsapp", "webhook_status_failed_131050.json"))

    assert (event.status, event.error_code, event.signal) == (
        DeliveryStatus.FAILED,
        "131050",
        ProviderSignal.OPT_OUT,
    )


def test_inbound_messages_are_skipped(whatsapp: WhatsAppCloudChannel) -> None:
    assert whatsapp.parse_webhook({}, fixture("whatsapp", "webhook_inbound_message.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"\xff",
        b'{"entry": {}}',
        b'{"entry": [{"changes": [{"value": []}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"status": "sent"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"id": "w", "status": "sent", '
        b'"timestamp": "soon"}]}}]}]}',
        b'{"entry": [{"changes": [{"value": {"statuses": [{"id": "w", "status": "sent", '
        b'"timestamp": "99999999999999999999"}]}}]}]}',
        b"[" * 100_000,
    ],
)
def test_malformed_webhooks_are_invalid_input(whatsapp: WhatsAppCloudChannel, body: bytes) -> None:
    with pytest.raises(InvalidInput):
        whatsapp.parse_webhook({}, body)


@pytest.fixture(scope="module")
def parser() -> Iterator[WhatsAppCloudChannel]:
    channel = WhatsAppCloudChannel(TOKEN, APP_SECRET)
    yield channel
    channel.close()


@given(body=st.binary(max_size=300))
def test_parse_webhook_on_any_bytes_raises_only_invalid_input(
    parser: WhatsAppCloudChannel, body: bytes
) -> None:
    with contextlib.suppress(InvalidInput):
        parser.parse_webhook({}, body)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12)
    | st.sampled_from(["sent", "read", "failed", "1736846467", "wamid.x"]),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(["entry", "changes", "value", "statuses", "id", "status", "timestamp",
                         "errors", "code", "messages"]),
        inner, max_size=4,
    ),
    max_leaves=25,
)  # fmt: skip


@given(document=json_values)
def test_parse_webhook_on_any_json_raises_only_invalid_input(
    parser: WhatsAppCloudChannel, document: object
) -> None:
    with contextlib.suppress(InvalidInput):
        for event in parser.parse_webhook({}, json.dumps(document).encode()):
            assert event.event_id.startswith(event.provider_message_id + ":")
