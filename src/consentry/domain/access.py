"""Who may do what: principals, roles and API-key scopes (pure rules, no I/O).

A request is made by one principal: a platform operator (every tenant), a tenant user with a role,
or a tenant API key with scopes. Every tenant-scoped use case runs inside exactly one tenant: the
principal's own, or, for a platform operator, the tenant it names.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from consentry.domain.errors import ConsentryError


class Forbidden(ConsentryError):
    """Authenticated, but not allowed to do this."""

    code = "FORBIDDEN"


class Unauthenticated(ConsentryError):
    """No valid credential: missing, unknown, expired or revoked."""

    code = "UNAUTHENTICATED"


class Role(StrEnum):
    PLATFORM_OPERATOR = "platform_operator"
    TENANT_OWNER = "tenant_owner"
    TENANT_OPERATOR = "tenant_operator"
    AUDITOR = "auditor"


class Scope(StrEnum):
    CONTACTS_READ = "contacts:read"
    CONTACTS_WRITE = "contacts:write"
    CONSENT_READ = "consent:read"
    CONSENT_WRITE = "consent:write"
    SUPPRESSIONS_READ = "suppressions:read"
    SUPPRESSIONS_WRITE = "suppressions:write"
    DECISIONS = "decisions"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"  # drafts, lists, pause and cancel
    TEMPLATES_READ = "templates:read"
    TEMPLATES_WRITE = "templates:write"
    MESSAGES_READ = "messages:read"
    SEND = "send"  # launch or resume a campaign, send a transactional message
    ADMIN = "admin"  # topics, policies, the business profile, API keys, sender domains


READ_SCOPES = frozenset(
    {
        Scope.CONTACTS_READ,
        Scope.CONSENT_READ,
        Scope.SUPPRESSIONS_READ,
        Scope.DECISIONS,
        Scope.CAMPAIGNS_READ,
        Scope.TEMPLATES_READ,
        Scope.MESSAGES_READ,
    }
)
ALL_SCOPES = frozenset(Scope)

# What each role may do inside its tenant. Auditors read everything and change nothing.
ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.PLATFORM_OPERATOR: ALL_SCOPES,
    Role.TENANT_OWNER: ALL_SCOPES,
    Role.TENANT_OPERATOR: ALL_SCOPES - {Scope.ADMIN},
    Role.AUDITOR: READ_SCOPES,
}


class PrincipalKind(StrEnum):
    USER = "user"
    API_KEY = "api_key"
    LOCAL = "local"  # the command line on the server itself


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller. ``tenant_id`` is None only for platform operators."""

    kind: PrincipalKind
    id: uuid.UUID
    label: str
    role: Role
    tenant_id: uuid.UUID | None
    scopes: frozenset[Scope]

    @property
    def platform(self) -> bool:
        return self.role is Role.PLATFORM_OPERATOR

    @property
    def actor(self) -> str:
        """How the audit log and consent evidence name this principal."""
        return f"{self.kind.value}:{self.id}"


def require(principal: Principal, scope: Scope) -> None:
    """Raise Forbidden unless the principal holds ``scope``."""
    if scope not in principal.scopes:
        raise Forbidden(f"this credential lacks the {scope.value} scope", field="scope")


def require_platform(principal: Principal) -> None:
    if not principal.platform:
        raise Forbidden("only platform operators may do this")


def effective_scopes(role: Role, requested: frozenset[Scope] | None) -> frozenset[Scope]:
    """An API key never holds more than the role of whoever issued it."""
    allowed = ROLE_SCOPES[role]
    return allowed if requested is None else requested & allowed


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: uuid.UUID
    email: str
    password_hash: str
    role: Role
    tenant_id: uuid.UUID | None
    created_at: datetime
    disabled_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: uuid.UUID
    prefix: str
    secret_hash: bytes
    name: str
    tenant_id: uuid.UUID | None
    user_id: uuid.UUID | None
    role: Role
    scopes: frozenset[Scope]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None
