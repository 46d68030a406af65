"""Inbound SMS (Twilio) and WhatsApp (Cloud API) webhooks parsed into signals."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.channels.twilio_sms import TwilioSmsChannel
from consentry.channels.whatsapp_cloud import WhatsAppCloudChannel
from consentry.domain.errors import InvalidInput
from consentry.domain.keywords import DEFAULT_KEYWORDS
from consentry.domain.model import Channel
from consentry.domain.signals import (
    ButtonOptOut,
    InboundMessage,
    Keyword,
    KeywordKind,
    ParsedInput,
    SignalSource,
    Unrecognised,
)

FIXTURES = Path(__file__).parents[2] / "fixtures"
NOW = datetime(2025, 1, 14, 9, 30, tzinfo=UTC)
PERSON, NUMBER = "+15558675310", "+15017122661"
WA_PERSON, WA_BUSINESS = "+16505551234", "+15550783881"


def fixture(provider: str, name: str) -> bytes:
    return (FIXTURES / provider / name).read_bytes()


@pytest.fixture(scope="module")
def twilio() -> Iterator[TwilioSmsChannel]:
    channel = TwilioSmsChannel("AC3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f", "token", clock=lambda: NOW)
    yield channel
    channel.close()


@pytest.fixture(scope="module")
def whatsapp() -> Iterator[WhatsAppCloudChannel]:
    channel = WhatsAppCloudChannel("token", "secret", clock=lambda: NOW)
    yield channel
    channel.close()


# -- Twilio ----------------------------------------------------------------------------------


def keyword_of(parsed: ParsedInput) -> Keyword:
    keywords = [s for s in parsed.signals if isinstance(s, Keyword)]
    assert len(keywords) == 1
    return keywords[0]


def test_twilio_stop(twilio: TwilioSmsChannel) -> None:
    parsed = twilio.parse_inbound(fixture("twilio", "inbound_message.form"))
    assert parsed.source is SignalSource.TWILIO
    assert parsed.event_id == "SM5d8c1e0f2a4b6c8d0e2f4a6b8c0d2e4f"
    assert parsed.received_at == NOW
    assert parsed.signals == (
        InboundMessage(Channel.SMS, PERSON, NUMBER, NOW),
        Keyword(Channel.SMS, PERSON, NUMBER, KeywordKind.OPT_OUT, "STOP", "en"),
    )


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        ("inbound_optout_stop_please.form", KeywordKind.OPT_OUT, "Stop please."),
        # Advanced Opt-Out matched "subscribe" to START itself: Twilio's reading wins.
        ("inbound_advanced_optout_start.form", KeywordKind.OPT_IN, "subscribe"),
        ("inbound_help.form", KeywordKind.HELP, "info?"),
        ("inbound_refusal.form", KeywordKind.REFUSAL_LIKE, "who is this? don't text me"),
    ],
)
def test_twilio_inbound_keywords(
    twilio: TwilioSmsChannel, name: str, kind: KeywordKind, text: str
) -> None:
    keyword = keyword_of(twilio.parse_inbound(fixture("twilio", name)))
    assert (keyword.kind, keyword.text, keyword.sender, keyword.recipient) == (
        kind, text, PERSON, NUMBER,
    )  # fmt: skip
    assert keyword.channel is Channel.SMS


def test_twilio_keywords_use_the_lists_given(twilio: TwilioSmsChannel) -> None:
    body = fixture("twilio", "inbound_message.form").replace(b"Body=STOP", b"Body=Baja")
    assert keyword_of(twilio.parse_inbound(body)).kind is KeywordKind.OPT_OUT
    english = {"en": DEFAULT_KEYWORDS["en"]}
    assert keyword_of(twilio.parse_inbound(body, english)).kind is KeywordKind.OTHER


def test_twilio_status_callback_is_not_an_inbound_message(twilio: TwilioSmsChannel) -> None:
    body = fixture("twilio", "status_callback_delivered.form")
    parsed = twilio.parse_inbound(body)
    assert parsed.signals == (Unrecognised("a status callback, not an inbound message"),)
    assert parsed.event_id.startswith("sha256:")
    assert twilio.parse_webhook({}, body)  # still read as a status report


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b"just text",
        b"Body=STOP&From=%2B15558675310&To=%2B15017122661",  # no sid
        b"MessageSid=SM5d8c1e0f2a4b6c8d0e2f4a6b8c0d2e4f&Body=STOP&To=%2B15017122661",
        b"MessageSid=SM5d8c1e0f2a4b6c8d0e2f4a6b8c0d2e4f&Body=STOP&Body=START&From=x&To=y",
    ],
)
def test_twilio_malformed_inbound_is_invalid_input(twilio: TwilioSmsChannel, body: bytes) -> None:
    with pytest.raises(InvalidInput):
        twilio.parse_inbound(body)


@given(body=st.binary(max_size=300))
def test_twilio_parse_inbound_on_any_bytes_raises_only_invalid_input(
    twilio: TwilioSmsChannel, body: bytes
) -> None:
    with contextlib.suppress(InvalidInput):
        parsed = twilio.parse_inbound(body)
        assert parsed.signals


@given(
    fields=st.dictionaries(
        st.sampled_from(["MessageSid", "SmsSid", "From", "To", "Body", "OptOutType",
                         "MessageStatus", "x"]),
        st.one_of(st.text(max_size=40), st.just("SM5d8c1e0f2a4b6c8d0e2f4a6b8c0d2e4f"),
                  st.sampled_from(["STOP", "START", "HELP", "stop please", "+15558675310"])),
    )
)  # fmt: skip
def test_twilio_parse_inbound_on_any_form(twilio: TwilioSmsChannel, fields: dict[str, str]) -> None:
    try:
        parsed = twilio.parse_inbound(urlencode(fields).encode())
    except InvalidInput:
        return
    if "MessageStatus" in fields and "Body" not in fields:
        assert isinstance(parsed.signals[0], Unrecognised)
        return
    assert parsed.event_id == (fields.get("MessageSid") or fields.get("SmsSid"))
    opt = {"STOP": KeywordKind.OPT_OUT, "START": KeywordKind.OPT_IN, "HELP": KeywordKind.HELP}
    if fields.get("OptOutType", "").strip().upper() in opt:
        assert keyword_of(parsed).kind is opt[fields["OptOutType"].strip().upper()]


# -- WhatsApp --------------------------------------------------------------------------------


def test_whatsapp_text_stop(whatsapp: WhatsAppCloudChannel) -> None:
    parsed = whatsapp.parse_inbound(fixture("whatsapp", "webhook_inbound_message.json"))
    assert len(parsed) == 1
    at = datetime.fromtimestamp(1736847120, UTC)
    assert parsed[0].source is SignalSource.WHATSAPP
    assert parsed[0].event_id == "wamid.HBgLMTY1MDU1NTEyMzQVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert parsed[0].received_at == at
    assert parsed[0].signals == (
        InboundMessage(Channel.WHATSAPP, WA_PERSON, WA_BUSINESS, at),
        Keyword(Channel.WHATSAPP, WA_PERSON, WA_BUSINESS, KeywordKind.OPT_OUT, "STOP", "en"),
    )


def test_whatsapp_stop_promotions_button(whatsapp: WhatsAppCloudChannel) -> None:
    (parsed,) = whatsapp.parse_inbound(
        fixture("whatsapp", "webhook_inbound_button_stop_promotions.json")
    )
    at = datetime.fromtimestamp(1736847200, UTC)
    assert parsed.signals == (
        InboundMessage(Channel.WHATSAPP, WA_PERSON, WA_BUSINESS, at),
        ButtonOptOut(WA_PERSON, WA_BUSINESS, "Stop promotions"),
    )


def test_whatsapp_interactive_replies(whatsapp: WhatsAppCloudChannel) -> None:
    reschedule, opt_out = whatsapp.parse_inbound(
        fixture("whatsapp", "webhook_inbound_interactive_replies.json")
    )
    # Any reply opens the service window; only the opt-out one withdraws anything.
    assert [type(s) for s in reschedule.signals] == [InboundMessage]
    assert [type(s) for s in opt_out.signals] == [InboundMessage, ButtonOptOut]
    assert opt_out.signals[1] == ButtonOptOut(WA_PERSON, WA_BUSINESS, "OPT_OUT_MARKETING")
    assert reschedule.event_id != opt_out.event_id


def test_whatsapp_marketing_preference_stop_and_resume(whatsapp: WhatsAppCloudChannel) -> None:
    body = fixture("whatsapp", "webhook_user_preferences_stop.json")
    (stop,) = whatsapp.parse_inbound(body)
    assert stop.signals == (ButtonOptOut(WA_PERSON, WA_BUSINESS, "user_preferences:stop"),)
    assert stop.event_id.startswith("user_preferences:sha256:")
    assert whatsapp.parse_inbound(body)[0].event_id == stop.event_id  # stable for replays
    assert stop.received_at == datetime.fromtimestamp(1739321024, UTC)
    (resume,) = whatsapp.parse_inbound(fixture("whatsapp", "webhook_user_preferences_resume.json"))
    assert len(resume.signals) == 1
    assert isinstance(resume.signals[0], Unrecognised)
    assert resume.event_id != stop.event_id


def test_whatsapp_system_messages_open_no_window(whatsapp: WhatsAppCloudChannel) -> None:
    system, unsupported = whatsapp.parse_inbound(
        fixture("whatsapp", "webhook_inbound_system_and_unsupported.json")
    )
    assert system.signals == (Unrecognised("a WhatsApp system message"),)
    at = datetime.fromtimestamp(1736847460, UTC)
    assert unsupported.signals == (InboundMessage(Channel.WHATSAPP, WA_PERSON, WA_BUSINESS, at),)


def test_whatsapp_statuses_are_left_to_parse_webhook(whatsapp: WhatsAppCloudChannel) -> None:
    body = fixture("whatsapp", "webhook_status_failed_131050.json")
    assert whatsapp.parse_inbound(body) == []
    assert whatsapp.parse_webhook({}, body)
    # ... and parse_webhook still skips inbound messages.
    assert whatsapp.parse_webhook({}, fixture("whatsapp", "webhook_inbound_message.json")) == []


def _webhook(*messages: dict[str, object]) -> bytes:
    value = {"metadata": {"display_phone_number": "15550783881"}, "messages": list(messages)}
    return json.dumps({"entry": [{"changes": [{"value": value}]}]}).encode()


def test_whatsapp_message_without_id_or_timestamp(whatsapp: WhatsAppCloudChannel) -> None:
    item = {"from": "16505551234", "type": "text", "text": {"body": "hello"}}
    (parsed,) = whatsapp.parse_inbound(_webhook(item))
    assert parsed.event_id.startswith("message:sha256:")
    assert parsed.signals[0] == InboundMessage(Channel.WHATSAPP, WA_PERSON, WA_BUSINESS, NOW)
    assert keyword_of(parsed).kind is KeywordKind.OTHER
    (again,) = whatsapp.parse_inbound(_webhook(item))
    assert again.event_id == parsed.event_id


@pytest.mark.parametrize(
    ("button", "stops"),
    [
        ({"payload": "STOP_PROMOTIONS", "text": "No thanks"}, True),
        ({"payload": "promo-unsubscribe", "text": "Leave"}, True),
        ({"payload": "", "text": "Opt-out"}, True),
        ({"payload": "book", "text": "Book now"}, False),
        ({"payload": "NONSTOP_DEALS", "text": "See deals"}, False),
    ],
)
def test_whatsapp_which_buttons_are_opt_outs(
    whatsapp: WhatsAppCloudChannel, button: dict[str, str], stops: bool
) -> None:
    item = {"from": "16505551234", "id": "wamid.x", "type": "button", "button": button}
    (parsed,) = whatsapp.parse_inbound(_webhook(item))
    assert any(isinstance(s, ButtonOptOut) for s in parsed.signals) is stops


def test_whatsapp_message_without_sender_is_unrecognised(whatsapp: WhatsAppCloudChannel) -> None:
    (parsed,) = whatsapp.parse_inbound(_webhook({"id": "wamid.y", "type": "text"}))
    assert parsed.signals == (Unrecognised("a Cloud API message without a sender"),)


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b"{", b'{"entry": 1}', b'{"entry": [{"changes": [{"value": 3}]}]}',
     b'{"entry": [{"changes": [{"value": {"messages": {}}}]}]}'],
)  # fmt: skip
def test_whatsapp_malformed_is_invalid_input(whatsapp: WhatsAppCloudChannel, body: bytes) -> None:
    with pytest.raises(InvalidInput):
        whatsapp.parse_inbound(body)


def test_verify_subscription_handshake(whatsapp: WhatsAppCloudChannel) -> None:
    assert whatsapp.verify_subscription("subscribe", "t0ken", "1158201444", "t0ken") == (
        "1158201444"
    )
    assert whatsapp.verify_subscription("subscribe", "wrong", "1158201444", "t0ken") is None
    assert whatsapp.verify_subscription("unsubscribe", "t0ken", "1158201444", "t0ken") is None
    assert whatsapp.verify_subscription("subscribe", "", "1", "") is None  # no token configured
    assert whatsapp.verify_subscription("subscribe", "t0ken", "", "t0ken") is None


@given(body=st.binary(max_size=300))
def test_whatsapp_parse_inbound_on_any_bytes(whatsapp: WhatsAppCloudChannel, body: bytes) -> None:
    with contextlib.suppress(InvalidInput):
        whatsapp.parse_inbound(body)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12)
    | st.sampled_from(["text", "button", "interactive", "system", "stop", "16505551234",
                       "marketing_messages", "1736847120"]),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(
        st.sampled_from(["from", "id", "type", "text", "body", "button", "payload", "timestamp",
                         "interactive", "button_reply", "list_reply", "title", "wa_id",
                         "category", "value", "metadata", "display_phone_number"]),
        children, max_size=5),
    max_leaves=20,
)  # fmt: skip


@given(items=st.lists(_JSON, max_size=3), prefs=st.lists(_JSON, max_size=2))
def test_whatsapp_parse_inbound_on_any_shaped_items(
    whatsapp: WhatsAppCloudChannel, items: list[object], prefs: list[object]
) -> None:
    value = {"messages": items, "user_preferences": prefs, "metadata": {"x": 1}}
    body = json.dumps({"entry": [{"changes": [{"value": value}]}]}).encode()
    try:
        parsed = whatsapp.parse_inbound(body)
    except InvalidInput:
        return
    assert len(parsed) == len(items) + len(prefs)
    assert all(p.signals and 0 < len(p.event_id) <= 255 for p in parsed)
