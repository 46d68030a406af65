"""TwilioSmsChannel against a real HTTP server answering with recorded Twilio payloads."""

from __future__ import annotations

import base64
import contextlib
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from urllib.parse import parse_qs, urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.integration.channels.conftest import Send
from tests.integration.channels.servers import Reply, StubServer, fixture, unused_port

from consentry.channels.http_pool import HttpPool
from consentry.channels.twilio_sms import TwilioSmsChannel, request_body, signature
from consentry.domain.delivery import (
    DeliveryStatus,
    PermanentDeliveryError,
    ProviderSignal,
    SmsMessage,
    TransientDeliveryError,
    WhatsAppMessage,
)
from consentry.domain.errors import InvalidInput

SID = "AC3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f"
TOKEN = "9f8e7d6c5b4a39281706f5e4d3c2b1a0"
CALLBACK = "https://hooks.shop.test/webhooks/twilio/status"
NOW = datetime(2025, 1, 14, 9, 30, tzinfo=UTC)
TENANT = uuid.UUID("5f0c8a52-3d6e-4b1a-9c7f-2e8d4a6b1c30")


def sms(n: int = 1, sender: str = "+15017122661") -> SmsMessage:
    body = "Main Street Motors: your car is ready. Reply STOP to opt out."
    return SmsMessage(n, TENANT, "+15558675310", sender, body, f"delivery-{n}-attempt")


def twilio_json(name: str, status: int, **headers: str) -> Reply:
    return Reply(status, fixture("twilio", name), {"Content-Type": "application/json"} | headers)


@pytest.fixture
def client() -> Iterator[HttpPool]:
    with HttpPool(timeout=2.0) as http:
        yield http


@pytest.fixture
def twilio(stub: StubServer, client: HttpPool) -> TwilioSmsChannel:
    return TwilioSmsChannel(SID, TOKEN, stub.url, CALLBACK, client, clock=lambda: NOW)


def test_send_posts_the_documented_request(
    stub: StubServer, twilio: TwilioSmsChannel, deliver: Send
) -> None:
    stub.answer(twilio_json("message_created.json", 201), twilio_json("message_created.json", 201))

    result = deliver(twilio, sms(1))
    deliver(twilio, sms(2, sender="MG2a4c6e8f0b1d3f5a7c9e1b3d5f7a9c1e"))

    assert result.provider_message_id == "SM9b2f4a7c1d3e5f60718293a4b5c6d7e8"
    first, second = stub.requests
    assert first.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert first.headers["authorization"] == "Basic " + base64.b64encode(
        f"{SID}:{TOKEN}".encode()
    ).decode("ascii")
    assert first.headers["content-type"] == "application/x-www-form-urlencoded"
    assert first.headers["i-twilio-idempotency-token"] == "delivery-1-attempt"
    assert parse_qs(first.body.decode(), strict_parsing=True) == {
        "To": ["+15558675310"],
        "From": ["+15017122661"],
        "Body": [sms().body],
        "StatusCallback": [CALLBACK],
    }
    form = parse_qs(second.body.decode())
    assert form["MessagingServiceSid"] == ["MG2a4c6e8f0b1d3f5a7c9e1b3d5f7a9c1e"]
    assert "From" not in form
    assert first.body == request_body(sms(1), CALLBACK)


@pytest.mark.parametrize(
    ("reply", "error", "code", "signal"),
    [
        (twilio_json("error_21610_unsubscribed.json", 400), PermanentDeliveryError, "21610",
         ProviderSignal.OPT_OUT),
        (twilio_json("error_21211_invalid_to.json", 400), PermanentDeliveryError, "21211", None),
        (twilio_json("error_21614_not_mobile.json", 400), PermanentDeliveryError, "21614", None),
        (twilio_json("error_20429_too_many_requests.json", 429), TransientDeliveryError, "20429",
         None),
        (twilio_json("error_20500_internal.json", 500), TransientDeliveryError, "20500", None),
        (Reply(502, b"<html>Bad Gateway</html>", {}), TransientDeliveryError, "502", None),
        (Reply(404, b"<html>Not Found</html>", {}), PermanentDeliveryError, "404", None),
        # A 2xx that is no message resource: retried (the idempotency token makes it safe).
        (Reply(200, b"<html>Welcome to the hotel Wi-Fi</html>", {}), TransientDeliveryError,
         "200", None),
        (Reply(201, b'{"status": "queued"}'), TransientDeliveryError, "201", None),
    ],
)  # fmt: skip
def test_answers_map_to_delivery_errors(
    stub: StubServer,
    twilio: TwilioSmsChannel,
    reply: Reply,
    error: type[Exception],
    code: str,
    signal: ProviderSignal | None,
    deliver: Send,
) -> None:
    stub.answer(reply)

    with pytest.raises(error) as caught:
        deliver(twilio, sms())

    assert caught.value.provider_code == code  # type: ignore[attr-defined]
    assert caught.value.signal == signal  # type: ignore[attr-defined]
    assert "5558675310" not in str(caught.value)  # Twilio echoes the number: kept out


