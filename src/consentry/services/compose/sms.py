"""SMS messages: the brand named first, the opt-out instruction last, and a length limit.

US carriers (CTIA Messaging Principles) and the TCPA expect every marketing text, and the
first text to any number, to say who is sending and how to stop; the system adds both so the
tenant's template cannot leave them out. A message over ``SMS_MAX_SEGMENTS`` is refused rather
than sent as a costly chain that many handsets display badly.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from consentry.domain.content import (
    SMS_MAX_SEGMENTS,
    SmsEncoding,
    has_opt_out_instruction,
    sms_segments,
)
from consentry.domain.delivery import SmsMessage
from consentry.domain.model import Category
from consentry.domain.templates import MessageTooLong

OPT_OUT_INSTRUCTION = "Reply STOP to opt out."
_LINE_BREAKS = re.compile(r"\r\n|\r")


@dataclass(frozen=True, slots=True)
class SmsPreview:
    """The text as it will be sent and what it costs in segments."""

    text: str
    encoding: SmsEncoding

    @property
    def within_limit(self) -> bool:
        return self.encoding.segments <= SMS_MAX_SEGMENTS


def sms_text(text: str, *, brand_name: str, category: Category, first_to_number: bool) -> str:
    """The final SMS text: ``Brand: `` in front unless it already starts with the brand, and
    the STOP instruction at the end for marketing or a first message, unless it has one."""
    text = _LINE_BREAKS.sub("\n", text).strip()
    brand = brand_name.strip()
    if brand and not re.match(re.escape(brand) + r"(?!\w)", text, re.IGNORECASE):
        text = f"{brand}: {text}"
    if (category is Category.MARKETING or first_to_number) and not has_opt_out_instruction(text):
        text = f"{text}\n{OPT_OUT_INSTRUCTION}"
    return text


def sms_preview(
    text: str, *, brand_name: str, category: Category, first_to_number: bool = False
) -> SmsPreview:
    """What ``compose_sms`` would send, with its encoding and segments; never raises for
    length, so an editor can show how far over the limit a draft is."""
    final = sms_text(
        text, brand_name=brand_name, category=category, first_to_number=first_to_number
    )
    return SmsPreview(final, sms_segments(final))


def compose_sms(
    text: str,
    *,
    delivery_id: int,
    tenant_id: uuid.UUID,
    to: str,
    sender: str,
    brand_name: str,
    category: Category,
    first_to_number: bool,
    idempotency_key: str | None = None,
) -> SmsMessage:
    """The SMS for one delivery; MessageTooLong past ``SMS_MAX_SEGMENTS`` segments."""
    preview = sms_preview(
        text, brand_name=brand_name, category=category, first_to_number=first_to_number
    )
    if not preview.within_limit:
        enc = preview.encoding
        raise MessageTooLong(
            f"the SMS needs {enc.segments} segments in {enc.encoding} "
            f"({enc.units} units); at most {SMS_MAX_SEGMENTS} are allowed",
            field="text",
        )
    return SmsMessage(
        delivery_id=delivery_id,
        tenant_id=tenant_id,
        to=to,
        sender=sender,
        body=preview.text,
        idempotency_key=idempotency_key or f"delivery-{delivery_id}",
    )
