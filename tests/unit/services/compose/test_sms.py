"""SMS composition: brand prefix, STOP instruction, and the segment limit."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.content import SMS_MAX_SEGMENTS, ContentUnderReview, review_message
from consentry.domain.model import Category, Channel
from consentry.domain.templates import MessageTooLong
from consentry.services.compose.sms import OPT_OUT_INSTRUCTION, compose_sms, sms_preview

TENANT_ID = uuid.UUID("0193a1f2-0000-7000-8000-0000000000aa")


def compose(text: str, category: Category = Category.MARKETING, *, first: bool = False) -> str:
    message = compose_sms(
        text,
        delivery_id=7,
        tenant_id=TENANT_ID,
        to="+15005550006",
        sender="+15005550001",
        brand_name="Kwik Fit",
        category=category,
        first_to_number=first,
    )
    return message.body


def test_marketing_gets_brand_and_stop() -> None:
    assert compose("20% off tyres this week") == (
        "Kwik Fit: 20% off tyres this week\nReply STOP to opt out."
    )


def test_the_message_for_the_channel() -> None:
    message = compose_sms(
        "Hi",
        delivery_id=7,
        tenant_id=TENANT_ID,
        to="+15005550006",
        sender="KWIKFIT",
        brand_name="Kwik Fit",
        category=Category.SERVICE,
        first_to_number=False,
    )

    assert (message.delivery_id, message.tenant_id, message.to, message.sender) == (
        7, TENANT_ID, "+15005550006", "KWIKFIT",
    )  # fmt: skip
    assert message.idempotency_key == "delivery-7"
    assert message.body == "Kwik Fit: Hi"


def test_service_messages_get_stop_only_when_first_to_the_number() -> None:
    assert compose("Your car is ready", Category.SERVICE) == "Kwik Fit: Your car is ready"
    assert compose("Your car is ready", Category.SERVICE, first=True) == (
        f"Kwik Fit: Your car is ready\n{OPT_OUT_INSTRUCTION}"
    )


def test_an_existing_brand_or_instruction_is_not_repeated() -> None:
    assert compose("KWIK FIT: sale on. Text STOP to end") == "KWIK FIT: sale on. Text STOP to end"
    assert compose("  Kwik Fit sale\r\nnow  ") == f"Kwik Fit sale\nnow\n{OPT_OUT_INSTRUCTION}"
    assert compose("Kwik Fitness deals", Category.SERVICE) == "Kwik Fit: Kwik Fitness deals"


def test_composed_marketing_passes_the_review() -> None:
    body = compose("Winter check for 29.99")
    review = review_message(
        ContentUnderReview(
            channel=Channel.SMS,
            category=Category.MARKETING,
            text=body,
            composed=True,
            brand_name="Kwik Fit",
        )
    )

    assert review.findings == ()


def test_too_long_messages_are_refused_with_segments_and_encoding() -> None:
    limit = 153 * SMS_MAX_SEGMENTS
    room = limit - len("Kwik Fit: ") - len("\n" + OPT_OUT_INSTRUCTION)

    assert len(compose("a" * room)) == limit
    with pytest.raises(MessageTooLong) as caught:
        compose("a" * (room + 1))
    assert "11 segments" in caught.value.message
    assert "GSM-7" in caught.value.message
    assert caught.value.code == "MESSAGE_TOO_LONG"

    with pytest.raises(MessageTooLong, match="UCS-2"):
        compose("ü" * 200 + "ç" * 500)


def test_preview_shows_the_final_text_and_its_cost_without_raising() -> None:
    preview = sms_preview("Grüße 👋", brand_name="Kwik Fit", category=Category.MARKETING)

    assert preview.text == f"Kwik Fit: Grüße 👋\n{OPT_OUT_INSTRUCTION}"
    assert preview.encoding.encoding == "UCS-2"
    assert preview.encoding.units == len(preview.text) + 1  # the emoji is a surrogate pair
    assert preview.encoding.segments == 1
    assert preview.within_limit

    long = sms_preview("x" * 5000, brand_name="Kwik Fit", category=Category.SERVICE)
    assert not long.within_limit
    assert long.encoding.segments == 33


@given(st.text(min_size=1, max_size=400).filter(str.strip))
def test_any_marketing_text_ends_up_with_brand_and_stop(text: str) -> None:
    preview = sms_preview(text, brand_name="Kwik Fit", category=Category.MARKETING)

    assert preview.text.casefold().startswith("kwik fit")
    assert "STOP" in preview.text.upper()
    assert text.strip().replace("\r\n", "\n").replace("\r", "\n") in preview.text
