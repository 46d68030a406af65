"""Keep-alive HTTP connections for the provider adapters, shared by the sending threads.

Every message the dispatcher hands to Twilio or the Cloud API is one small POST to the same
origin. ``httpx`` spent most of a millisecond of CPU per request on its request and response
models and the bookkeeping of its pool (docs/performance.md, section 4), which capped a worker
near 1,000 messages a second. The pool here is urllib3's (``PoolManager``), used thinly:

- at most ``max_connections`` connections per origin; a thread beyond that waits for one (up to
  ``timeout``), then fails with a timeout;
- a keep-alive connection the server has closed meanwhile is noticed *before* a request is
  written on it (urllib3 checks the socket), and a failed request is never retried here: the
  adapters' callers retry with backoff (Twilio's idempotency token makes that safe; see
  whatsapp_cloud.py for the Cloud API);
- ``timeout`` bounds connecting and each read;
- ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` from the environment are honoured, as httpx
  did: an https origin is reached through a CONNECT tunnel, an http one by absolute-form requests.
  The environment is read when a pool first reaches an origin (reading it for every request
  was a tenth of a worker's CPU).

Errors are ``OSError`` (a refused connection as ``ConnectionRefusedError``), ``TimeoutError`` and
``urllib3.exceptions.HTTPError`` (TLS failures and broken answers among them), translated into
delivery errors by ``consentry.channels.post``.

``post_many`` sends a whole dispatch window at once with aiohttp, on an event loop thread the
pool starts when first asked: every request in flight together (at most ``max_connections`` to
an origin), with no thread per request. A thread per connection spent most of a worker's CPU
taking turns with the others (docs/performance.md, section 4), and against a provider 200 ms
away a window of threads sends at most a few dozen messages a second; an event loop keeps
hundreds waiting for little. Its errors are the same kinds as ``post`` raises, given in place of
the answer: ``TimeoutError``, ``OSError`` (the socket's own, ``ConnectionRefusedError`` among
them) and ``ConnectionError`` for an answer that broke off or was no HTTP.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import threading
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import EmptyPoolError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

if TYPE_CHECKING:
    import aiohttp

USER_AGENT = "consentry"


class PoolTimeout(TimeoutError):
    """Every connection stayed busy, or the provider did not answer, within the timeout."""


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
def _origin(url: str) -> tuple[str, str]:
    """(scheme, host) of an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an absolute http(s) URL: {parts.scheme}://{parts.hostname}")
    return parts.scheme, parts.hostname


