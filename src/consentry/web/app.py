"""The application factory: ``create_app(settings)`` composes everything at call time."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from consentry import __version__
from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.web import logs, pages, problems
from consentry.web.idempotency import idempotency_middleware
from consentry.web.limits import BodyLimit, RateLimiter, rate_limit_middleware
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
        try:
            yield
        finally:
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
    app.include_router(health.router)
    for module in (
        admin,
        catalogue,
        contacts,
        consent,
        suppressions,
        imports,
        forms,
        keywords,
        decisions,
        campaigns,
        passes,
        notices,
        messages,
        webhooks,
    ):
        app.include_router(module.router, responses=problems.ERROR_RESPONSES)
    limits_from = settings or (container.settings if container else Settings())
    pages.install(app, form_posts_per_minute=limits_from.form_posts_per_minute)
    # Added innermost first: idempotency runs after the rate limit, inside the body limit.
    app.middleware("http")(idempotency_middleware)
    app.middleware("http")(
        rate_limit_middleware(
            RateLimiter(limits_from.api_rate_per_second, limits_from.api_rate_burst),
            RateLimiter(limits_from.auth_rate_per_second, limits_from.auth_rate_burst),
        )
    )
    app.add_middleware(
        BodyLimit,
        max_bytes=limits_from.api_max_body_bytes,
        uploads={"/v1/imports": limits_from.import_max_bytes},
    )

    @app.middleware("http")
    async def request_ids(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        request.state.request_id = request_id[:64]
        started = time.perf_counter()
        response = await call_next(request)
        response.headers["X-Request-Id"] = request.state.request_id
        principal = getattr(request.state, "principal", None)
        # Ids and paths only: no bodies, no query strings, no personal data.
        log.info(
            "request",
            extra={
                "request_id": request.state.request_id,
                "method": request.method,
                "path": _logged_path(request),
                "status": response.status_code,
                "ms": round((time.perf_counter() - started) * 1000, 2),
                "principal": principal.actor if principal else None,
            },
        )
        return response

    return app


def _logged_path(request: Request) -> str:
    """The route's template (``/u/{token}``) rather than the path: unsubscribe and preference
    links carry a bearer token that must not end up in logs. Unrouted paths are logged as
    they came, capped."""
    route = request.scope.get("route")
    template = getattr(route, "path", None)
    return template if isinstance(template, str) else request.url.path[:200]


def app_from_environment() -> FastAPI:
    """For ``uvicorn --factory consentry.web.app:app_from_environment``."""
    logs.configure()
    return create_app(Settings())
