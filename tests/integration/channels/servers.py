"""Real servers on 127.0.0.1 for the channel adapters: aiosmtpd SMTP sinks and a threaded HTTP
stub that answers with recorded provider payloads (the fixtures in conftest.py stop them)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import socket
import ssl
import tempfile
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture(provider: str, name: str) -> bytes:
    """A recorded provider payload from tests/fixtures/<provider>/."""
    return (FIXTURES / provider / name).read_bytes()


def unused_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


# -- SMTP ----------------------------------------------------------------------------------------


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    peer: tuple[str, int]
    login: bytes | None


class Mailbox:
    """An aiosmtpd handler that keeps what it accepts and answers as scripted per recipient.
    It offers PIPELINING (RFC 2920) as relays such as Postfix do, unless told not to; aiosmtpd
    reads pipelined commands one by one and answers each in turn."""

    def __init__(self, *, pipelining: bool = True) -> None:
        self.pipelining = pipelining
        self.messages: list[Received] = []
        self.rcpt_replies: dict[str, str] = {}  # recipient -> reply to its RCPT
        self.data_replies: deque[str] = deque()  # replies to the final dot, in order
        self.drop_after_message = False  # close the connection after accepting (idle timeout)
        self.logins: dict[bytes, bytes] = {}
        self._lock = threading.Lock()

    async def handle_EHLO(  # noqa: N802  (aiosmtpd's hook names)
        self,
        server: SMTP,
        session: Session,
        _envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when no hook answers EHLO
        if self.pipelining:
            # aiosmtpd writes each reply of a pipelined group on its own; with Nagle's
            # algorithm the second then waits for the client's delayed ACK (40 ms). Relays
            # that offer PIPELINING send the group's replies together.
            sock = server.transport.get_extra_info("socket") if server.transport else None
            if sock is not None:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_RCPT(  # noqa: N802
        self, _server: SMTP, _session: Session, envelope: Envelope, address: str, _opts: list[str]
    ) -> str:
        if address in self.rcpt_replies:
            return self.rcpt_replies[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        if self.data_replies:
            return self.data_replies.popleft()
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        with self._lock:
            self.messages.append(
                Received(
                    str(envelope.mail_from),
                    list(envelope.rcpt_tos),
                    bytes(envelope.original_content or b""),
                    session.peer,
                    login,
                )
            )
        if self.drop_after_message and server.transport is not None:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 2.0.0 OK queued"

    def authenticate(
        self, _server: SMTP, _session: Session, _envelope: Envelope, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and self.logins.get(data.login) == data.password
        # handled=False: aiosmtpd answers 535 itself (handled=True would leave us to reply).
        return AuthResult(success=ok, handled=False, auth_data=data)


class SmtpSink(Controller):
    """aiosmtpd on a socket bound before start, so the port is free of races and reusable."""

    def __init__(self, handler: Mailbox, port: int = 0, **kwargs: Any) -> None:
        self.sock = socket.create_server(("127.0.0.1", port))  # SO_REUSEADDR on POSIX
        super().__init__(
            handler,
            hostname="127.0.0.1",
            port=self.sock.getsockname()[1],
            server_hostname="sink.test",
            **kwargs,
        )

    def _create_server(self) -> Any:
        return self.loop.create_server(self._factory_invoker, sock=self.sock, ssl=self.ssl_context)


@dataclass(frozen=True)
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


def self_signed() -> Tls:
    """A self-signed certificate for 127.0.0.1, the server context and a client trusting it."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sink.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    with tempfile.TemporaryDirectory() as tmp:  # load_cert_chain reads only files
        (Path(tmp) / "cert.pem").write_bytes(cert_pem)
        (Path(tmp) / "key.pem").write_bytes(key_pem)
        server.load_cert_chain(Path(tmp) / "cert.pem", Path(tmp) / "key.pem")
    client = ssl.create_default_context(cadata=cert_pem.decode())
    return Tls(server, client)


# -- HTTP ----------------------------------------------------------------------------------------


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})
    delay: float = 0.0  # seconds to wait before answering (a slow provider)
    close_after: bool = False  # close the connection after answering, without saying so


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    peer: tuple[str, int] = ("", 0)  # the client's address and port: one per connection


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads: nothing outlives a test
    request_queue_size = 128  # batches connect many at once; the default backlog is 5
    stub: StubServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (timeout test) resets the connection: not worth a traceback."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the adapters' pooled clients expect
    timeout = 5  # a connection left open by a test cannot hold teardown longer than this
    server: _Server

    def do_POST(self) -> None:
        stub = self.server.stub
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {name.lower(): value for name, value in self.headers.items()}
        peer = (str(self.client_address[0]), int(self.client_address[1]))
        reply = stub.record(Request("POST", self.path, headers, body, peer))
        if reply.delay:
            stub.stopping.wait(reply.delay)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)
        self.close_connection = reply.close_after

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test asserts on ``StubServer.requests`` instead."""


class StubServer:
    """A real HTTP/1.1 server in a thread: answers with queued replies (else ``default``) and
    records every request."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.requests: list[Request] = []
        self.replies: deque[Reply] = deque()
        self.default = Reply()
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.stub = self
        self._scheme = "http"
        if tls is not None:  # HTTPS: every accepted connection does the TLS handshake first
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,))
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def answer(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def record(self, request: Request) -> Reply:
        with self._lock:
            self.requests.append(request)
            return self.replies.popleft() if self.replies else self.default

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
