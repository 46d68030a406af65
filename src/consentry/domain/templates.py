"""Message templates: what a tenant writes, per channel, for one topic (and so one category).

The compliance elements (unsubscribe links and headers, the sender's identity and postal
address, "Reply STOP to opt out") are added by the system when a message is composed
(``services/compose``), never left to the template author.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.errors import InvalidInput, NotFound
from consentry.domain.model import Channel


class TemplateNotFound(NotFound):
    code = "TEMPLATE_NOT_FOUND"


class TemplateInvalid(InvalidInput):
    """The template does not parse, or lacks what its channel needs."""

    code = "TEMPLATE_INVALID"


class TemplateRenderError(InvalidInput):
    """The template failed for one recipient (a missing variable, a runtime error)."""

    code = "TEMPLATE_RENDER_FAILED"


class MessageTooLong(InvalidInput):
    code = "MESSAGE_TOO_LONG"


class WhatsAppTemplateUnknown(InvalidInput):
    code = "WHATSAPP_TEMPLATE_UNKNOWN"


@dataclass(frozen=True, slots=True)
class Template:
    """One template. Fields that do not apply to the channel are None.

    email:    subject, text (required), html (optional)
    sms:      text
    whatsapp: whatsapp_template (an approved template name) with whatsapp_language and
              whatsapp_parameters (each a Jinja2 expression source, rendered per recipient);
              text for free-form replies inside the 24-hour service window
    """

    id: uuid.UUID
    tenant_id: uuid.UUID
    topic_id: uuid.UUID
    channel: Channel
    name: str
    text: str
    subject: str | None = None
    html: str | None = None
    whatsapp_template: str | None = None
    whatsapp_language: str = "en"
    whatsapp_parameters: tuple[str, ...] = ()
    created_at: datetime | None = None