def test_retry_after_is_kept_in_seconds_and_as_a_date(
    stub: StubServer, twilio: TwilioSmsChannel, deliver: Send
) -> None:
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    stub.answer(
        twilio_json("error_20429_too_many_requests.json", 429, **{"Retry-After": "7"}),
        Reply(503, b"", {"Retry-After": later}),
    )

    with pytest.raises(TransientDeliveryError) as seconds:
        deliver(twilio, sms())
    with pytest.raises(TransientDeliveryError) as date:
        deliver(twilio, sms())

    assert seconds.value.retry_after == timedelta(seconds=7)
    assert date.value.retry_after is not None
    assert timedelta(seconds=100) < date.value.retry_after <= timedelta(seconds=120)


def test_a_slow_provider_times_out_as_transient(stub: StubServer, deliver: Send) -> None:
    stub.answer(Reply(201, fixture("twilio", "message_created.json"), delay=5.0))
    with HttpPool(timeout=0.2) as http:
        channel = TwilioSmsChannel(SID, TOKEN, stub.url, client=http)
        with pytest.raises(TransientDeliveryError, match="in time"):
            deliver(channel, sms())


def test_connection_refused_is_transient(deliver: Send) -> None:
    channel = TwilioSmsChannel(SID, TOKEN, f"http://127.0.0.1:{unused_port()}", timeout=2.0)
    try:
        with pytest.raises(TransientDeliveryError, match="ConnectionRefusedError"):
            deliver(channel, sms())
    finally:
        channel.close()


def test_other_channels_messages_are_refused(
    twilio: TwilioSmsChannel, stub: StubServer, deliver: Send
) -> None:
    with pytest.raises(PermanentDeliveryError):
        deliver(twilio, WhatsAppMessage(1, TENANT, "+15558675310", "1065", "k", text="hi"))
    assert stub.requests == []


def test_concurrent_sends_share_one_client(stub: StubServer, twilio: TwilioSmsChannel) -> None:
    stub.default = twilio_json("message_created.json", 201)
    failures: list[Exception] = []

    def work(thread: int) -> None:
        try:
            for i in range(25):
                twilio.send(sms(thread * 100 + i))
        except Exception as exc:  # noqa: BLE001  (reported by the assertion below)
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    tokens = sorted(r.headers["i-twilio-idempotency-token"] for r in stub.requests)
    assert tokens == sorted(f"delivery-{t * 100 + i}-attempt" for t in range(8) for i in range(25))


# -- webhooks ------------------------------------------------------------------------------------

DOCS_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOCS_PARAMS = {"CallSid": "CA1234567890ABCDE", "Caller": "+12349013030", "Digits": "1234",
               "From": "+12349013030", "To": "+18005551212"}  # fmt: skip


def test_signature_matches_twilios_documented_example() -> None:
    assert signature("12345", DOCS_URL, list(DOCS_PARAMS.items())) == "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


