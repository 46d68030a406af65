"""Idempotency-Key for write requests: a retried request gets the first response, writes nothing.

States of a key (per principal): reserved (request running) -> completed (response stored).
A retry while reserved gets 409; the same key with a different request gets 422; a request that
failed with a server error releases its reservation so that a retry can run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from consentry.domain.errors import ConsentryError
from consentry.services.clock import utcnow
from consentry.services.ports import IdempotencyRecord
from consentry.web.deps import principal_of
from consentry.web.problems import problem, status_for

HEADER = "idempotency-key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255


async def idempotency_middleware(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    key = request.headers.get(HEADER)
    if key is None or request.method not in WRITE_METHODS:
        return await call_next(request)
    if not key or len(key) > MAX_KEY_LENGTH:
        return problem(
            422,
            "IDEMPOTENCY_KEY_INVALID",
            "Idempotency-Key must be 1-255 characters",
            field="Idempotency-Key",
        )
    container = request.app.state.container
    try:
        # The stored response belongs to one principal: authenticate before replaying it.
        principal = principal_of(request, container)
    except ConsentryError as exc:
        return problem(status_for(exc), exc.code, exc.message)
    body = await request.body()
    digest = hashlib.sha256(
        request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
    ).hexdigest()
    owner = principal.actor
    with container.uow() as uow:
        found = uow.idempotency.get(owner, key)
        if found is None:
            reserved = uow.idempotency.reserve(
                IdempotencyRecord(owner, key, request.method, request.url.path, digest, utcnow())
            )
            uow.commit()
            if not reserved:  # another request took it between our read and insert
                found = uow.idempotency.get(owner, key)
    if found is not None:
        if found.request_hash != digest:
            return problem(
                422,
                "IDEMPOTENCY_KEY_REUSED",
                "this Idempotency-Key was used for a different request",
                field="Idempotency-Key",
            )
        if found.status_code is None:
            return problem(
                409,
                "IDEMPOTENCY_IN_PROGRESS",
                "a request with this Idempotency-Key is still running",
                headers={"Retry-After": "1"},
            )
        return Response(
            found.response_body or b"",
            status_code=found.status_code,
            media_type="application/json"
            if found.status_code < 400
            else "application/problem+json",
            headers={"Idempotent-Replayed": "true"},
        )
    response = await call_next(request)
    chunks = [chunk async for chunk in response.body_iterator]  # type: ignore[attr-defined]
    content = b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks)
    with container.uow() as uow:
        if response.status_code >= 500:
            uow.idempotency.release(owner, key)
        else:
            uow.idempotency.complete(owner, key, response.status_code, content.decode(), utcnow())
        uow.commit()
    return Response(
        content,
        status_code=response.status_code,
        headers=dict(response.headers),
        media_type=response.media_type,
    )
