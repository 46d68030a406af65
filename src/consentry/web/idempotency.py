"""Idempotency-Key for write requests: a retried request gets the first response, writes nothing.

States of a key (per principal): reserved (request running) -> completed (response stored).
A retry while reserved gets 409; the same key with a different request gets 422; a request that
failed with a server error releases its reservation so that a retry can run.
"""

from __future__ import annotations

import hashlib

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.bootstrap import Container
from consentry.domain.errors import ConsentryError
from consentry.services.clock import utcnow
from consentry.services.ports import IdempotencyRecord
from consentry.web.deps import principal_of
from consentry.web.limits import replaying
from consentry.web.problems import problem, status_for

HEADER = "idempotency-key"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_KEY_LENGTH = 255


class Idempotency:
    """Plain ASGI middleware: requests without the header pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in WRITE_METHODS:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        key = request.headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        await self._keyed(request, key, send)

    async def _keyed(self, request: Request, key: str, send: Send) -> None:
        scope, receive = request.scope, request.receive
        if not key or len(key) > MAX_KEY_LENGTH:
            await problem(
                422,
                "IDEMPOTENCY_KEY_INVALID",
                "Idempotency-Key must be 1-255 characters",
                field="Idempotency-Key",
            )(scope, receive, send)
            return
        container = request.app.state.container
        try:
            # The stored response belongs to one principal: authenticate before replaying it.
            principal = principal_of(request, container)
        except ConsentryError as exc:
            await problem(status_for(exc), exc.code, exc.message)(scope, receive, send)
            return
        body = await request.body()
        digest = hashlib.sha256(
            request.method.encode() + b" " + request.url.path.encode() + b"\n" + body
        ).hexdigest()
        owner = principal.actor
        with container.uow() as uow:
            found = uow.idempotency.get(owner, key)
            if found is None:
                reserved = uow.idempotency.reserve(
                    IdempotencyRecord(
                        owner, key, request.method, request.url.path, digest, utcnow()
                    )
                )
                uow.commit()
                if not reserved:  # another request took it between our read and insert
                    found = uow.idempotency.get(owner, key)
        if found is not None:
            await _answer_from(found, digest)(scope, receive, send)
            return
        await self._run_and_store(scope, replaying(body, receive), send, container, owner, key)

    async def _run_and_store(  # noqa: PLR0917  (the request's parts, kept apart)
        self,
        scope: Scope,
        replay: Receive,
        send: Send,
        container: Container,
        owner: str,
        key: str,
    ) -> None:
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        try:
            await self.app(scope, replay, hold)
        except Exception:
            # A crash is a server error: release the key so that a retry can run.
            with container.uow() as uow:
                uow.idempotency.release(owner, key)
                uow.commit()
            raise
        start = next(m for m in held if m["type"] == "http.response.start")
        status = int(start["status"])
        content = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        with container.uow() as uow:
            if status >= 500:
                uow.idempotency.release(owner, key)
            else:
                uow.idempotency.complete(owner, key, status, content.decode(), utcnow())
            uow.commit()
        for message in held:
            await send(message)


def _answer_from(found: IdempotencyRecord, digest: str) -> Response:
    """The answer to a request whose key is already known."""
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
        media_type="application/json" if found.status_code < 400 else "application/problem+json",
        headers={"Idempotent-Replayed": "true"},
    )
