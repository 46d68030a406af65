"""A public subscription form as a visitor sees it: the hosted page and the embeddable snippet.

``form_view`` gives the business, each topic and channel as its own unticked box, the
disclosure version in force with its text, the privacy policy link, the age question when
marketing is offered, WhatsApp click-to-chat links where configured, and a fresh form token.
Sending the form back is services/form_submit.py.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.chat_opt_in import chat_link, prefilled_text
from consentry.domain.errors import NotFound
from consentry.domain.forms import (
    FormArchived,
    FormNotFound,
    FormStatus,
    SubscriptionForm,
    asks_age,
)
from consentry.domain.model import (
    Channel,
    PolicyDocument,
    PolicyKind,
    Tenant,
    TenantStatus,
    Topic,
)
from consentry.domain.rules import pack_for
from consentry.services.clock import utcnow
from consentry.services.form_tokens import FormTokens, TokenKind
from consentry.services.forms import latest_published
from consentry.services.ports import UnitOfWork


@dataclass(frozen=True, slots=True)
class FormPage:
    """Everything the hosted page and the snippet show."""

    tenant: Tenant
    form: SubscriptionForm
    topics: dict[uuid.UUID, Topic]
    disclosure: PolicyDocument
    privacy_url: str
    age_threshold: int | None  # None: the form asks no age question
    token: str
    action: str  # absolute URL the form posts to
    chat_links: dict[str, str]  # box value -> WhatsApp click-to-chat link, for WhatsApp boxes


def form_path(tenant_slug: str, form_key: str) -> str:
    return f"/f/{tenant_slug}/{form_key}"


def policy_path(tenant_slug: str, document_id: uuid.UUID) -> str:
    return f"/d/{tenant_slug}/{document_id}"


def open_form(uow: UnitOfWork, tenant_slug: str, form_key: str) -> tuple[Tenant, SubscriptionForm]:
    """The tenant and its form; the same FormNotFound whether the tenant or the form is
    missing, FormArchived when it no longer takes submissions."""
    try:
        tenant = uow.tenants.by_slug(tenant_slug)
        form = uow.forms.by_key(tenant.id, form_key)
    except NotFound:
        raise FormNotFound("there is no such form", field="form") from None
    if tenant.status is TenantStatus.TERMINATED:
        raise FormNotFound("there is no such form", field="form")
    if form.status is FormStatus.ARCHIVED:
        raise FormArchived("this form no longer takes subscriptions", field="form")
    return tenant, form


def form_view(
    uow: UnitOfWork,
    tokens: FormTokens,
    base_url: str,
    tenant_slug: str,
    form_key: str,
    *,
    kind: TokenKind = TokenKind.HOSTED,
    whatsapp_number: str | None = None,
    now: datetime | None = None,
) -> FormPage:
    """The form as it is shown now, with a token minted for it. Reads only."""
    now = now or utcnow()
    base = base_url.rstrip("/")
    with uow:
        tenant, form = open_form(uow, tenant_slug, form_key)
        topics = {c.topic_id: uow.topics.get(tenant.id, c.topic_id) for c in form.choices}
        disclosure = latest_published(uow, tenant.id, PolicyKind(form.disclosure_kind))
        if disclosure is None:  # withdrawn after the form was made: the form cannot be shown
            raise FormNotFound("this form cannot be shown", field="form")
        privacy = form.privacy_url
        if privacy is None:
            document = latest_published(uow, tenant.id, PolicyKind.PRIVACY_POLICY)
            privacy = base + policy_path(tenant.slug, document.id) if document else base
    categories = {t.id: t.category for t in topics.values()}
    threshold = pack_for(None, tenant.country).age_of_majority
    return FormPage(
        tenant=tenant,
        form=form,
        topics=topics,
        disclosure=disclosure,
        privacy_url=privacy,
        age_threshold=threshold if asks_age(form, categories) else None,
        token=tokens.mint(kind, form.id, form.revision, disclosure.id, now),
        action=base + form_path(tenant.slug, form.key),
        chat_links=_chat_links(tenant, form, topics, whatsapp_number),
    )


def _chat_links(
    tenant: Tenant, form: SubscriptionForm, topics: dict[uuid.UUID, Topic], number: str | None
) -> dict[str, str]:
    if not number:
        return {}
    business = tenant.profile.legal_name or tenant.name
    return {
        c.value: chat_link(
            number, prefilled_text(business, topics[c.topic_id].name, tenant.slug, c.topic_key)
        )
        for c in form.choices
        if c.channel is Channel.WHATSAPP
    }
