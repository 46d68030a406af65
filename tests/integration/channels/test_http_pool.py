"""HttpPool, the keep-alive connections of the HTTP adapters, against a real HTTP/1.1 server."""

from __future__ import annotations

import os
import signal
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from tests.integration.channels.servers import Reply, StubServer, Tls, unused_port
from urllib3.exceptions import HTTPError

from consentry.channels.http_pool import HttpPool, proxy_for

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
        with (
            HttpPool(timeout=2.0) as untrusting,
            pytest.raises(HTTPError, match="CERTIFICATE"),
        ):
            untrusting.post(f"{server.url}/m", b"{}", HEADERS)
    finally:
        server.stop()
    assert len({r.peer for r in server.requests}) == 1


def test_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:p%40ss@proxy.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.svc.local")

    assert proxy_for("https", "api.twilio.com") == "http://user:p%40ss@proxy.internal:3128"
    assert proxy_for("http", "hooks.example") == "http://proxy.internal:3128"
    assert proxy_for("https", "stub.svc.local") is None


@pytest.mark.parametrize("batch", [False, True], ids=["post", "post_many"])
def test_requests_go_through_the_proxy_the_environment_names(
    stub: StubServer, monkeypatch: pytest.MonkeyPatch, batch: bool
) -> None:
    # The stub plays a plain HTTP proxy: it receives the request in absolute form.
    monkeypatch.setenv("HTTP_PROXY", stub.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    url = "http://provider.example/v1/m"
    with HttpPool(timeout=2.0) as pool:
        if batch:
            (reply,) = pool.post_many([(url, b"{}", HEADERS)])
        else:
            reply = pool.post(url, b"{}", HEADERS)
    assert not isinstance(reply, Exception)
    assert reply.status_code == 200
    (request,) = stub.requests
    assert request.path == url


def test_only_absolute_http_urls(pool: HttpPool) -> None:
    with pytest.raises(ValueError, match="absolute"):
        pool.post("ftp://example.org/m", b"", HEADERS)


# -- answers as servers frame them -----------------------------------------------------


class RawServer:
    """Answers each request on a connection with the next scripted bytes; closes after the
    last script of a connection."""

    def __init__(self, *answers: bytes, close: bool = True) -> None:
        self.requests: list[bytes] = []
        self._answers = list(answers)
        self._close = close
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve)
        self._thread.start()

    def _serve(self) -> None:
        conn, _ = self._sock.accept()
        with conn:
            for answer in self._answers:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                conn.sendall(answer)
            if not self._close:
                conn.recv(1)  # held open until the client goes

    def stop(self) -> None:
        self._thread.join(5)
        self._sock.close()


@pytest.mark.parametrize(
    ("answer", "body"),
    [
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"7\r\n{\"a\": 1\r\n1;ext=1\r\n}\r\n0\r\nX-Trailer: t\r\n\r\n", b'{"a": 1}'),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\n{}",
         b"{}"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{\"until\": \"close\"}",
         b'{"until": "close"}'),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}", b"{}"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", b""),
    ],
)  # fmt: skip
def test_answers_framed_every_way_are_read_whole(answer: bytes, body: bytes) -> None:
    server = RawServer(answer)
    try:
        with HttpPool(timeout=2.0) as pool:
            reply = pool.post(f"{server.url}/m", b"{}", HEADERS)
    finally:
        server.stop()

    assert reply.content == body
    (request,) = server.requests
    head, _, sent = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /m HTTP/1.1"
    assert f"Host: 127.0.0.1:{server.url.rsplit(':', 1)[1]}".encode() in lines
    assert b"Content-Length: 2" in lines
    assert sent == b"{}"


def test_a_keep_alive_connection_carries_chunked_and_sized_answers() -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    sized = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]"
    server = RawServer(chunked, sized, close=False)
    try:
        with HttpPool(timeout=2.0) as pool:
            first = pool.post(f"{server.url}/m", b"{}", HEADERS)
            second = pool.post(f"{server.url}/m", b"{}", HEADERS)
    finally:
        server.stop()
    assert (first.content, second.content) == (b"{}", b"[]")
    assert len(server.requests) == 2  # one connection: the RawServer accepts only one


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # closed mid-body
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",  # no chunk size
        b"SMTP/1.0 220 hello\r\n\r\n",  # no HTTP at all
        b"",  # closed without an answer
    ],
)
def test_broken_answers_are_protocol_errors(answer: bytes) -> None:
    server = RawServer(answer)
    try:
        with HttpPool(timeout=2.0) as pool, pytest.raises(HTTPError):
            pool.post(f"{server.url}/m", b"{}", HEADERS)
    finally:
        server.stop()


