"""Replies to the people whose messages the inbound pipeline read (services/signals.py).

SMS replies travel in the webhook's own answer (TwiML). WhatsApp has no such answer: the replies
to keywords and click-to-chat opt-ins go out through the Cloud API after the commit, as free
text inside the 24-hour service window the person's message has just opened.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from consentry.domain.delivery import DeliveryError, OutboundMessage, WhatsAppMessage
from consentry.services.signals import IngestResult

log = logging.getLogger(__name__)


def whatsapp_replies(
    results: Sequence[IngestResult], phone_number_id: str
) -> list[WhatsAppMessage]:
    """The answers to WhatsApp keywords and click-to-chat opt-ins, as free-text messages to the
    person who wrote (their message opened the service window); sent after the commit. Only
    where the number belongs to one business: it is the one that answers, under its own keys."""
    return [
        WhatsAppMessage(
            delivery_id=0,
            tenant_id=result.tenant_id,
            to=result.reply_to,
            phone_number_id=phone_number_id,
            idempotency_key=f"reply:{result.inbound_id}:{n}",
            text=text,
        )
        for result in results
        if result.reply_to is not None and result.tenant_id is not None and not result.duplicate
        for n, text in enumerate(result.replies)
    ]


def send_replies(
    messages: Sequence[OutboundMessage], send: Callable[[OutboundMessage], None]
) -> int:
    """Hand replies to their channel; one that fails is logged and left (a reply is a courtesy:
    the opt-out it confirms has been applied already). How many went."""
    sent = 0
    for message in messages:
        try:
            send(message)
        except DeliveryError as exc:
            log.warning("keyword reply not sent", extra={"code": exc.code})
            continue
        sent += 1
    return sent