def proxy_for(scheme: str, host: str) -> str | None:
    """The proxy the environment (HTTPS_PROXY, HTTP_PROXY, NO_PROXY) names for an origin."""
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(host):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


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
        self._timeout = urllib3.Timeout(connect=timeout, read=timeout)
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._managers: dict[str | None, urllib3.PoolManager] = {}
        self._proxies: dict[tuple[str, str], str | None] = {}
        self._events: _EventLoopSender | None = None

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpReply:
        """POST ``body`` to ``url`` and read the whole answer. Raises TimeoutError, OSError or
        urllib3's HTTPError when no answer could be read, ValueError for a header value with a
        line break (before anything is sent)."""
        _check_headers(headers)
        manager = self._manager(self._proxy(url))
        try:
            answer = manager.request(
                "POST",
                url,
                body=body,
                headers={"User-Agent": USER_AGENT, **headers},
                redirect=False,
                pool_timeout=self.timeout,
            )
        except EmptyPoolError as exc:
            raise PoolTimeout("no connection to the provider became free in time") from exc
        except NewConnectionError as exc:  # refused, unreachable: the socket's own error
            cause = exc.__cause__
            raise (cause if isinstance(cause, OSError) else ConnectionError(str(exc))) from exc
        except Urllib3Timeout as exc:
            raise PoolTimeout("the provider did not answer in time") from exc
        return HttpReply(
            answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.data
        )

    def post_many(
        self, requests: Sequence[tuple[str, bytes, Mapping[str, str]]]
    ) -> list[HttpReply | Exception]:
        """POST every ``(url, body, headers)`` at once; each answer, or the error that stands
        in for it (see the module docstring), in order. Never raises for one request's
        failure; ValueError for a header value with a line break (before anything is sent)."""
        for _, _, headers in requests:
            _check_headers(headers)
        if not requests:
            return []
        with self._lock:
            # A process forked from one that sent has the loop object but not its thread.
            if self._events is None or self._events.pid != os.getpid():
                self._events = _EventLoopSender(
                    self.timeout, self.max_connections, self._ssl_context
                )
            events = self._events
        return events.send(
            [(url, body, headers, self._proxy(url)) for url, body, headers in requests]
        )

    def _proxy(self, url: str) -> str | None:
        origin = _origin(url)
        try:
            return self._proxies[origin]
        except KeyError:
            return self._proxies.setdefault(origin, proxy_for(*origin))

    def __enter__(self) -> HttpPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection; later requests open new ones."""
        with self._lock:
            managers = list(self._managers.values())
            events, self._events = self._events, None
        for manager in managers:
            manager.clear()
        if events is not None and events.pid == os.getpid():  # not a forked copy's
            events.close()

    def _manager(self, proxy: str | None) -> urllib3.PoolManager:
        manager = self._managers.get(proxy)
        if manager is None:
            with self._lock:
                manager = self._managers.get(proxy)
                if manager is None:
                    if proxy:
                        manager = urllib3.ProxyManager(
                            proxy,
                            maxsize=self.max_connections,
                            block=True,  # wait for a free connection rather than open more
                            timeout=self._timeout,
                            retries=False,
                            ssl_context=self._ssl_context,
                        )
                    else:
                        manager = urllib3.PoolManager(
                            maxsize=self.max_connections,
                            block=True,
                            timeout=self._timeout,
                            retries=False,
                            ssl_context=self._ssl_context,
                        )
                    self._managers[proxy] = manager
        return manager


def _check_headers(headers: Mapping[str, str]) -> None:
    for value in headers.values():
        if "\r" in value or "\n" in value:
            raise ValueError("a header value must not contain a line break")


class _EventLoopSender:
    """aiohttp on an event loop of its own thread: ``send`` runs a batch of POSTs there and
    waits for all of them."""

    def __init__(
        self, timeout: float, max_connections: int, ssl_context: ssl.SSLContext | None
    ) -> None:
        # Imported here: a command that sends nothing over HTTP does not load aiohttp (a fifth
        # of a second of every command's start-up).
        import aiohttp

        self._aiohttp = aiohttp
        self.pid = os.getpid()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="consentry-http", daemon=True
        )
        self._thread.start()
        self._timeout = timeout
        self._session = self._run(self._open(max_connections, ssl_context))

    def _run(self, coroutine: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _open(
        self, max_connections: int, ssl_context: ssl.SSLContext | None
    ) -> aiohttp.ClientSession:
        http = self._aiohttp
        connector = http.TCPConnector(
            limit=0,  # no overall limit: one per origin, as the thread pool has
            limit_per_host=max_connections,
            ssl=ssl_context if ssl_context is not None else True,
        )
        timeout = http.ClientTimeout(
            total=None,
            connect=self._timeout,  # a free connection included, as post's pool_timeout
            sock_connect=self._timeout,
            sock_read=self._timeout,
        )
        session: aiohttp.ClientSession = http.ClientSession(
            connector=connector, timeout=timeout, headers={"User-Agent": USER_AGENT}
        )
        return session

    def send(
        self, requests: list[tuple[str, bytes, Mapping[str, str], str | None]]
    ) -> list[HttpReply | Exception]:
        answers: list[HttpReply | Exception] = self._run(self._all(requests))
        return answers

    async def _all(
        self, requests: list[tuple[str, bytes, Mapping[str, str], str | None]]
    ) -> list[HttpReply | BaseException]:
        return await asyncio.gather(*(self._one(*r) for r in requests), return_exceptions=True)

    async def _one(
        self, url: str, body: bytes, headers: Mapping[str, str], proxy: str | None
    ) -> HttpReply:
        try:
            async with self._session.post(
                url, data=body, headers=dict(headers), proxy=proxy, allow_redirects=False
            ) as answer:
                content = await answer.read()
                return HttpReply(
                    answer.status, {k.lower(): v for k, v in answer.headers.items()}, content
                )
        except TimeoutError as exc:  # aiohttp's timeouts are asyncio's, TimeoutError since 3.11
            raise PoolTimeout("the provider did not answer in time") from exc
        except self._aiohttp.ClientConnectorError as exc:  # refused, unreachable, TLS: the OS's
            raise exc.os_error from exc
        except self._aiohttp.ClientError as exc:  # an answer that broke off or was not HTTP
            raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        try:
            self._run(self._session.close())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
