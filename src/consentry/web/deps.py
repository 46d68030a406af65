"""Request dependencies: the container, the authenticated principal and its tenant."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.exc import DBAPIError

from consentry.bootstrap import Container
from consentry.domain.access import Principal, Unauthenticated
from consentry.domain.errors import TenantNotFound
from consentry.persistence.engine import lock_timed_out
from consentry.services import access
from consentry.services.audit import RequestContext
from consentry.services.ports import UnitOfWork

SESSION_COOKIE = "consentry_session"

log = logging.getLogger("consentry.http")


# Dependencies that do no I/O are ``async def``: FastAPI runs them on the event loop instead of
# handing each to a worker thread and back.


async def container(request: Request) -> Container:
    found = request.app.state.container
    if not isinstance(found, Container):
        raise TypeError("the application was not composed with a container")
    return found


ContainerDep = Annotated[Container, Depends(container)]

P = ParamSpec("P")
T = TypeVar("T")


async def run_short(c: Container, call: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A short synchronous call from an ``async def`` route or dependency: on the event loop
    itself when ``http_inline`` is on and the database is PostgreSQL, else on a worker thread.

    Only for calls that take no lock another request could hold for long: the API-key check
    and decisions (reads and one audit insert). A call waiting on a lock would stop its whole
    process meanwhile, for every tenant: writes that queue on their tenant's ledger chain, which
    an import holds batch by batch, go through ``run_write``, which gives such a wait up. SQLite
    serialises writers on the database file, so it keeps the thread pool.

    Handing a call to a thread and back costs more than the call's own Python for the
    requests that come most often: measured under load (docs/performance.md, section 3), a
    decision took 8.9-9.0 ms of server CPU inline against 11.1-12.5 ms through the thread
    pool, and the service kept up with 150 decisions a second where it had fallen behind at
    110-130."""
    if c.settings.http_inline and c.engine.dialect.name == "postgresql":
        return call(*args, **kwargs)
    return await run_in_threadpool(call, *args, **kwargs)


async def run_write(c: Container, tenant: object, call: Callable[[UnitOfWork], T]) -> T:
    """A write of one transaction, ``call(uow)``: on the event loop when ``run_short`` would
    run there, else on a worker thread.

    Writes queue on their tenant's ledger chain (and a withdrawal on its address's fence),
    which other writes hold for a round trip and a commit, but an import holds batch by batch.
    On the loop the write's connection gives a lock up after ``INLINE_LOCK_TIMEOUT_MS``: the
    transaction rolls back, having committed nothing, and the write runs again from the start
    on a worker thread, where waiting stops only itself; the tenant's writes then keep to
    threads for ``CONTENDED_SECONDS``. ``call`` must therefore commit once, at its end, and do
    nothing outside the database that a second run would repeat."""
    if (
        c.settings.http_inline
        and c.engine.dialect.name == "postgresql"
        and not c.contended(tenant, time.monotonic())
    ):
        try:
            return call(c.inline_uow())
        except DBAPIError as err:
            if not lock_timed_out(err):
                raise
            c.note_contended(tenant, time.monotonic())
            log.info("a write waited for a lock on the event loop; moved to a worker thread")
    return await run_in_threadpool(call, c.uow())


def principal_of(request: Request, c: Container) -> Principal:
    """Authenticate the request: a bearer API key, else the session cookie."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        token = token.strip()
        if token.startswith(access.KEY_PREFIX):
            return access.authenticate_api_key(c.uow(), token, kept=c.kept_keys())
        return access.authenticate_session(c.read_uow(), token)  # an operator's session token
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        return access.authenticate_session(c.read_uow(), cookie)
    raise Unauthenticated(
        "send an API key or session token as 'Authorization: Bearer …', or sign in"
    )


async def request_context(request: Request, c: ContainerDep) -> RequestContext:
    principal = await run_short(c, principal_of, request, c)
    request.state.principal = principal
    client = request.client.host if request.client else None
    return RequestContext(principal, client, getattr(request.state, "request_id", None))


ContextDep = Annotated[RequestContext, Depends(request_context)]


async def tenant_scope(
    context: ContextDep,
    consentry_tenant: Annotated[
        uuid.UUID | None,
        Header(description="Platform operators: the tenant to act in. Others: ignored."),
    ] = None,
) -> uuid.UUID:
    """The one tenant this request may touch: the principal's own, or the one an operator names."""
    principal = context.principal
    if principal.tenant_id is not None:
        return principal.tenant_id
    if consentry_tenant is None:
        raise TenantNotFound("name the tenant in the Consentry-Tenant header", field="tenant")
    return consentry_tenant


TenantDep = Annotated[uuid.UUID, Depends(tenant_scope)]
