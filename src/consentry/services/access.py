"""Use cases for access: operators and their sessions, tenant API keys, authentication.

Passwords are hashed with Argon2id (argon2-cffi). API keys and session tokens are 256-bit random
secrets, so a single SHA-256 is enough to store them: unlike passwords they cannot be guessed,
and a fast hash keeps authentication cheap on every request.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from consentry.domain.access import (
    ROLE_SCOPES,
    ApiKeyRecord,
    Forbidden,
    Principal,
    PrincipalKind,
    Role,
    Scope,
    Unauthenticated,
    UserRecord,
    effective_scopes,
    require,
    require_platform,
)
from consentry.domain.errors import NotFound, UnknownValue
from consentry.domain.ids import new_id
from consentry.services.addresses import normalize_email
from consentry.services.clock import utcnow
from consentry.services.ports import KeptKeys, UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

KEY_PREFIX = "csk_"
SESSION_LIFETIME = timedelta(hours=12)
# Writing last-used time on every request would turn each read into a write; a minute is precise
# enough to tell whether a key is still in use.
LAST_USED_RESOLUTION = timedelta(minutes=1)
MIN_PASSWORD_LENGTH = 12

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """A fixed hash to verify against when the user does not exist, so timing reveals nothing.
    Made at the first sign-in, not at import: hashing costs every process that starts about
    0.15 s."""
    return _hasher.hash("consentry-timing-equaliser")


def _sha256(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def _principal_for_user(user: UserRecord) -> Principal:
    return Principal(
        PrincipalKind.USER, user.id, user.email, user.role, user.tenant_id, ROLE_SCOPES[user.role]
    )


def create_user(
    uow: UnitOfWork,
    *,
    email: str,
    password: str,
    role: Role,
    tenant_slug: str | None,
    now: datetime | None = None,
) -> UserRecord:
    """Create an operator (platform) or a tenant user; commits."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UnknownValue(
            f"passwords need at least {MIN_PASSWORD_LENGTH} characters", field="password"
        )
    if (role is Role.PLATFORM_OPERATOR) != (tenant_slug is None):
        raise UnknownValue(
            "platform operators belong to no tenant; every other role to one", field="tenant"
        )
    with uow:
        tenant_id = uow.tenants.by_slug(tenant_slug).id if tenant_slug else None
        user = UserRecord(
            new_id(),
            normalize_email(email).lower(),
            _hasher.hash(password),
            role,
            tenant_id,
            now or utcnow(),
        )
        uow.access.add_user(user)
        uow.commit()
    return user


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    principal: Principal
    expires_at: datetime


def login(uow: UnitOfWork, email: str, password: str, now: datetime | None = None) -> Session:
    """Check a password and open a browser session; commits. Wrong email or password look alike."""
    now = now or utcnow()
    with uow:
        user = uow.access.user_by_email(email.strip().lower())
        try:
            _hasher.verify(user.password_hash if user else _dummy_hash(), password)
        except (VerificationError, InvalidHashError) as exc:
            raise Unauthenticated("wrong email or password") from exc
        if user is None or user.disabled_at is not None:
            raise Unauthenticated("wrong email or password")
        if _hasher.check_needs_rehash(user.password_hash):
            uow.access.set_password_hash(user.id, _hasher.hash(password))
        token = secrets.token_urlsafe(32)
        expires = now + SESSION_LIFETIME
        uow.access.add_session(new_id(), _sha256(token), user.id, now, expires)
        uow.commit()
    return Session(token, _principal_for_user(user), expires)


def authenticate_session(uow: UnitOfWork, token: str, now: datetime | None = None) -> Principal:
    with uow:
        user = uow.access.session_user(_sha256(token), now or utcnow())
    if user is None:
        raise Unauthenticated("the session is unknown or has expired")
    return _principal_for_user(user)


def logout(uow: UnitOfWork, token: str, now: datetime | None = None) -> None:
    with uow:
        uow.access.revoke_session(_sha256(token), now or utcnow())
        uow.commit()


@dataclass(frozen=True, slots=True)
class IssuedKey:
    token: str  # shown once, never stored
    record: ApiKeyRecord


