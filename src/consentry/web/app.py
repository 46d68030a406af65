"""The application factory: ``create_app(settings)`` composes everything at call time."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry import __version__
from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.services.audit_seal import AuditSealer
from consentry.web import logs, pages, problems
from consentry.web.idempotency import Idempotency
from consentry.web.limits import (
    BodyLimit,
    RateLimit,
    RateLimiter,
    RedisRequestLimiter,
    RequestLimiter,
)
from consentry.web.routes import (
    admin,
    campaigns,
    catalogue,
    consent,
    contacts,
    decisions,
    forms,
    health,
    imports,
    keywords,
    messages,
    notices,
    passes,
    suppressions,
    webhooks,
)

log = logging.getLogger("consentry.http")


def create_app(settings: Settings | None = None, container: Container | None = None) -> FastAPI:
    """A FastAPI app for ``settings`` (read from the environment when None); migrates on start."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = container is None
        app.state.container = container or bootstrap(settings or Settings(), create_keys=True)
        # Synchronous routes and dependencies run in this many threads (anyio's default is 40):
        # as many as the database pool has connections, so excess requests wait in the event
        # loop rather than as threads contending for the interpreter while holding a lock.
        limiter = anyio.to_thread.current_default_thread_limiter()
        limiter.total_tokens = app.state.container.settings.http_threads
        sealer = AuditSealer(
            app.state.container.uow,
            app.state.container.settings.audit_seal_seconds,
            app.state.container.read_uow,
        )
        sealer.start()
        refs = app.state.container.refs
        if app.state.container.settings.http_cache:
            refs.start(app.state.container.engine.url)
        try:
            yield
        finally:
            refs.stop()
            sealer.stop()
            for limiter in app.state.request_limiters:
                if isinstance(limiter, RedisRequestLimiter):
                    await limiter.close()
            if own:
                app.state.container.close()

    app = FastAPI(
        title="consentry",
        version=__version__,
        lifespan=lifespan,
        description="Permission-first customer messaging: consent, suppressions and "
        "the gate every message passes.",
    )
    if container is not None:
        app.state.container = container
    problems.install(app)
    limits_from = settings or (container.settings if container else Settings())
    # A request is matched against the routes in the order they were added, so the ones that
    # come most often come first: the public pages (unsubscribes, forms), decisions, consent
    # writes and webhooks. No two routers share a path, so the order changes nothing else.
    pages.install(app, form_posts_per_minute=limits_from.form_posts_per_minute)
    for module in (
        decisions,
        consent,
        webhooks,
        messages,
        contacts,
        suppressions,
        catalogue,
        admin,
        imports,
        forms,
        keywords,
        campaigns,
        passes,
        notices,
    ):
        app.include_router(module.router, responses=problems.ERROR_RESPONSES)
    app.include_router(health.router)
    # Plain ASGI middleware, added innermost first: idempotency runs after the rate limit,
    # inside the body limit; request ids and the access log wrap everything.
    app.add_middleware(Idempotency)
    general, auth = app.state.request_limiters = request_limiters(limits_from)
    app.add_middleware(RateLimit, general=general, auth=auth)
    app.add_middleware(
        BodyLimit,
        max_bytes=limits_from.api_max_body_bytes,
        uploads={"/v1/imports": limits_from.import_max_bytes},
    )
    app.add_middleware(RequestIds)
    return app


class RequestIds:
    """Gives every request an id (the caller's ``X-Request-Id`` or a new one), returns it in the
    response's headers and logs the request once answered: ids and route templates only, no
    bodies, no query strings, no personal data."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id")
        request_id = (given or uuid.uuid4().hex)[:64]
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500

        async def tagged(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, tagged)
        finally:
            principal = state.get("principal")
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope.get("method"),
                    "path": _logged_path(scope),
                    "status": status,
                    "ms": round((time.perf_counter() - started) * 1000, 2),
                    "principal": principal.actor if principal else None,
                },
            )


def request_limiters(settings: Settings) -> tuple[RequestLimiter, RequestLimiter]:
    """The general and the sign-in rate limits: shared through Redis when it is configured,
    else kept in this process."""
    s = settings
    if s.redis_url:
        return (
            RedisRequestLimiter(s.redis_url, "api", s.api_rate_per_second, s.api_rate_burst),
            RedisRequestLimiter(s.redis_url, "auth", s.auth_rate_per_second, s.auth_rate_burst),
        )
    return (
        RateLimiter(s.api_rate_per_second, s.api_rate_burst),
        RateLimiter(s.auth_rate_per_second, s.auth_rate_burst),
    )


def _logged_path(scope: Scope) -> str:
    """The route's template (``/u/{token}``) rather than the path: unsubscribe and preference
    links carry a bearer token that must not end up in logs. Unrouted paths are logged as
    they came, capped."""
    route = scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else str(scope.get("path", ""))[:200]


def app_from_environment() -> FastAPI:
    """For ``uvicorn --factory consentry.web.app:app_from_environment``."""
    logs.configure()
    return create_app(Settings())
