"""Use cases for subscription forms as a business manages them: create, list, show, archive.

What a visitor sees and sends lives in services/form_page.py and services/form_submit.py.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from consentry.domain.errors import AlreadyExists, NotFound, PolicyDocumentNotFound
from consentry.domain.forms import (
    CONFIRMABLE,
    FormArchived,
    FormChoice,
    FormInvalid,
    FormStatus,
    SubscriptionForm,
    check_form_fields,
)
from consentry.domain.ids import new_id
from consentry.domain.model import (
    ALL_MARKETING_KEY,
    ALL_SERVICE_KEY,
    Channel,
    PolicyDocument,
    PolicyKind,
    PolicyStatus,
    Tenant,
)
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

_UMBRELLAS = frozenset({ALL_MARKETING_KEY, ALL_SERVICE_KEY})


@dataclass(frozen=True, slots=True)
class FormDefinition:
    key: str
    title: str
    choices: Sequence[tuple[str, Channel]]  # (topic key, channel)
    intro: str = ""
    disclosure_kind: PolicyKind = PolicyKind.CONSENT_DISCLOSURE
    privacy_url: str | None = None
    confirm: bool = True


@dataclass(frozen=True, slots=True)
class ManagedForm:
    form: SubscriptionForm
    tenant_slug: str  # the form's public page is /f/{tenant_slug}/{key}
    submissions: int | None = None


def latest_published(
    uow: UnitOfWork, tenant_id: uuid.UUID, kind: PolicyKind
) -> PolicyDocument | None:
    """The newest published version of a tenant's document of ``kind``, if there is one."""
    published = [
        d for d in uow.policies.list(tenant_id, kind) if d.status is PolicyStatus.PUBLISHED
    ]
    return max(published, key=lambda d: d.version) if published else None


def _checked(
    uow: UnitOfWork, tenant: Tenant, definition: FormDefinition
) -> tuple[tuple[FormChoice, ...], str | None]:
    """The form's boxes and privacy address, checked: no umbrella topics (no bundled consent),
    no box a topic's confirmed opt-in cannot be given on, the disclosure published, and a
    privacy policy published or an address for one."""
    choices = []
    for topic_key, channel in definition.choices:
        if topic_key in _UMBRELLAS:
            raise FormInvalid("offer each topic on its own: no bundled consent", field="choices")
        topic = uow.topics.by_key(tenant.id, topic_key)
        if topic.requires_double_opt_in and channel not in CONFIRMABLE:
            raise FormInvalid(
                f"{topic.key} needs confirmed opt-in, which {channel.value} cannot give",
                field="choices",
            )
        choices.append(FormChoice(topic.id, topic.key, channel))
    check_form_fields(definition.key, definition.title, definition.intro, choices)
    if latest_published(uow, tenant.id, definition.disclosure_kind) is None:
        raise PolicyDocumentNotFound(
            f"publish a {definition.disclosure_kind.value} document first: the form shows it",
            field="disclosure_kind",
        )
    privacy_url = _privacy_url(definition.privacy_url)
    if privacy_url is None and latest_published(uow, tenant.id, PolicyKind.PRIVACY_POLICY) is None:
        raise PolicyDocumentNotFound(
            "publish a privacy policy or give privacy_url: the form links to it",
            field="privacy_url",
        )
    return tuple(choices), privacy_url


def create_form(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    definition: FormDefinition,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> ManagedForm:
    """Create a form; commits. The tenant must have published the disclosure the form shows
    and either a privacy policy or a privacy URL, so that no form goes live without them."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        choices, privacy_url = _checked(uow, tenant, definition)
        if uow.forms.exists(tenant.id, definition.key):
            raise AlreadyExists("a form with this key exists", field="key")
        form = SubscriptionForm(
            id=new_id(),
            tenant_id=tenant.id,
            key=definition.key,
            title=definition.title.strip(),
            intro=definition.intro.strip(),
            choices=choices,
            disclosure_kind=definition.disclosure_kind.value,
            privacy_url=privacy_url,
            confirm=definition.confirm,
            status=FormStatus.ACTIVE,
            revision=1,
            created_at=now,
            updated_at=now,
        )
        uow.forms.add(form)
        audit(uow, context, tenant.id, "form.create", "form", form.id)
        uow.commit()
    return ManagedForm(form, tenant.slug)


def update_form(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    definition: FormDefinition,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> ManagedForm:
    """Replace what a form offers and says (its key stays); commits. The revision goes up: a
    page shown before, and every embedded snippet made before, no longer takes submissions
    (the visitor gets the new form to send again), so nobody is recorded as having ticked a box
    they were not shown. The consents already collected keep their evidence."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        form = uow.forms.by_key(tenant.id, definition.key)
        if form.status is FormStatus.ARCHIVED:
            raise FormArchived("an archived form cannot be changed", field="key")
        choices, privacy_url = _checked(uow, tenant, definition)
        changed = replace(
            form,
            title=definition.title.strip(),
            intro=definition.intro.strip(),
            choices=choices,
            disclosure_kind=definition.disclosure_kind.value,
            privacy_url=privacy_url,
            confirm=definition.confirm,
            revision=form.revision + 1,
            updated_at=now,
        )
        uow.forms.replace(changed)
        audit(uow, context, tenant.id, "form.update", "form", form.id)
        uow.commit()
    return ManagedForm(changed, tenant.slug)


def _privacy_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not value.startswith(("https://", "http://")) or len(value) > 500:
        raise FormInvalid("privacy_url must be an http(s) URL of at most 500 characters",
                          field="privacy_url")  # fmt: skip
    return value


def list_forms(uow: UnitOfWork, tenant_ref: TenantRef) -> list[ManagedForm]:
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        return [ManagedForm(f, tenant.slug) for f in uow.forms.list(tenant.id)]


def get_form(uow: UnitOfWork, tenant_ref: TenantRef, key: str) -> ManagedForm:
    """A form and how many submissions it has taken."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        form = uow.forms.by_key(tenant.id, key)
        return ManagedForm(form, tenant.slug, uow.forms.submission_count(form.id))


def archive_form(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    key: str,
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> ManagedForm:
    """Stop a form taking submissions (its page says so; embedded snippets stop working);
    commits. The consents it collected stay as they are."""
    now = now or utcnow()
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        form = uow.forms.by_key(tenant.id, key)
        if form.status is not FormStatus.ARCHIVED:
            form = uow.forms.set_status(form, FormStatus.ARCHIVED, now)
            audit(uow, context, tenant.id, "form.archive", "form", form.id)
        uow.commit()
    return ManagedForm(form, tenant.slug)


def public_document(
    uow: UnitOfWork, tenant_slug: str, document_id: uuid.UUID
) -> tuple[Tenant, PolicyDocument]:
    """A published version of a tenant's policy document, as the public may read it:
    PolicyDocumentNotFound for drafts, other tenants' documents and unknown tenants alike."""
    missing = PolicyDocumentNotFound("there is no such document", field="document")
    with uow:
        try:
            tenant = uow.tenants.by_slug(tenant_slug)
            document = uow.policies.get(tenant.id, document_id)
        except NotFound:
            raise missing from None
    if document.status is not PolicyStatus.PUBLISHED:
        raise missing
    return tenant, document
