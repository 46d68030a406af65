"""Signals in by mail: the inbound SMTP server, and one message piped from the local MTA."""

from __future__ import annotations

import sys
import time

import typer

from consentry.cli.context import console, err_console, handle_errors, state


@handle_errors
def inbound_smtp(
    ctx: typer.Context,
    host: str | None = typer.Option(
        None, help="Address to listen on (CONSENTRY_INBOUND_SMTP_HOST)."
    ),
    port: int | None = typer.Option(None, help="Port (CONSENTRY_INBOUND_SMTP_PORT)."),
) -> None:
    """Receive bounces, feedback-loop complaints and mailto unsubscribes over SMTP."""
    from consentry.workers.inbound_smtp import make_controller

    container = state(ctx).container(create_keys=True)
    controller = make_controller(container, host, port)
    controller.start()
    console.print(f"inbound SMTP listening on {controller.hostname}:{controller.port}")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


@handle_errors
def inbound_mail(
    ctx: typer.Context,
    rcpt: list[str] = typer.Option(..., help="Envelope recipient(s) of the message."),
) -> None:
    """Apply one message read from standard input (for an MTA's pipe transport).

    Exits 0 when the message was taken, 75 (try again later) on a transient failure, 65 when it
    is not a message at all, as sendmail-style pipe transports expect.
    """
    from consentry.workers.inbound_smtp import InboundHandler

    container = state(ctx).container()
    reply = InboundHandler(container).receive(sys.stdin.buffer.read(), list(rcpt))
    if reply.startswith("2"):
        console.print(reply)
        return
    err_console.print(reply)
    raise typer.Exit(75 if reply.startswith("4") else 65)
