"""WhatsApp opt-in from a click-to-chat message (domain/chat_opt_in.py), inside the inbound
pipeline's transaction.

The message names the business and the topic; it came from the number that will receive the
messages, so it is both the request and its confirmation: ``granted`` (express), or
``confirmed`` (double opt-in) for a topic that requires confirmed opt-in. Evidence: method
``keyword``, the provider's message id, the published WhatsApp opt-in wording in force (if the
business has one), and the text sent (sealed). Like re-subscribing, it lifts the business's
"unsubscribed from marketing" block on WhatsApp for that number; never a platform-wide block.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    Evidence,
)
from consentry.domain.errors import NotFound
from consentry.domain.ids import new_id
from consentry.domain.model import Channel, PolicyKind, Tenant, TenantStatus, Topic
from consentry.domain.signals import ChatOptIn
from consentry.services.confirming import lift_marketing_unsubscribe
from consentry.services.consent import append_and_fold
from consentry.services.contacts import ContactInput, build_contact
from consentry.services.forms import latest_published
from consentry.services.ports import UnitOfWork

SOURCE = "whatsapp:click-to-chat"


@dataclass(frozen=True, slots=True)
class ChatOptedIn:
    tenant: Tenant
    topic: Topic
    event: ConsentEvent


def opt_in_by_chat(
    uow: UnitOfWork, signal: ChatOptIn, message_id: str, now: datetime
) -> ChatOptedIn | None:
    """Record the opt-in a click-to-chat message asks for; None (nothing written) when its
    reference names no active business or no topic of it. The caller commits."""
    try:
        tenant = uow.tenants.by_slug(signal.tenant_slug)
        topic = uow.topics.by_key(tenant.id, signal.topic_key)
    except NotFound:
        return None
    if tenant.status is not TenantStatus.ACTIVE or topic.umbrella:
        return None
    candidate = build_contact(tenant, ContactInput(whatsapp=signal.sender), now, new_id())
    contact = uow.contacts.find_by_address(tenant.id, Channel.WHATSAPP, candidate.whatsapp or "")
    if contact is None:
        contact = candidate
        uow.contacts.add(contact)
    point_key = uow.contacts.point_key(contact, Channel.WHATSAPP) or b""
    wording = latest_published(uow, tenant.id, PolicyKind.WHATSAPP_OPT_IN)
    confirmed = topic.requires_double_opt_in
    event, _state = append_and_fold(
        uow,
        ConsentEvent(
            id=new_id(),
            tenant_id=tenant.id,
            contact_id=contact.id,
            point_key=point_key,
            topic_id=topic.id,
            channel=Channel.WHATSAPP,
            action=ConsentAction.CONFIRMED if confirmed else ConsentAction.GRANTED,
            basis=ConsentBasis.DOUBLE_OPT_IN if confirmed else ConsentBasis.EXPRESS,
            evidence=Evidence(
                method=ConsentMethod.KEYWORD,
                source=SOURCE,
                inbound_message_id=message_id,
                policy_document_id=wording.id if wording else None,
                disclosure_hash=wording.content_hash if wording else None,
                actor=SOURCE,
                note=signal.text,
            ),
            occurred_at=now,
            recorded_at=now,
        ),
    )
    lift_marketing_unsubscribe(uow, topic, tenant.id, point_key, Channel.WHATSAPP, now, SOURCE)
    return ChatOptedIn(tenant, topic, event)
