"""Use cases for a tenant's own keywords: the words and reply texts it adds to the deployment's.

A tenant's configuration has the format of the deployment's keywords file (domain/keywords.py,
``extend_keywords``): per language, words added to the opt-out, opt-in and help lists (never
removed, so the carrier-standard words always work), filler and refusal phrases, and reply
texts that replace the defaults. The inbound pipeline reads a keyword with the lists of the one
tenant that knows the sender's number, and answers with that tenant's texts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from consentry.domain.keywords import DEFAULT_KEYWORDS, KeywordLists, extend_keywords
from consentry.services.audit import RequestContext, audit
from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant


def set_keywords(
    uow: UnitOfWork,
    tenant_ref: TenantRef,
    config: Mapping[str, Any],
    *,
    now: datetime | None = None,
    context: RequestContext | None = None,
) -> dict[str, Any]:
    """Replace the tenant's keyword configuration; commits. InvalidInput, with nothing written,
    names the first thing wrong (checked exactly as the deployment's file is)."""
    now = now or utcnow()
    extend_keywords(config)  # raises before anything is written
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        actor = context.principal.actor if context is not None else None
        uow.tenant_keywords.put(tenant.id, dict(config), now, actor)
        audit(uow, context, tenant.id, "keywords.set", "tenant", tenant.id)
        uow.commit()
    return dict(config)


def get_keywords(uow: UnitOfWork, tenant_ref: TenantRef) -> dict[str, Any]:
    """The tenant's keyword configuration ({} when it adds nothing)."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        return uow.tenant_keywords.get(tenant.id) or {}


def clear_keywords(
    uow: UnitOfWork, tenant_ref: TenantRef, *, context: RequestContext | None = None
) -> bool:
    """Go back to the deployment's keywords; commits. Whether there was anything to clear."""
    with uow:
        tenant = find_tenant(uow, tenant_ref)
        cleared = uow.tenant_keywords.clear(tenant.id)
        audit(uow, context, tenant.id, "keywords.clear", "tenant", tenant.id)
        uow.commit()
    return cleared


def lists_for(
    uow: UnitOfWork,
    tenant_id: uuid.UUID,
    base: Mapping[str, KeywordLists] | None,
) -> Mapping[str, KeywordLists] | None:
    """The deployment's lists extended by the tenant's, or None when the tenant adds nothing
    (inside the caller's transaction)."""
    config = uow.tenant_keywords.get(tenant_id)
    if not config:
        return None
    return extend_keywords(config, base if base is not None else DEFAULT_KEYWORDS)
