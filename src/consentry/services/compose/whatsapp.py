"""WhatsApp messages: an approved template, or free text only as a reply.

Meta allows a business to start a conversation only with a pre-approved template; free text
is accepted inside the 24-hour window after the person's last message. Whether the window is
open is the gate's decision (``OUTSIDE_SERVICE_WINDOW``); here the caller states that the
message is such a reply.
"""

from __future__ import annotations

import re
import uuid

from consentry.domain.delivery import WhatsAppMessage
from consentry.domain.templates import MessageTooLong, TemplateInvalid, TemplateRenderError
from consentry.services.compose.templates import RenderedContent

TEXT_MAX_CHARS = 4096  # the Cloud API's limit for a text message body
# The Cloud API rejects parameters with line breaks, tabs or more than four spaces in a row
# (error 132018); such parameters are flattened rather than failing the delivery.
_PARAM_BREAKS = re.compile(r"[\r\n\t]+")
_PARAM_SPACES = re.compile(r" {5,}")


def _parameter(value: str, index: int) -> str:
    value = _PARAM_SPACES.sub("    ", _PARAM_BREAKS.sub(" ", value)).strip()
    if not value:
        field = f"whatsapp_parameters[{index}]"
        raise TemplateRenderError(f"{field} rendered empty", field=field)
    return value


def compose_whatsapp(
    content: RenderedContent,
    *,
    delivery_id: int,
    tenant_id: uuid.UUID,
    to: str,
    phone_number_id: str,
    free_form_reply: bool = False,
    idempotency_key: str | None = None,
) -> WhatsAppMessage:
    """The WhatsApp message for one delivery: free text when ``free_form_reply`` (the caller
    vouches the service window is open), else the approved template with its parameters."""
    key = idempotency_key or f"delivery-{delivery_id}"
    if free_form_reply:
        text = content.text.strip()
        if not text:
            raise TemplateInvalid("a free-form WhatsApp reply needs text", field="text")
        if len(text) > TEXT_MAX_CHARS:
            raise MessageTooLong(
                f"a WhatsApp text is at most {TEXT_MAX_CHARS} characters", field="text"
            )
        return WhatsAppMessage(
            delivery_id=delivery_id,
            tenant_id=tenant_id,
            to=to,
            phone_number_id=phone_number_id,
            idempotency_key=key,
            text=text,
        )
    if not content.whatsapp_template:
        raise TemplateInvalid(
            "a business-initiated WhatsApp message must use an approved template",
            field="whatsapp_template",
        )
    return WhatsAppMessage(
        delivery_id=delivery_id,
        tenant_id=tenant_id,
        to=to,
        phone_number_id=phone_number_id,
        idempotency_key=key,
        template_name=content.whatsapp_template,
        language=content.whatsapp_language,
        parameters=tuple(_parameter(v, i) for i, v in enumerate(content.whatsapp_parameters)),
    )