def test_verify_webhook(twilio: TwilioSmsChannel) -> None:
    docs = TwilioSmsChannel(SID, "12345", client=HttpPool())
    body = urlencode(sorted(DOCS_PARAMS.items(), reverse=True)).encode()  # order is irrelevant
    good = {"x-twilio-signature": "0/KCTR6DLpKmkAf8muzZqo1nDgQ="}
    try:
        assert docs.verify_webhook(DOCS_URL, good, body)
        assert docs.verify_webhook(DOCS_URL.replace(".com/", ".com:443/"), good, body)
        assert not docs.verify_webhook(DOCS_URL.replace("bar=2", "bar=3"), good, body)
        assert not docs.verify_webhook(DOCS_URL, good, body.replace(b"1234", b"9999"))
        assert not docs.verify_webhook(DOCS_URL, {}, body)
        assert not docs.verify_webhook(DOCS_URL, {"X-Twilio-Signature": "0/KC"}, body)
        assert not docs.verify_webhook(DOCS_URL, {"X-Twilio-Signature": "é"}, b"\xff")
        assert not twilio.verify_webhook(DOCS_URL, good, body)  # another account's token
    finally:
        docs.close()
    callback = fixture("twilio", "status_callback_delivered.form")
    params = parse_qs(callback.decode())
    header = signature(TOKEN, CALLBACK, [(k, v[0]) for k, v in params.items()])
    assert twilio.verify_webhook(CALLBACK, {"X-Twilio-Signature": header}, callback)


@pytest.mark.parametrize(
    ("name", "status", "error_code", "signal"),
    [
        ("status_callback_sent.form", DeliveryStatus.SENT, None, None),
        ("status_callback_delivered.form", DeliveryStatus.DELIVERED, None, None),
        ("status_callback_undelivered_30003.form", DeliveryStatus.FAILED, "30003", None),
        ("status_callback_failed_21610.form", DeliveryStatus.FAILED, "21610",
         ProviderSignal.OPT_OUT),
    ],
)  # fmt: skip
def test_status_callbacks(
    twilio: TwilioSmsChannel,
    name: str,
    status: DeliveryStatus,
    error_code: str | None,
    signal: ProviderSignal | None,
) -> None:
    (event,) = twilio.parse_webhook({}, fixture("twilio", name))

    sid = "SM9b2f4a7c1d3e5f60718293a4b5c6d7e8"
    assert (event.provider_message_id, event.status, event.error_code, event.signal) == (
        sid,
        status,
        error_code,
        signal,
    )
    assert event.event_id == f"{sid}:{name.split('_')[2].removesuffix('.form')}"
    assert event.occurred_at == NOW
    assert not {"To", "From", "Body"} & set(event.raw)


def test_inbound_messages_are_not_status_reports(twilio: TwilioSmsChannel) -> None:
    assert twilio.parse_webhook({}, fixture("twilio", "inbound_message.form")) == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b"MessageStatus=delivered",
        b"MessageSid=SMnot-a-sid&MessageStatus=delivered",
        b"MessageSid=SM9b2f4a7c1d3e5f60718293a4b5c6d7e8",
        b"MessageSid=SM9b2f4a7c1d3e5f60718293a4b5c6d7e8&MessageStatus=failed&ErrorCode=x1",
        b"MessageSid=SM9b2f4a7c1d3e5f60718293a4b5c6d7e8&MessageStatus=sent&MessageStatus=failed",
        b"just text",
    ],
)
def test_malformed_callbacks_are_invalid_input(twilio: TwilioSmsChannel, body: bytes) -> None:
    with pytest.raises(InvalidInput):
        twilio.parse_webhook({}, body)


@pytest.fixture(scope="module")
def parser() -> Iterator[TwilioSmsChannel]:
    channel = TwilioSmsChannel(SID, TOKEN, clock=lambda: NOW)
    yield channel
    channel.close()


@given(body=st.binary(max_size=300))
def test_parse_webhook_on_any_bytes_raises_only_invalid_input(
    parser: TwilioSmsChannel, body: bytes
) -> None:
    with contextlib.suppress(InvalidInput):
        parser.parse_webhook({}, body)


@given(
    fields=st.dictionaries(
        st.sampled_from(["MessageSid", "MessageStatus", "SmsSid", "ErrorCode", "To", "x"]),
        st.one_of(st.text(max_size=40), st.just("SM9b2f4a7c1d3e5f60718293a4b5c6d7e8"),
                  st.sampled_from(["delivered", "failed", "received", "queued", "21610"])),
    )
)  # fmt: skip
def test_parse_webhook_on_any_form_raises_only_invalid_input(
    parser: TwilioSmsChannel, fields: dict[str, str]
) -> None:
    try:
        events = parser.parse_webhook({}, urlencode(fields).encode())
    except InvalidInput:
        return
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    assert all(event.provider_message_id == sid for event in events)
