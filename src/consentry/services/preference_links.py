"""Asking for a preference-centre link by address, without one from a message.

A person types an email address or phone number on the tenant's entry page. If a contact of that
tenant has it (and no bounce, complaint or other all-scope block stands on it), a service message
carrying a preference link goes to that address: only whoever controls the address can open the
centre. The page answers the same whether or not the address is known, and the lookup and the
sending happen after the answer, so its timing does not tell either.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from email.utils import make_msgid
from urllib.parse import urlsplit

from consentry.domain.delivery import EmailMessage, OutboundMessage, SmsMessage
from consentry.domain.errors import InvalidInput
from consentry.domain.gate import tenant_blocks
from consentry.domain.model import ALL_MARKETING_KEY, Category, Channel, PointKind, Tenant
from consentry.domain.suppression import SuppressionScope
from consentry.services.addresses import normalize_email, normalize_phone
from consentry.services.clock import utcnow
from consentry.services.compose.mime import plain_text_email
from consentry.services.compose.tokens import TokenClaims, UnsubscribeTokens
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

NOT_A_DELIVERY = 0  # the message answers a request; it belongs to no campaign or send


def entry_tenant(uow: UnitOfWork, tenant_ref: TenantRef) -> Tenant:
    """The tenant whose entry page this is (TenantNotFound if there is none)."""
    with uow:
        return find_tenant(uow, tenant_ref)


def _point(address: str, country: str) -> tuple[PointKind, Channel, str] | None:
    try:
        if "@" in address:
            return PointKind.EMAIL, Channel.EMAIL, normalize_email(address)
        return PointKind.PHONE, Channel.SMS, normalize_phone(address, country, field="address")[0]
    except InvalidInput:
        return None


def preference_link_message(
    uow: UnitOfWork,
    tokens: UnsubscribeTokens,
    tenant_ref: TenantRef,
    address: str,
    *,
    public_base_url: str,
    sms_sender: str,
    now: datetime | None = None,
) -> OutboundMessage | None:
    """The message with a preference link for ``address``, or None when no contact of the tenant
    has it or it may not receive service messages. Writes nothing; the caller sends it."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        if tenant_blocks(tenant.status, Category.SERVICE):  # a business barred from sending
            return None
        point = _point(address.strip(), tenant.country)
        if point is None:
            return None
        kind, channel, normalized = point
        contact = uow.contacts.find_by_point(tenant.id, kind, normalized)
        key = None if contact is None else uow.contacts.point_key(contact, channel)
        if contact is None or key is None:
            return None
        blocks = uow.suppressions.active_for(tenant.id, key, channel)
        if any(s.scope is SuppressionScope.ALL for s in blocks):
            return None
        umbrella = uow.topics.by_key(tenant.id, ALL_MARKETING_KEY)
        domains = uow.sender_domains.list(tenant.id)
    token = tokens.mint(TokenClaims(tenant.id, contact.id, umbrella.id, channel, key, now))
    url = f"{public_base_url.rstrip('/')}/p/{token}"
    if channel is Channel.SMS:
        text = f"{tenant.name}: choose which messages you get from us here: {url}"
        return SmsMessage(NOT_A_DELIVERY, tenant.id, normalized, sms_sender, text, uuid.uuid4().hex)
    domain = domains[0].domain if domains else (urlsplit(public_base_url).hostname or "localhost")
    return _email(tenant, normalized, f"{tenant.slug}@{domain}", domain, url, now)


def _email(  # noqa: PLR0917  (the parts of one message)
    tenant: Tenant, to: str, sender: str, domain: str, url: str, now: datetime
) -> EmailMessage:
    message_id = make_msgid(domain=domain).strip("<>")
    text = (
        "You asked to choose which messages you get from "
        f"{tenant.profile.legal_name or tenant.name}.\n\n"
        f"Open this link to see and change your choices:\n{url}\n\n"
        "If you did not ask for this, you can ignore this message: nothing changes.\n"
    )
    subject = f"Your preference centre link for {tenant.name}"
    return EmailMessage(
        delivery_id=NOT_A_DELIVERY,
        tenant_id=tenant.id,
        mail_from=f"bounces@{domain}",
        rcpt_to=to,
        data=plain_text_email(tenant.name, sender, to, subject, text, now, message_id),
        message_id=message_id,
    )
