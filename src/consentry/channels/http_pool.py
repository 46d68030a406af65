"""Keep-alive HTTP/1.1 connections for the provider adapters, shared by the sending threads.

Every message the dispatcher hands to Twilio or the Cloud API is one small POST to the same
origin. ``httpx`` spent most of a millisecond of CPU per request on its request and response
models, URL parsing and the bookkeeping of its connection pool (docs/performance.md, section 4),
which capped a worker near 1,000 messages a second; the connections here (``http_wire``) cost a
tenth of that. This pool keeps what the adapters need and no more:

- at most ``max_connections`` open connections over all origins; a thread beyond that waits
  for one (up to ``timeout``);
- an idle connection is reused newest first, unless it has been idle longer than
  ``KEEPALIVE_EXPIRY`` or the server has closed it meanwhile (its socket is readable: an EOF
  or stray bytes), which is how a stale keep-alive connection is noticed *before* a request is
  written on it. A failed request is never retried here: the adapters' callers retry with
  backoff (Twilio's idempotency token makes that safe; see whatsapp_cloud.py for the Cloud API);
- ``timeout`` bounds connecting and each read or write on the socket;
- ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` from the environment are honoured, as httpx
  did: an https origin is reached through a CONNECT tunnel, an http one by absolute-form requests.

Errors are ``OSError`` (``TimeoutError`` and ``ssl.SSLError`` among them) and
``HttpProtocolError``, translated into delivery errors by ``consentry.channels.post``.
"""

from __future__ import annotations

import base64
import json
import select
import ssl
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from consentry.channels.http_wire import WireConnection, request_bytes

KEEPALIVE_EXPIRY = 5.0  # seconds an idle connection is kept (httpx's default too)
USER_AGENT = "consentry"

Origin = tuple[str, str, int]  # scheme, host, port


class PoolTimeout(TimeoutError):
    """Every connection stayed busy for the whole timeout."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    """A provider's answer, read completely."""

    status_code: int
    headers: dict[str, str]  # names in lower case
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def json(self) -> object:
        return json.loads(self.content)


@lru_cache(maxsize=256)
def _target(url: str) -> tuple[Origin, str]:
    """(origin, path with query) of an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {parts.scheme}://{parts.hostname}")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (parts.scheme, parts.hostname, port), path


@dataclass(frozen=True, slots=True)
class _Route:
    """How requests to one origin travel: straight, through a CONNECT tunnel (https), or as
    absolute-form requests to a plain proxy (http)."""

    host: str  # what the socket connects to
    port: int
    tunnel_headers: dict[str, str] | None  # a CONNECT tunnel to the origin, with these headers
    prefix: str  # prepended to the path: the origin, for a plain proxy
    headers: dict[str, str]  # added to every request (Proxy-Authorization for a plain proxy)


def _route(origin: Origin) -> _Route:
    """The route the environment's proxy settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) give."""
    scheme, host, port = origin
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return _Route(host, port, None, "", {})
    parts = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    auth: dict[str, str] = {}
    if parts.username:
        login = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        auth["Proxy-Authorization"] = "Basic " + base64.b64encode(login.encode()).decode()
    proxy_host, proxy_port = parts.hostname or host, parts.port or 80
    if scheme == "https":
        return _Route(proxy_host, proxy_port, auth, "", {})
    return _Route(proxy_host, proxy_port, None, f"http://{host}:{port}", auth)


class _Idle:
    __slots__ = ("connection", "since")

    def __init__(self, connection: WireConnection, since: float) -> None:
        self.connection = connection
        self.since = since


class HttpPool:
    """Thread-safe keep-alive connections to any number of origins."""

    def __init__(
        self,
        *,
        timeout: float = 10.0,
        max_connections: int = 32,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_connections = max_connections
        self._slots = threading.BoundedSemaphore(max_connections)
        self._lock = threading.Lock()
        self._idle: dict[Origin, list[_Idle]] = {}
        self._routes: dict[Origin, _Route] = {}
        self._context = ssl_context

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpReply:
        """POST ``body`` to ``url`` and read the whole answer. Raises OSError (TimeoutError
        among them) or HttpProtocolError when no answer could be read, ValueError for a header
        value with a line break (before anything is sent)."""
        origin, path = _target(url)
        route = self._route(origin)
        request = request_bytes(
            route.prefix + path,
            origin[1] if origin[2] in (80, 443) else f"{origin[1]}:{origin[2]}",
            {"User-Agent": USER_AGENT, **headers, **route.headers},
            body,
        )
        if not self._slots.acquire(timeout=self.timeout):
            raise PoolTimeout("no connection to the provider became free in time")
        try:
            connection = self._take(origin, route)
            try:
                answer = connection.exchange(request)
            except BaseException:
                connection.close()
                raise
            if answer.reusable:
                self._give_back(origin, connection)
            else:
                connection.close()
            return HttpReply(answer.status, answer.headers, answer.body)
        finally:
            self._slots.release()

    def __enter__(self) -> HttpPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection; later requests open new ones."""
        with self._lock:
            idle = [entry for entries in self._idle.values() for entry in entries]
            self._idle.clear()
        for entry in idle:
            entry.connection.close()

    # -- connections -----------------------------------------------------------------------------

    def _take(self, origin: Origin, route: _Route) -> WireConnection:
        """The newest usable idle connection to ``origin``, else a new one."""
        stale: list[WireConnection] = []
        found = None
        now = time.monotonic()
        with self._lock:
            entries = self._idle.get(origin)
            while entries:
                entry = entries.pop()
                if now - entry.since <= KEEPALIVE_EXPIRY and not _closed_by_peer(entry.connection):
                    found = entry.connection
                    break
                stale.append(entry.connection)
        for connection in stale:
            connection.close()
        return found if found is not None else self._open(origin, route)

    def _give_back(self, origin: Origin, connection: WireConnection) -> None:
        with self._lock:
            self._idle.setdefault(origin, []).append(_Idle(connection, time.monotonic()))

    def _route(self, origin: Origin) -> _Route:
        route = self._routes.get(origin)
        if route is None:
            route = self._routes.setdefault(origin, _route(origin))
        return route

    def _open(self, origin: Origin, route: _Route) -> WireConnection:
        scheme, host, port = origin
        tls = self._ssl_context() if scheme == "https" else None
        tunnel = None if route.tunnel_headers is None else (f"{host}:{port}", route.tunnel_headers)
        return WireConnection.open(
            route.host, route.port, timeout=self.timeout, tls=tls, server_name=host, tunnel=tunnel
        )

    def _ssl_context(self) -> ssl.SSLContext:
        # One context for every connection: building one loads the system's CA store.
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context


def _closed_by_peer(connection: WireConnection) -> bool:
    """Whether an idle connection's socket is readable: the server closed it (or sent something
    unasked), so it cannot carry another request."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return bool(poller.poll(0))
    except (OSError, ValueError):  # a closed or invalid descriptor
        return True
