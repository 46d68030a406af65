"""Request limits: body size, and token-bucket rate limits with Retry-After.

Without ``CONSENTRY_REDIS_URL`` the buckets live in the process: with several workers each holds
its own, so the effective limit is the configured one times the number of workers. With it, every
server process that uses that Redis shares one bucket per credential or address
(``RedisRequestLimiter``: GCRA, one Lua script a request, the same script the send-rate limits
use).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis
import redis.asyncio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.channels.ratelimit import GCRA
from consentry.web.problems import problem

log = logging.getLogger(__name__)


class _UploadTooLarge(Exception):
    """Raised into the application when a streamed upload passes its limit."""


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413, whether or not Content-Length is honest.

    Multipart uploads to the paths in ``uploads`` (path -> limit) are not buffered here: they
    stream through to the route, counted, and are cut off with 413 at their own limit."""

    def __init__(self, app: ASGIApp, max_bytes: int, uploads: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.uploads = uploads or {}

    async def _upload(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        too_large = problem(
            413, "IMPORT_TOO_LARGE", f"uploads are limited to {limit:,} bytes; split the file"
        )
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await too_large(scope, receive, send)
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise _UploadTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _UploadTooLarge:
            if started:
                raise
            await too_large(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.uploads.get(scope.get("path", ""))
        content_type = dict(scope.get("headers", [])).get(b"content-type", b"")
        if (
            limit is not None
            and scope.get("method") == "POST"
            and content_type.startswith(b"multipart/form-data")
        ):
            await self._upload(scope, receive, send, limit)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await problem(
                413, "PAYLOAD_TOO_LARGE", f"bodies are limited to {self.max_bytes} bytes"
            )(scope, receive, send)
            return
        # Read the body first (at most max_bytes of it), then replay it: the limit holds for
        # chunked bodies too, and nothing downstream sees a partial read.
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunk = message.get("body", b"")
            seen += len(chunk)
            if seen > self.max_bytes:
                await problem(
                    413, "PAYLOAD_TOO_LARGE", f"bodies are limited to {self.max_bytes} bytes"
                )(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        await self.app(scope, replaying(b"".join(chunks), receive), send)


def replaying(body: bytes, then: Receive) -> Receive:
    """An ASGI ``receive`` that hands over ``body`` (already read) once, then defers to ``then``
    (which reports the client's disconnect)."""
    replayed = False

    async def receive() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await then()

    return receive


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by client: ``rate`` requests per second, bursts up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    async def check(self, key: str) -> float:
        """``acquire`` for the rate-limit middleware (no I/O: it runs on the event loop)."""
        return self.acquire(key)

    def acquire(self, key: str) -> float:
        """0 if allowed now, else seconds until a token is available."""
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) > 100_000:  # forget idle clients rather than grow forever
                    self._buckets.clear()
                bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return 0.0
            return (1 - bucket.tokens) / self.rate


class RequestLimiter(Protocol):
    async def check(self, key: str) -> float:
        """0 if the request may go now, else seconds until it may; takes a token if it goes."""
        ...


class RedisRequestLimiter:
    """``rate`` requests per second per key, bursts up to ``burst``, shared by every process
    that uses this Redis. If Redis cannot be reached the request goes (logged): an outage of
    the limiter's store must not take the API down with it."""

    def __init__(self, url: str, prefix: str, rate: float, burst: int) -> None:
        self._redis = redis.asyncio.Redis.from_url(url, socket_timeout=1.0)
        self._script = self._redis.register_script(GCRA)
        self._prefix = f"consentry:http:{prefix}:"
        self._interval = 1.0 / rate
        self._tolerance = self._interval * burst

    async def check(self, key: str) -> float:
        try:
            wait = await self._script(
                keys=[self._prefix + key], args=[time.time(), self._interval, self._tolerance]
            )
        except (redis.RedisError, OSError) as exc:
            log.warning("rate limit not checked: Redis unavailable (%s)", type(exc).__name__)
            return 0.0
        return max(0.0, float(wait))

    async def close(self) -> None:
        await self._redis.aclose()


def client_key(request: Request) -> str:
    """Rate-limit by credential when one is presented (its public part), else by address."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer csk_"):
        return "key:" + header[11:23]
    return "ip:" + (request.client.host if request.client else "unknown")


class RateLimit:
    """Rate limits as plain ASGI middleware (no task or stream per request): the general limit
    per credential or address, a tight one per address for sign-in, none for health checks and
    provider webhooks."""

    def __init__(self, app: ASGIApp, general: RequestLimiter, auth: RequestLimiter) -> None:
        self.app = app
        self.general = general
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        # Provider webhooks carry opt-outs and arrive in bursts from a few addresses; they are
        # verified by signature before any work is done, and dropping one would lose an opt-out.
        if (
            scope["type"] != "http"
            or path in ("/healthz", "/readyz")
            or path.startswith("/webhooks/")
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        # Sign-in is limited per address, tightly, whatever credential is claimed.
        limiter, key = (
            (self.auth, "ip:" + (request.client.host if request.client else "?"))
            if path.startswith("/v1/auth/")
            else (self.general, client_key(request))
        )
        wait = await limiter.check(key)
        if wait > 0:
            await problem(
                429,
                "RATE_LIMITED",
                "too many requests; retry later",
                headers={"Retry-After": str(math.ceil(wait))},
            )(scope, receive, send)
            return
        await self.app(scope, receive, send)
