"""Tenants and their business profiles, API keys, and operator sign-in."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel, Field

from consentry.domain.access import ApiKeyRecord, Role, Scope, require_platform
from consentry.domain.model import BusinessProfile, Tenant, TenantStatus
from consentry.services import access, tenancy
from consentry.services.audit import RequestContext
from consentry.web.deps import SESSION_COOKIE, ContainerDep, ContextDep, TenantDep
from consentry.web.schemas import Strict
from consentry.web.scopes import needs

router = APIRouter(prefix="/v1", tags=["tenants and access"])
Admin = Annotated[RequestContext, Depends(needs(Scope.ADMIN))]


class ProfileIn(Strict):
    legal_name: str = Field(min_length=1, max_length=200)
    country: str = Field(min_length=2, max_length=2)
    description: str = Field(default="", max_length=2000)
    contact_email: str | None = Field(default=None, max_length=320)
    contact_phone: str | None = Field(default=None, max_length=40)
    postal_address: str | None = Field(default=None, max_length=500)
    website: str | None = Field(default=None, max_length=500)

    def to_profile(self) -> BusinessProfile:
        return BusinessProfile(**self.model_dump())


class TenantIn(Strict):
    slug: str = Field(min_length=2, max_length=63, pattern=r"^[a-z0-9][a-z0-9-]+$")
    name: str = Field(min_length=1, max_length=200)
    profile: ProfileIn


class TenantOut(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    status: TenantStatus
    profile: ProfileIn
    created_at: datetime

    @classmethod
    def of(cls, t: Tenant) -> TenantOut:
        p = t.profile
        return cls(
            id=t.id,
            slug=t.slug,
            name=t.name,
            status=t.status,
            created_at=t.created_at,
            profile=ProfileIn(
                legal_name=p.legal_name,
                country=p.country,
                description=p.description,
                contact_email=p.contact_email,
                contact_phone=p.contact_phone,
                postal_address=p.postal_address,
                website=p.website,
            ),
        )


class KeyIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.TENANT_OPERATOR
    scopes: list[Scope] | None = Field(default=None, description="Default: all of the role's.")


class KeyOut(BaseModel):
    prefix: str
    name: str
    role: Role
    scopes: list[Scope]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    token: str | None = Field(default=None, description="Only in the response that creates it.")


class LoginIn(Strict):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000)


class LoginOut(BaseModel):
    token: str
    expires_at: datetime
    role: Role


@router.post(
    "/tenants",
    status_code=status.HTTP_201_CREATED,
    response_model=TenantOut,
    summary="Create a tenant (platform operators)",
)
def create_tenant(body: TenantIn, c: ContainerDep, context: ContextDep) -> TenantOut:
    require_platform(context.principal)
    return TenantOut.of(
        tenancy.create_tenant(
            c.uow(), slug=body.slug, name=body.name, profile=body.profile.to_profile()
        )
    )


@router.get("/tenants", response_model=list[TenantOut], summary="All tenants (platform operators)")
def list_tenants(c: ContainerDep, context: ContextDep) -> list[TenantOut]:
    require_platform(context.principal)
    with c.read_uow() as uow:
        return [TenantOut.of(t) for t in uow.tenants.list()]


@router.get("/profile", response_model=TenantOut, summary="The tenant and its business profile")
def profile(c: ContainerDep, _context: ContextDep, tenant: TenantDep) -> TenantOut:
    with c.read_uow() as uow:
        return TenantOut.of(uow.tenants.get(tenant))


@router.put("/profile", response_model=TenantOut, summary="Replace the business profile")
def update_profile(
    body: ProfileIn, c: ContainerDep, _context: Admin, tenant: TenantDep
) -> TenantOut:
    return TenantOut.of(tenancy.update_profile(c.uow(), tenant, body.to_profile()))


def _key_out(record: ApiKeyRecord, token: str | None = None) -> KeyOut:
    return KeyOut(
        prefix=record.prefix,
        name=record.name,
        role=record.role,
        scopes=sorted(record.scopes),
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        revoked_at=record.revoked_at,
        token=token,
    )


@router.post(
    "/api-keys",
    status_code=status.HTTP_201_CREATED,
    response_model=KeyOut,
    summary="Issue an API key; its secret is shown in this response only",
)
def create_key(body: KeyIn, c: ContainerDep, context: Admin, tenant: TenantDep) -> KeyOut:
    issued = access.issue_api_key(
        c.uow(),
        context.principal,
        tenant_slug=tenant,
        name=body.name,
        role=body.role,
        scopes=None if body.scopes is None else frozenset(body.scopes),
    )
    return _key_out(issued.record, issued.token)


@router.get("/api-keys", response_model=list[KeyOut], summary="The tenant's API keys")
def list_keys(c: ContainerDep, context: Admin, tenant: TenantDep) -> list[KeyOut]:
    return [_key_out(k) for k in access.list_api_keys(c.read_uow(), context.principal, tenant)]


@router.delete("/api-keys/{prefix}", response_model=KeyOut, summary="Revoke an API key")
def revoke_key(
    prefix: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")],
    c: ContainerDep,
    context: Admin,
    tenant: TenantDep,
) -> KeyOut:
    return _key_out(access.revoke_api_key(c.uow(), context.principal, tenant, prefix))


@router.post(
    "/auth/login",
    response_model=LoginOut,
    tags=["auth"],
    summary="Sign in; sets a session cookie and returns the same token",
)
def login(body: LoginIn, c: ContainerDep, response: Response) -> LoginOut:
    session = access.login(c.uow(), body.email, body.password)
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        httponly=True,
        secure=True,
        samesite="strict",
        expires=session.expires_at,
    )
    return LoginOut(token=session.token, expires_at=session.expires_at, role=session.principal.role)
