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


Send = Callable[[Any, Any], Any]


@pytest.fixture(params=["send", "send_many"])
def deliver(request: pytest.FixtureRequest) -> Send:
    """Sends one message through an HTTP adapter as the dispatcher may: ``send`` (its answer
    or its error raised), or a batch of one through ``send_many`` (the error given back, which
    is raised here so that both ways are held to the same expectations)."""
    if request.param == "send":
        return lambda channel, message: channel.send(message)

    def one_of_many(channel: Any, message: Any) -> Any:
        (result,) = channel.send_many([message])
        if isinstance(result, Exception):
            raise result
        return result

    return one_of_many
