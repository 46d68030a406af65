"""/v1/forms: the tenant's public subscription forms (the pages are in web/pages/forms.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, status

from consentry.bootstrap import Container
from consentry.domain.access import Scope
from consentry.domain.forms import FormStatus
from consentry.services import forms
from consentry.services.audit import RequestContext
from consentry.services.form_page import form_path
from consentry.web.deps import ContainerDep, ContextDep, TenantDep
from consentry.web.pages.forms import embed_snippet
from consentry.web.schemas_forms import FormChangeIn, FormIn, FormOut
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1", tags=["subscription forms"])
Admin = Annotated[RequestContext, Depends(needs(Scope.ADMIN))]
Key = Annotated[str, Path(min_length=1, max_length=63)]


def _out(c: Container, managed: forms.ManagedForm, *, embed: bool = False) -> FormOut:
    form, slug = managed.form, managed.tenant_slug
    url = c.settings.public_base_url.rstrip("/") + form_path(slug, form.key)
    html = embed_snippet(c, slug, form.key) if embed and form.status is FormStatus.ACTIVE else None
    return FormOut.of(form, url, submissions=managed.submissions, embed_html=html)


def _definition(key: str, body: FormChangeIn) -> forms.FormDefinition:
    return forms.FormDefinition(
        key=key,
        title=body.title,
        intro=body.intro,
        choices=[(choice.topic, choice.channel) for choice in body.choices],
        disclosure_kind=body.disclosure_kind,
        privacy_url=body.privacy_url,
        confirm=body.confirm,
    )


@router.post(
    "/forms",
    status_code=status.HTTP_201_CREATED,
    response_model=FormOut,
    summary="Create a public subscription form",
)
def create(body: FormIn, c: ContainerDep, context: Admin, tenant: TenantDep) -> FormOut:
    return _out(c, forms.create_form(c.uow(), tenant, _definition(body.key, body), context=context))


@router.put(
    "/forms/{key}",
    response_model=FormOut,
    summary="Change what a form offers and says; pages and snippets shown before stop working",
)
def update(
    key: Key, body: FormChangeIn, c: ContainerDep, context: Admin, tenant: TenantDep
) -> FormOut:
    definition = _definition(key, body)
    return _out(c, forms.update_form(c.uow(), tenant, definition, context=context), embed=True)


@router.get("/forms", response_model=list[FormOut], summary="The tenant's forms")
def list_forms(c: ContainerDep, _context: ContextDep, tenant: TenantDep) -> list[FormOut]:
    return [_out(c, managed) for managed in forms.list_forms(c.read_uow(), tenant)]


@router.get(
    "/forms/{key}",
    response_model=FormOut,
    summary="One form, its submission count and the HTML to embed it",
)
def get_form(key: Key, c: ContainerDep, _context: ContextDep, tenant: TenantDep) -> FormOut:
    return _out(c, forms.get_form(c.read_uow(), tenant, key), embed=True)


@router.post(
    "/forms/{key}/archive",
    response_model=FormOut,
    summary="Stop a form taking subscriptions (the consents it collected stay)",
)
def archive(key: Key, c: ContainerDep, context: Admin, tenant: TenantDep) -> FormOut:
    return _out(c, forms.archive_form(c.uow(), tenant, key, context=context))
