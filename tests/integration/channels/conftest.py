"""Fixtures: SMTP sinks and HTTP stubs on 127.0.0.1, each stopped in teardown."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.integration.channels.servers import Mailbox, SmtpSink, StubServer, Tls, self_signed


@pytest.fixture
def start_smtp() -> Iterator[Callable[..., SmtpSink]]:
    """Starts sinks on demand (``start_smtp(mailbox, port=..., **aiosmtpd options)``)."""
    running: list[SmtpSink] = []

    def start(handler: Mailbox, port: int = 0, **kwargs: Any) -> SmtpSink:
        sink = SmtpSink(handler, port, **kwargs)
        sink.start()
        running.append(sink)
        return sink

    yield start
    for sink in running:
        if sink._thread is not None:
            sink.stop()


@pytest.fixture(scope="session")
def tls() -> Tls:
    return self_signed()


@pytest.fixture
def stub() -> Iterator[StubServer]:
    server = StubServer()
    yield server
    server.stop()