def test_a_header_value_with_a_line_break_is_refused_before_sending(
    stub: StubServer, pool: HttpPool
) -> None:
    with pytest.raises(ValueError, match="line break"):
        pool.post(f"{stub.url}/m", b"{}", {"I-Twilio-Idempotency-Token": "k\r\nX-Evil: 1"})
    assert stub.requests == []


# -- a batch at once (post_many) ---------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(201)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Path", self.path)
        self.send_header("X-Agent", self.headers["User-Agent"])
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        del format, args


class _EchoServer(ThreadingHTTPServer):
    # A batch opens up to 32 connections at once: socketserver's backlog of 5 would drop SYNs
    # on a busy machine, and the retransmission a second later can outlast the pool's timeout.
    request_queue_size = 128


@pytest.fixture
def echo() -> Iterator[str]:
    server = _EchoServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_batch_is_answered_in_order(echo: str, pool: HttpPool) -> None:
    requests = [(f"{echo}/v1/m/{n}?x={n}", f"body-{n}".encode(), HEADERS) for n in range(40)]

    replies = pool.post_many(requests)

    for n, reply in enumerate(replies):
        assert not isinstance(reply, Exception)
        assert (reply.status_code, reply.content) == (201, f"body-{n}".encode())
        assert reply.headers["x-path"] == f"/v1/m/{n}?x={n}"  # names in lower case
        assert reply.headers["x-agent"] == "consentry"


def test_a_batch_keeps_to_the_connection_limit(stub: StubServer) -> None:
    stub.default = Reply(200, b"{}", delay=0.05)
    with HttpPool(timeout=5.0, max_connections=2) as pool:
        replies = pool.post_many([(f"{stub.url}/m", b"{}", HEADERS)] * 8)

    assert [r.status_code for r in replies if not isinstance(r, Exception)] == [200] * 8
    assert len({r.peer for r in stub.requests}) <= 2


def test_a_batch_gives_each_failure_in_place_of_its_answer(stub: StubServer) -> None:
    slow = StubServer()
    slow.default = Reply(200, b"{}", delay=2.0)
    try:
        with HttpPool(timeout=0.3) as pool:
            ok, refused, late = pool.post_many(
                [
                    (f"{stub.url}/m", b"{}", HEADERS),
                    (f"http://127.0.0.1:{unused_port()}/m", b"{}", HEADERS),
                    (f"{slow.url}/m", b"{}", HEADERS),
                ]
            )
    finally:
        slow.stop()

    assert not isinstance(ok, Exception)
    assert ok.status_code == 200
    assert isinstance(refused, ConnectionRefusedError)
    assert isinstance(late, TimeoutError)


def test_a_batch_rejects_line_breaks_in_headers_before_sending(
    stub: StubServer, pool: HttpPool
) -> None:
    with pytest.raises(ValueError, match="line break"):
        pool.post_many(
            [
                (f"{stub.url}/m", b"{}", HEADERS),
                (f"{stub.url}/m", b"{}", {"X-Evil": "a\r\nX-Injected: 1"}),
            ]
        )
    assert stub.requests == []


def test_a_closed_pool_sends_batches_again(stub: StubServer, pool: HttpPool) -> None:
    pool.post_many([(f"{stub.url}/m", b"{}", HEADERS)])
    pool.close()

    (reply,) = pool.post_many([(f"{stub.url}/m", b"{}", HEADERS)])

    assert not isinstance(reply, Exception)
    assert reply.status_code == 200
    assert len(stub.requests) == 2


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork() is POSIX")
def test_a_forked_process_sends_batches_on_a_loop_of_its_own(
    stub: StubServer, pool: HttpPool
) -> None:
    pool.post_many([(f"{stub.url}/m", b"parent", HEADERS)])  # the loop thread starts here

    child = os.fork()
    if child == 0:  # pragma: no cover  (runs in the child, which exits at once)
        signal.alarm(10)  # a child waiting on its parent's loop would never answer
        try:
            (reply,) = pool.post_many([(f"{stub.url}/m", b"child", HEADERS)])
            pool.close()
            os._exit(0 if not isinstance(reply, Exception) and reply.status_code == 200 else 1)
        finally:
            os._exit(2)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    assert sorted(r.body for r in stub.requests) == [b"child", b"parent"]
