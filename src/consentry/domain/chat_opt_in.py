"""WhatsApp opt-in by click-to-chat: a link opens WhatsApp with a message the person sends.

The link (``https://wa.me/<business number>?text=...``) carries a prefilled message that names
the business and the topic, and ends with a reference the inbound webhook reads::

    Yes, send me Weekly news from Harbour Auto Ltd on WhatsApp. Ref: harbour-auto/news

Sending it is the person's own act, from the number that will receive the messages: the message
id is the evidence (method ``keyword``), the text itself is kept sealed beside it. Only the
reference is parsed; the words around it may be edited by the person or translated.
"""

from __future__ import annotations

import re
from urllib.parse import quote

_SLUG = r"([a-z0-9][a-z0-9-]{1,62})"
_KEY = r"([a-z0-9][a-z0-9-]{0,62})"
_REF = re.compile(rf"\bref\s*[:#]?\s*{_SLUG}/{_KEY}\s*[.!]?\s*$", re.IGNORECASE)
_DIGITS = re.compile(r"\D")


def prefilled_text(business: str, topic_name: str, tenant_slug: str, topic_key: str) -> str:
    return f"Yes, send me {topic_name} from {business} on WhatsApp. Ref: {tenant_slug}/{topic_key}"


def chat_link(business_number: str, text: str) -> str:
    """The click-to-chat link: the business number in international form without ``+``."""
    return f"https://wa.me/{_DIGITS.sub('', business_number)}?text={quote(text, safe='')}"


def parse_ref(text: str) -> tuple[str, str] | None:
    """(tenant slug, topic key) of the reference that ends a click-to-chat message, or None."""
    found = _REF.search(text.strip())
    if found is None:
        return None
    return found.group(1).lower(), found.group(2).lower()
