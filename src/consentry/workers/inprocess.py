"""The embedded default: dispatch in this process, no broker (``consentry demo``, SQLite)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from consentry.bootstrap import Container
from consentry.services.campaigns import start_due_campaigns
from consentry.services.dispatch import BatchReport

log = logging.getLogger("consentry.worker")


def drain(
    container: Container,
    campaign_id: uuid.UUID | None = None,
    on_batch: Callable[[BatchReport], None] | None = None,
) -> BatchReport:
    """Start due campaigns, settle dead workers' leases, and send everything due now."""
    start_due_campaigns(container.uow())
    dispatcher = container.dispatcher()
    try:
        dispatcher.reap()
        return dispatcher.run_until_idle(campaign_id, on_batch)
    finally:
        dispatcher.close()


def run_forever(container: Container, poll_seconds: float = 1.0) -> None:
    """``consentry worker`` without a broker: drain, sleep, repeat until interrupted."""
    while True:
        report = drain(container)
        if report.claimed:
            log.info(
                "dispatched %d: %d sent, %d refused", report.claimed, report.sent, report.refused
            )
        else:
            time.sleep(poll_seconds)
