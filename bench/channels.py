"""Channel adapter throughput from one process, with 1, 4 and 8 sending threads.

    .venv/bin/python bench/channels.py [--messages 2000] [--threads 1,4,8]

SMTP goes to a local sink (Postfix's ``smtp-sink`` when it is on PATH, else aiosmtpd's Sink
handler); SMS and WhatsApp go to a local HTTP stub (uvicorn, one worker) answering with the
recorded provider fixtures. Sinks run in child processes, so the figures are the sending
process's: the adapters, smtplib/http.client and the loopback. Each run first warms its pool up; the
SMTP pool has as many connections as there are threads. Prints a table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from consentry.channels.smtp import SmtpChannel, SmtpRelay
from consentry.channels.twilio_sms import TwilioSmsChannel
from consentry.channels.whatsapp_cloud import WhatsAppCloudChannel
from consentry.domain.delivery import EmailMessage, OutboundMessage, SmsMessage, WhatsAppMessage

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
TENANT = uuid.UUID("5f0c8a52-3d6e-4b1a-9c7f-2e8d4a6b1c30")
BODY = ("Dear customer,\r\n\r\nyour car is ready for pick-up.\r\n" * 40).encode()


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return int(sock.getsockname()[1])


def _wait_for(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
        except OSError:
            time.sleep(0.05)
        else:
            return
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextmanager
def _child(args: list[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A child process listening on ``port`` while open (yielded, for its pid)."""
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603  (fixed commands)
    try:
        _wait_for(port)
        yield process
    finally:
        process.terminate()
        process.wait(10)


def smtp_sink(port: int) -> tuple[str, list[str]]:
    postfix = shutil.which("smtp-sink")
    if postfix:
        user = ["-u", "nobody"] if os.geteuid() == 0 else []  # it will not run as root
        return "postfix smtp-sink", [postfix, *user, "-c", f"127.0.0.1:{port}", "1000"]
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{port}"]
    return "aiosmtpd Sink", [*command, "-c", "aiosmtpd.handlers.Sink"]


def serve_http(port: int) -> None:
    """The child process: a raw ASGI app answering like Twilio and the Cloud API."""
    import uvicorn

    twilio = (FIXTURES / "twilio" / "message_created.json").read_bytes()
    meta = (FIXTURES / "whatsapp" / "message_created.json").read_bytes()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        status, body = (201, twilio) if scope["path"].endswith(".json") else (200, meta)
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _run(send: Callable[[OutboundMessage], object], make: Callable[[int], OutboundMessage],
         first: int, messages: int, threads: int) -> tuple[float, list[float]]:  # fmt: skip
    """Seconds for ``messages`` sends spread over ``threads``, and each send's latency."""
    latencies: list[list[float]] = [[] for _ in range(threads)]

    def work(worker: int) -> None:
        for n in range(first + worker, first + messages, threads):
            started = time.perf_counter()
            send(make(n))
            latencies[worker].append(time.perf_counter() - started)

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    ordered = sorted(x for per in latencies for x in per)
    if len(ordered) != messages:
        raise RuntimeError("a sending thread failed")
    return elapsed, ordered


def measure(send: Callable[[OutboundMessage], object], make: Callable[[int], OutboundMessage],
            messages: int, threads: int) -> tuple[float, float, float]:  # fmt: skip
    """Messages per second, and the p50 and p99 of one send in milliseconds."""
    _run(send, make, 10**6, threads * 20, threads)  # warm-up: every thread's connection opens
    elapsed, ordered = _run(send, make, 0, messages, threads)
    p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
    return messages / elapsed, p50 * 1000, p99 * 1000


def email(n: int) -> EmailMessage:
    mid = f"{n}.bench@shop.test"
    head = f"From: <hello@shop.test>\r\nTo: <p{n}@example.org>\r\nMessage-ID: <{mid}>\r\n\r\n"
    return EmailMessage(n, TENANT, "bounces@shop.test", f"p{n}@example.org", head.encode() + BODY,
                        mid)  # fmt: skip


def sms(n: int) -> SmsMessage:
    return SmsMessage(n, TENANT, "+15558675310", "+15017122661", "Your car is ready.", f"d-{n}")


def whatsapp(n: int) -> WhatsAppMessage:
    return WhatsAppMessage(
        n, TENANT, "+16505551234", "106540352242922", f"d-{n}",
        template_name="appointment_reminder", parameters=("Anna", "10:00"),
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--threads", default="1,4,8")
    parser.add_argument("--serve-http", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_http:
        serve_http(args.serve_http)
        return
    thread_counts = [int(t) for t in args.threads.split(",")]
    table = Table(title=f"channel adapters, {args.messages} messages per run")
    for column in ("channel", "sink", "threads", "msg/s", "p50 ms", "p99 ms"):
        table.add_column(column, justify="left" if column in ("channel", "sink") else "right")

    smtp_port, http_port = _free_port(), _free_port()
    sink_name, sink_command = smtp_sink(smtp_port)
    http_command = [sys.executable, __file__, "--serve-http", str(http_port)]
    with _child(sink_command, smtp_port), _child(http_command, http_port):
        for threads in thread_counts:
            relay = SmtpRelay("127.0.0.1", smtp_port, security="none", helo_name="bench.test",
                              max_connections=threads)  # fmt: skip
            smtp = SmtpChannel([relay])
            rate, p50, p99 = measure(smtp.send, email, args.messages, threads)
            smtp.close()
            table.add_row("email (SMTP)", sink_name, str(threads), f"{rate:,.0f}", f"{p50:.2f}",
                          f"{p99:.2f}")  # fmt: skip
        base = f"http://127.0.0.1:{http_port}"
        http_channels: list[tuple[str, Any, Callable[[int], OutboundMessage]]] = [
            ("sms (Twilio)", TwilioSmsChannel("AC" + "0" * 32, "token", base), sms),
            ("whatsapp (Cloud API)", WhatsAppCloudChannel("token", "secret", base), whatsapp),
        ]
        for name, channel, make in http_channels:
            for threads in thread_counts:
                rate, p50, p99 = measure(channel.send, make, args.messages, threads)
                table.add_row(name, "uvicorn stub", str(threads), f"{rate:,.0f}", f"{p50:.2f}",
                              f"{p99:.2f}")  # fmt: skip
            channel.close()

    console = Console(width=None if sys.stdout.isatty() else 120)
    console.print(table)
    console.print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, nproc {os.cpu_count()}, "
                  f"Python {sys.version.split()[0]}")  # fmt: skip


if __name__ == "__main__":
    main()
