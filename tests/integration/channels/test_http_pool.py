"""HttpPool, the keep-alive connections of the HTTP adapters, against a real HTTP/1.1 server."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from tests.integration.channels.servers import Reply, StubServer, Tls, unused_port

from consentry.channels import http_pool
from consentry.channels.http_pool import HttpPool

HEADERS = {"Content-Type": "application/json"}


@pytest.fixture
def pool() -> Iterator[HttpPool]:
    with HttpPool(timeout=2.0) as connections:
        yield connections


def test_a_post_reads_the_whole_answer(stub: StubServer, pool: HttpPool) -> None:
    stub.answer(Reply(201, b'{"sid": "SM1"}', {"Content-Type": "application/json", "X-A": "b"}))

    reply = pool.post(f"{stub.url}/v1/messages?x=1", b'{"to": "+1"}', HEADERS)

    assert (reply.status_code, reply.content, reply.json()) == (
        201,
        b'{"sid": "SM1"}',
        {"sid": "SM1"},
    )
    assert reply.is_success
    assert reply.headers.get("x-a") == "b"  # names in any case
    (request,) = stub.requests
    assert (request.path, request.body) == ("/v1/messages?x=1", b'{"to": "+1"}')
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == "12"
    assert request.headers["host"] == stub.url.removeprefix("http://")


def test_one_connection_carries_consecutive_requests(stub: StubServer, pool: HttpPool) -> None:
    for _ in range(5):
        pool.post(f"{stub.url}/m", b"{}", HEADERS)

    assert len({r.peer for r in stub.requests}) == 1


def test_a_connection_the_server_closed_while_idle_is_not_reused(
    stub: StubServer, pool: HttpPool
) -> None:
    # The server closes without a "Connection: close": the pool sees the closed socket before
    # it writes the next request, so no request is lost on a dead connection.
    stub.answer(Reply(200, b"{}", close_after=True))
    pool.post(f"{stub.url}/m", b"{}", HEADERS)
    stub.stopping.wait(0.1)  # the FIN arrives

    reply = pool.post(f"{stub.url}/m", b"{}", HEADERS)

    assert reply.status_code == 200
    first, second = stub.requests
    assert first.peer != second.peer


def test_connection_close_is_honoured(stub: StubServer, pool: HttpPool) -> None:
    stub.answer(Reply(200, b"{}", {"Connection": "close"}))
    pool.post(f"{stub.url}/m", b"{}", HEADERS)
    pool.post(f"{stub.url}/m", b"{}", HEADERS)

    first, second = stub.requests
    assert first.peer != second.peer


def test_connections_expire_after_the_keepalive_time(
    stub: StubServer, pool: HttpPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool.post(f"{stub.url}/m", b"{}", HEADERS)
    monkeypatch.setattr(http_pool, "KEEPALIVE_EXPIRY", -1.0)
    pool.post(f"{stub.url}/m", b"{}", HEADERS)

    first, second = stub.requests
    assert first.peer != second.peer


def test_no_more_connections_than_the_limit(stub: StubServer) -> None:
    stub.default = Reply(200, b"{}", delay=0.05)
    with HttpPool(timeout=5.0, max_connections=2) as pool:
        threads = [
            threading.Thread(target=pool.post, args=(f"{stub.url}/m", b"{}", HEADERS))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(stub.requests) == 8
    assert len({r.peer for r in stub.requests}) <= 2


def test_a_failed_request_frees_its_connection(stub: StubServer) -> None:
    with HttpPool(timeout=1.0, max_connections=1) as pool:
        with pytest.raises(ConnectionRefusedError):
            pool.post(f"http://127.0.0.1:{unused_port()}/m", b"{}", HEADERS)
        assert pool.post(f"{stub.url}/m", b"{}", HEADERS).status_code == 200


def test_https_with_the_given_trust(tls: Tls) -> None:
    server = StubServer(tls.server)
    try:
        with HttpPool(timeout=2.0, ssl_context=tls.client) as pool:
            assert pool.post(f"{server.url}/m", b"{}", HEADERS).status_code == 200
            assert pool.post(f"{server.url}/m", b"{}", HEADERS).status_code == 200
        with HttpPool(timeout=2.0) as untrusting, pytest.raises(OSError, match="CERTIFICATE"):
            untrusting.post(f"{server.url}/m", b"{}", HEADERS)
    finally:
        server.stop()
    assert len({r.peer for r in server.requests}) == 1


def test_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.svc.local")

    tunnel = http_pool._route(("https", "api.twilio.com", 443))
    plain = http_pool._route(("http", "hooks.example", 80))
    bypassed = http_pool._route(("https", "stub.svc.local", 443))

    assert (tunnel.host, tunnel.port, tunnel.prefix) == ("proxy.internal", 3128, "")
    assert tunnel.tunnel_headers == {"Proxy-Authorization": "Basic dXNlcjpwQHNz"}  # user:p@ss
    assert (plain.host, plain.port, plain.prefix) == (
        "proxy.internal",
        3128,
        "http://hooks.example:80",
    )
    assert plain.tunnel_headers is None
    assert (bypassed.host, bypassed.port, bypassed.tunnel_headers) == ("stub.svc.local", 443, None)


def test_only_absolute_http_urls(pool: HttpPool) -> None:
    with pytest.raises(ValueError, match="absolute"):
        pool.post("ftp://example.org/m", b"", HEADERS)