def issue_api_key(
    uow: UnitOfWork,
    issuer: Principal,
    *,
    tenant_slug: TenantRef | None,
    name: str,
    scopes: frozenset[Scope] | None = None,
    role: Role | None = None,
    now: datetime | None = None,
) -> IssuedKey:
    """Issue a key for a tenant (or, for a platform operator, a platform token); commits.

    A key's scopes never exceed the issuer's role; the secret is returned once and stored hashed.
    """
    if not name.strip():
        raise UnknownValue("name the key", field="name")
    now = now or utcnow()
    with uow:
        if tenant_slug is None:
            require_platform(issuer)
            tenant_id = None
            key_role = Role.PLATFORM_OPERATOR
        else:
            tenant = find_tenant(uow, tenant_slug)
            if not issuer.platform:
                require(issuer, Scope.ADMIN)
                if issuer.tenant_id != tenant.id:
                    raise NotFound("tenant not found", field="tenant")
            tenant_id = tenant.id
            key_role = role or Role.TENANT_OPERATOR
            if key_role is Role.PLATFORM_OPERATOR:
                raise Forbidden("a tenant key cannot carry the platform role")
        if tenant_slug is not None and role is not None and role not in ROLE_SCOPES:
            raise UnknownValue("unknown role", field="role")
        prefix = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        record = ApiKeyRecord(
            id=new_id(),
            prefix=prefix,
            secret_hash=_sha256(secret),
            name=name.strip(),
            tenant_id=tenant_id,
            user_id=issuer.id if issuer.kind is PrincipalKind.USER else None,
            role=key_role,
            scopes=effective_scopes(key_role, scopes),
            created_at=now,
            created_by=issuer.actor,
        )
        uow.access.add_key(record)
        uow.commit()
    return IssuedKey(f"{KEY_PREFIX}{prefix}_{secret}", record)


def parse_key(token: str) -> tuple[str, str]:
    """(prefix, secret) of a well-formed key; Unauthenticated otherwise."""
    if not token.startswith(KEY_PREFIX):
        raise Unauthenticated("not a consentry API key")
    prefix, _, secret = token[len(KEY_PREFIX) :].partition("_")
    if len(prefix) != 12 or not secret:
        raise Unauthenticated("malformed API key")
    return prefix, secret


def authenticate_api_key(
    uow: UnitOfWork, token: str, now: datetime | None = None, *, kept: KeptKeys | None = None
) -> Principal:
    """The principal of a valid, unrevoked key; records when it was last used.

    A key this process keeps (``kept``) is checked without opening ``uow`` unless its last use
    is due to be recorded; the keeping process hears of every revocation before it may keep a
    key at all (docs/security.md)."""
    prefix, secret = parse_key(token)
    now = now or utcnow()
    record = kept.api_key(prefix) if kept is not None else None
    if record is not None and not _use_due(record, now):
        record = _checked(record, secret)
    else:
        with uow:
            record = _checked(uow.access.key_by_prefix(prefix), secret)
            if _use_due(record, now):
                uow.access.touch_key(record.id, now)
                uow.commit()
    return Principal(
        PrincipalKind.API_KEY, record.id, record.name, record.role, record.tenant_id, record.scopes
    )


def _use_due(record: ApiKeyRecord, now: datetime) -> bool:
    return record.last_used_at is None or now - record.last_used_at >= LAST_USED_RESOLUTION


def _checked(record: ApiKeyRecord | None, secret: str) -> ApiKeyRecord:
    """``record``, unless ``secret`` is not the unrevoked key's (Unauthenticated); an unknown
    prefix takes as long to refuse as a wrong secret."""
    candidate = record.secret_hash if record else _sha256("")
    if not hmac.compare_digest(candidate, _sha256(secret)) or record is None:
        raise Unauthenticated("unknown API key")
    if record.revoked_at is not None:
        raise Unauthenticated("this API key was revoked")
    return record


def list_api_keys(
    uow: UnitOfWork, principal: Principal, tenant_id: uuid.UUID | None
) -> list[ApiKeyRecord]:
    require(principal, Scope.ADMIN)
    with uow:
        return uow.access.keys_of(tenant_id)


def revoke_api_key(
    uow: UnitOfWork,
    principal: Principal,
    tenant_id: uuid.UUID | None,
    prefix: str,
    now: datetime | None = None,
) -> ApiKeyRecord:
    """Revoke a key of the principal's tenant; commits. Revoked keys stop working at once."""
    require(principal, Scope.ADMIN)
    with uow:
        record = uow.access.key_by_prefix(prefix)
        if record is None or record.tenant_id != tenant_id:
            raise NotFound("API key not found", field="prefix")
        uow.access.revoke_key(record.id, now or utcnow())
        uow.commit()
    return record


def local_operator() -> Principal:
    """Whoever runs the command line on the server: a platform operator by construction."""
    return Principal(
        PrincipalKind.LOCAL,
        uuid.UUID(int=0),
        "command line",
        Role.PLATFORM_OPERATOR,
        None,
        ROLE_SCOPES[Role.PLATFORM_OPERATOR],
    )
