"""One HTTP/1.1 connection: a request written in one ``sendall``, the answer read whole.

What the provider adapters need of the protocol and no more (``http_pool`` keeps these
connections): a POST with a byte body, and an answer with a status, headers and a body framed by
``Content-Length``, by chunks, or by the server closing the connection. Interim 1xx answers are
skipped. ``http.client`` did the same with a header parser built for email (``email.feedparser``)
and a validation pass per header, about half of a provider call's CPU in the dispatcher.

Header values are ours (credentials, content types, idempotency keys); one holding a line break
would smuggle a header and is refused before anything is written (``ValueError``).
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass

CRLF = b"\r\n"
MAX_HEAD = 64 * 1024  # status line and headers of one answer
MAX_BODY = 4 * 1024 * 1024  # provider answers are small JSON objects; anything larger is wrong


class HttpProtocolError(Exception):
    """The server's answer is not HTTP/1.x as we can read it (or is absurdly large)."""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes
    reusable: bool  # the connection can carry another request


def request_bytes(target: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    """``POST target`` with ``headers``, a Host and a Content-Length, then ``body``."""
    lines = [f"POST {target} HTTP/1.1", f"Host: {host}"]
    for name, value in headers.items():
        if "\r" in value or "\n" in value or "\r" in name or "\n" in name or ":" in name:
            raise ValueError(f"an HTTP header {name!r} cannot hold a line break")
        lines.append(f"{name}: {value}")
    lines.append(f"Content-Length: {len(body)}\r\n\r\n")
    return "\r\n".join(lines).encode("latin-1") + body


class WireConnection:
    """A socket to one server (through a proxy tunnel when asked) and what was read ahead."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock: socket.socket | None = sock
        self._buffer = bytearray()

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        *,
        timeout: float,
        tls: ssl.SSLContext | None,
        server_name: str,
        tunnel: tuple[str, dict[str, str]] | None = None,
    ) -> WireConnection:
        """Connect to ``host:port``; through it, CONNECT to ``tunnel`` (``"host:port"`` and the
        proxy's headers) first when given; then TLS with ``server_name`` checked when ``tls``."""
        sock = socket.create_connection((host, port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if tunnel is not None:
                cls(sock)._connect_through(*tunnel)
            if tls is not None:
                sock = tls.wrap_socket(sock, server_hostname=server_name)
        except BaseException:
            sock.close()
            raise
        return cls(sock)

    def _connect_through(self, authority: str, proxy_headers: dict[str, str]) -> None:
        """Ask the proxy at the other end for a tunnel to ``authority`` ("host:port")."""
        lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{name}: {value}" for name, value in proxy_headers.items()]
        if self.sock is None:
            raise HttpProtocolError("the connection is closed")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status, _ = self._read_head()
        if status != 200:
            raise HttpProtocolError(f"the proxy refused the tunnel ({status})")
        if self._buffer:
            raise HttpProtocolError("the proxy sent data before the tunnel opened")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def exchange(self, request: bytes) -> Answer:
        """Send ``request`` and read the whole answer (the final one, after any 1xx)."""
        if self.sock is None:
            raise HttpProtocolError("the connection is closed")
        self.sock.sendall(request)
        status, headers = self._read_head()
        while 100 <= status < 200:  # interim answers (103 Early Hints...) carry no body
            status, headers = self._read_head()
        reusable = headers.get("connection", "").lower() != "close"
        if status in (204, 304):
            body = b""
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif (length := headers.get("content-length")) is not None:
            if not length.isdigit() or int(length) > MAX_BODY:
                raise HttpProtocolError("a Content-Length that cannot be read")
            body = self._read_exactly(int(length))
        else:
            body, reusable = self._read_to_close(), False
        # Bytes past the answer belong to no request: the connection's framing is lost.
        return Answer(status, headers, body, reusable and not self._buffer)

    # -- reading ---------------------------------------------------------------------------------

    def _fill(self) -> bool:
        """Read what the socket has into the buffer; False at the end of the stream."""
        assert self.sock is not None  # noqa: S101  (exchange checked it)
        chunk = self.sock.recv(65536)
        self._buffer += chunk
        return bool(chunk)

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise HttpProtocolError("an answer's headers are too long")
            if not self._fill():
                raise HttpProtocolError("the server closed the connection without an answer")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, *lines = head.split("\r\n")
        version, _, rest = status_line.partition(" ")
        code = rest[:3]
        if not version.startswith("HTTP/1.") or not code.isdigit():
            raise HttpProtocolError("not an HTTP/1.x status line")
        headers: dict[str, str] = {}
        for line in lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise HttpProtocolError("a header line without a colon")
            key, value = name.strip().lower(), value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        if version == "HTTP/1.0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"  # HTTP/1.0 closes unless it says otherwise
        return int(code), headers

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            if not self._fill():
                raise HttpProtocolError("the server closed the connection mid-answer")
        body = bytes(self._buffer[:size])
        del self._buffer[:size]
        return body

    def _read_line(self) -> bytes:
        while (end := self._buffer.find(CRLF)) < 0:
            if len(self._buffer) > MAX_HEAD:
                raise HttpProtocolError("a chunk header is too long")
            if not self._fill():
                raise HttpProtocolError("the server closed the connection mid-answer")
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 2]
        return line

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            size_field = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                raise HttpProtocolError("a chunk size that cannot be read") from None
            if size < 0:
                raise HttpProtocolError("a negative chunk size")
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise HttpProtocolError("an answer too large to be a provider's")
            body += self._read_exactly(size)
            if self._read_exactly(2) != CRLF:
                raise HttpProtocolError("a chunk not followed by CRLF")

    def _read_to_close(self) -> bytes:
        while self._fill():
            if len(self._buffer) > MAX_BODY:
                raise HttpProtocolError("an answer too large to be a provider's")
        body = bytes(self._buffer)
        self._buffer.clear()
        return body
