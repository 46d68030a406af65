"""Route-level scope checks: a dependency per scope, so each route states what it needs."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends

from consentry.domain.access import Scope, require
from consentry.services.audit import RequestContext
from consentry.web.deps import request_context


def needs(scope: Scope) -> Callable[[RequestContext], Awaitable[RequestContext]]:
    # No I/O: checked on the event loop, not in a worker thread.
    async def check(context: RequestContext = Depends(request_context)) -> RequestContext:  # noqa: B008
        require(context.principal, scope)
        return context

    check.__name__ = f"needs_{scope.name.lower()}"
    return check
