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
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import EmptyPoolError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

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

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpReply:
        """POST ``body`` to ``url`` and read the whole answer. Raises TimeoutError, OSError or
        urllib3's HTTPError when no answer could be read, ValueError for a header value with a
        line break (before anything is sent)."""
        for value in headers.values():
            if "\r" in value or "\n" in value:
                raise ValueError("a header value must not contain a line break")
        origin = _origin(url)
        try:
            proxy = self._proxies[origin]
        except KeyError:
            proxy = self._proxies.setdefault(origin, proxy_for(*origin))
        manager = self._manager(proxy)
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

    def __enter__(self) -> HttpPool:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every idle connection; later requests open new ones."""
        with self._lock:
            managers = list(self._managers.values())
        for manager in managers:
            manager.clear()

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
