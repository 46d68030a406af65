"""Composing the message of a delivery: template, recipient, sender identity, compliance parts.

``OutboundComposer`` is the dispatcher's message factory and the campaign reviewer. Compiled
templates and email skeletons are cached per template (and sender), so a campaign pays for
them once, not per recipient.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consentry.domain.campaigns import Campaign, ClaimedDelivery, SenderDomainNotRegistered
from consentry.domain.content import ContentUnderReview, Review, review_message
from consentry.domain.delivery import OutboundMessage
from consentry.domain.errors import AddressMissing, ConfigurationError
from consentry.domain.model import Category, Channel, Contact, Tenant
from consentry.domain.templates import Template
from consentry.services.compose.dkim import DkimSigner
from consentry.services.compose.email import (
    ComplianceLinks,
    EmailComposer,
    SenderIdentity,
    message_id_for,
)
from consentry.services.compose.reconfirmation import (
    RECONFIRMATION_PURPOSE,
    ReconfirmationClaims,
    ReconfirmationTokens,
)
from consentry.services.compose.sms import compose_sms, sms_text
from consentry.services.compose.templates import (
    CompiledTemplate,
    RenderedContent,
    compile_template,
    template_variables,
)
from consentry.services.compose.tokens import TokenClaims, UnsubscribeTokens
from consentry.services.compose.whatsapp import compose_whatsapp
from consentry.services.ports import KeyRing, UnitOfWork

TOKEN_PURPOSE = "unsubscribe token v1"  # noqa: S105  (an HKDF label, not a secret)
SAMPLE_CONTACT_ID = uuid.UUID(int=1)


@dataclass(frozen=True, slots=True)
class OutboundConfig:
    public_base_url: str  # https: the unsubscribe and preference pages live here
    sms_sender: str
    whatsapp_phone_number_id: str
    unsubscribe_mailbox: str | None = None  # local@domain; default unsubscribe@<sender domain>
    whatsapp_templates: frozenset[str] | None = None  # approved names; None: not checked

    def __post_init__(self) -> None:
        if not self.public_base_url.startswith("https://") or " " in self.public_base_url:
            raise ConfigurationError(
                "CONSENTRY_PUBLIC_BASE_URL must be an https:// URL: one-click unsubscribe "
                "links must be https (RFC 8058)"
            )


def sender_domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower()


class OutboundComposer:
    def __init__(self, keys: KeyRing, config: OutboundConfig, clock: Callable[[], datetime]):
        self._config = config
        self._clock = clock
        self._tokens = UnsubscribeTokens(keys.derive(TOKEN_PURPOSE))
        self._reconfirm = ReconfirmationTokens(keys.derive(RECONFIRMATION_PURPOSE))
        self._pass_of_campaign: dict[uuid.UUID, uuid.UUID | None] = {}
        self._sender_of_campaign: dict[uuid.UUID, str | None] = {}
        self._templates: dict[uuid.UUID, tuple[Template, CompiledTemplate]] = {}
        self._emails: dict[tuple[uuid.UUID, str], EmailComposer] = {}
        self._lock = threading.Lock()

    # -- pieces, cached ------------------------------------------------------------------------

    def template(
        self, uow: UnitOfWork, tenant_id: uuid.UUID, template_id: uuid.UUID
    ) -> tuple[Template, CompiledTemplate]:
        found = self._templates.get(template_id)
        if found is None:
            template = uow.templates.get(tenant_id, template_id)
            found = (template, compile_template(template, self._config.whatsapp_templates))
            with self._lock:
                self._templates[template_id] = found
        return found

    def _from_address(self, uow: UnitOfWork, tenant: Tenant, campaign: Campaign | None) -> str:
        if campaign is not None and campaign.from_address:
            return campaign.from_address
        domains = uow.sender_domains.list(tenant.id)
        if not domains:
            raise SenderDomainNotRegistered(
                f"tenant {tenant.slug} has no registered sender domain", field="from_address"
            )
        return f"{tenant.slug}@{domains[0].domain}"

    def email_composer(
        self, uow: UnitOfWork, tenant: Tenant, template: Template, from_address: str
    ) -> EmailComposer:
        key = (template.id, from_address)
        composer = self._emails.get(key)
        if composer is not None:
            return composer
        domain = sender_domain_of(from_address)
        registered = uow.sender_domains.get(tenant.id, domain)
        if registered is None:
            raise SenderDomainNotRegistered(
                f"{domain} is not a sender domain of {tenant.slug}", field="from_address"
            )
        sender, pem = registered
        dkim = (
            DkimSigner(domain, sender.dkim_selector, pem.encode())
            if pem is not None and sender.dkim_selector
            else None
        )
        category = uow.topics.get(tenant.id, template.topic_id).category
        identity = SenderIdentity(
            from_address=from_address,
            from_name=tenant.name,
            envelope_from=f"bounces@{domain}",
            verp=True,
            postal_address=tenant.profile.postal_address or "",
            legal_name=tenant.profile.legal_name,
            reply_to=tenant.profile.contact_email,
            dkim=dkim,
        )
        composer = EmailComposer(tenant_id=tenant.id, identity=identity, category=category)
        with self._lock:
            self._emails[key] = composer
        return composer

    def links(  # noqa: PLR0917  (what the token binds, plus where the mailbox is)
        self, tenant: Tenant, contact_id: uuid.UUID, topic_id: uuid.UUID, channel: Channel,
        point_key: bytes, domain: str,
    ) -> ComplianceLinks:  # fmt: skip
        token = self._tokens.mint(
            TokenClaims(tenant.id, contact_id, topic_id, channel, point_key, self._clock())
        )
        base = self._config.public_base_url.rstrip("/")
        mailbox = self._config.unsubscribe_mailbox or f"unsubscribe@{domain}"
        local, _, mail_domain = mailbox.partition("@")
        return ComplianceLinks(
            unsubscribe_url=f"{base}/u/{token}",
            unsubscribe_mailto=f"mailto:{local}+{token}@{mail_domain}",
            preferences_url=f"{base}/p/{token}",
        )

    def _pass_of(self, uow: UnitOfWork, campaign_id: uuid.UUID | None) -> uuid.UUID | None:
        """The permission pass a campaign sends the reconfirmations of, if any (cached: a
        campaign never changes pass)."""
        if campaign_id is None:
            return None
        if campaign_id not in self._pass_of_campaign:
            found = uow.passes.for_campaign(campaign_id)
            with self._lock:
                self._pass_of_campaign[campaign_id] = None if found is None else found.id
        return self._pass_of_campaign[campaign_id]

    def _campaign_sender(
        self, uow: UnitOfWork, tenant_id: uuid.UUID, campaign_id: uuid.UUID | None
    ) -> str | None:
        """The From address a campaign names, if any (cached: it is fixed when the campaign is
        created, and reading the campaign row for every message cost a query each)."""
        if campaign_id is None:
            return None
        if campaign_id not in self._sender_of_campaign:
            found = uow.campaigns.get(tenant_id, campaign_id).from_address
            with self._lock:
                self._sender_of_campaign[campaign_id] = found
        return self._sender_of_campaign[campaign_id]

    def _variables(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        delivery: ClaimedDelivery,
        contact: Contact,
        point_key: bytes,
    ) -> dict[str, Any]:
        """The delivery's data, with the reconfirmation link of a permission pass's message."""
        pass_id = self._pass_of(uow, delivery.campaign_id)
        if pass_id is None:
            return delivery.variables
        token = self._reconfirm.mint(
            ReconfirmationClaims(
                tenant.id, pass_id, contact.id, delivery.topic_id, delivery.channel, point_key,
                self._clock(),
            )
        )  # fmt: skip
        url = f"{self._config.public_base_url.rstrip('/')}/r/{token}"
        return {**delivery.variables, "reconfirm_url": url}

    # -- the dispatcher's message factory ------------------------------------------------------

    def compose(
        self, uow: UnitOfWork, tenant: Tenant, delivery: ClaimedDelivery, contact: Contact
    ) -> OutboundMessage:
        template, compiled = self.template(uow, tenant.id, delivery.template_id)
        address = contact.address_for(delivery.channel)
        point_key = uow.contacts.point_key(contact, delivery.channel)
        if address is None or point_key is None:
            raise AddressMissing(f"no {delivery.channel.value} address", field="channel")
        variables = self._variables(uow, tenant, delivery, contact, point_key)
        content = compiled.render(template_variables(tenant, contact, variables))
        if delivery.channel is Channel.EMAIL:
            sender = self._campaign_sender(uow, tenant.id, delivery.campaign_id)
            composer = self.email_composer(
                uow, tenant, template, sender or self._from_address(uow, tenant, None)
            )
            domain = sender_domain_of(composer.identity.from_address)
            links = (
                self.links(
                    tenant, contact.id, delivery.topic_id, delivery.channel, point_key, domain
                )
                if delivery.category is Category.MARKETING
                else None
            )
            return composer.compose(
                content,
                to_address=address,
                to_name=contact.name,
                delivery_id=delivery.id,
                message_id=delivery.message_id or message_id_for(tenant.id, delivery.id, domain),
                now=self._clock(),
                links=links,
            )
        if delivery.channel is Channel.SMS:
            return compose_sms(
                content.text,
                delivery_id=delivery.id,
                tenant_id=tenant.id,
                to=address,
                sender=self._config.sms_sender,
                brand_name=tenant.name,
                category=delivery.category,
                first_to_number=delivery.category is Category.SERVICE
                and not uow.deliveries.has_sent(contact.id, Channel.SMS),
                idempotency_key=delivery.message_id,
            )
        return compose_whatsapp(
            content,
            delivery_id=delivery.id,
            tenant_id=tenant.id,
            to=address,
            phone_number_id=self._config.whatsapp_phone_number_id,
            free_form_reply=template.whatsapp_template is None,
            idempotency_key=delivery.message_id,
        )

    # -- review and preview --------------------------------------------------------------------

    def under_review(
        self,
        uow: UnitOfWork,
        tenant: Tenant,
        template: Template,
        content: RenderedContent,
        from_address: str | None,
    ) -> ContentUnderReview:
        category = uow.topics.get(tenant.id, template.topic_id).category
        if template.channel is Channel.EMAIL:
            address = from_address or self._from_address(uow, tenant, None)
            composer = self.email_composer(uow, tenant, template, address)
            links = self.links(
                tenant, SAMPLE_CONTACT_ID, template.topic_id, Channel.EMAIL, bytes(16),
                sender_domain_of(address),
            )  # fmt: skip
            return composer.under_review(content, links, in_reply_thread=False)
        text = content.text
        if template.channel is Channel.SMS:
            text = sms_text(text, brand_name=tenant.name, category=category, first_to_number=True)
        return ContentUnderReview(
            channel=template.channel,
            category=category,
            text=text,
            composed=True,
            brand_name=tenant.name,
        )

    def review(self, uow: UnitOfWork, tenant: Tenant, campaign: Campaign) -> Review:
        template, compiled = self.template(uow, tenant.id, campaign.template_id)
        data: dict[str, Any] = {}
        if self._pass_of(uow, campaign.id) is not None:
            data["reconfirm_url"] = f"{self._config.public_base_url.rstrip('/')}/r/sample"
        content = compiled.render(template_variables(tenant, sample_contact(tenant), data))
        return review_message(
            self.under_review(uow, tenant, template, content, campaign.from_address)
        )

    def reviewer(
        self, uow: UnitOfWork, tenant: Tenant, campaign: Campaign
    ) -> tuple[tuple[tuple[str, str], ...], ...]:
        """``services.campaigns.Reviewer``: (errors, warnings) as (code, message) pairs."""
        found = self.review(uow, tenant, campaign).findings
        errors = tuple((f.code, f.message) for f in found if f.severity == "error")
        warnings = tuple((f.code, f.message) for f in found if f.severity != "error")
        return errors, warnings


def sample_contact(tenant: Tenant) -> Contact:
    """The made-up recipient previews and reviews render with."""
    return Contact(
        id=SAMPLE_CONTACT_ID,
        tenant_id=tenant.id,
        name="Alex Sample",
        email="alex.sample@example.com",
        phone="+15005550006",
        country=tenant.country,
        locale="en",
    )
