"""The embedded default: dispatch in this process, no broker (``consentry demo``, SQLite)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from consentry.bootstrap import Container
from consentry.services.campaigns import start_due_campaigns
from consentry.services.confirming import lapse_pending
from consentry.services.dispatch import BatchReport
from consentry.services.notice_sending import NoticeBatch
from consentry.services.pass_end import end_due_passes

log = logging.getLogger("consentry.worker")
LAPSE_EVERY_SECONDS = 3600.0  # unconfirmed requests lapse within an hour of their expiry


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


def lapse_expired_requests(container: Container) -> int:
    """Lapse confirmation requests past their lifetime (``consentry consent lapse-pending``)."""
    lifetime = timedelta(days=container.settings.confirmation_lifetime_days)
    lapsed = lapse_pending(container.uow(), lifetime=lifetime)
    if lapsed:
        log.info("lapsed %d unconfirmed request(s)", lapsed)
    return lapsed


def end_passes(container: Container) -> int:
    """End the permission passes whose deadline has passed (``consentry pass end``); the
    number of members lapsed."""
    ended = end_due_passes(container.uow())
    lapsed = sum(ended.values())
    if ended:
        log.info("ended %d permission pass(es): %d lapsed", len(ended), lapsed)
    return lapsed


def send_notices(
    container: Container, notice_id: uuid.UUID | None = None, max_batches: int | None = None
) -> NoticeBatch:
    """Send the queued policy-change notices (all of them, or one notice's), after putting back
    in the queue what a dead sender left in flight."""
    sender = container.notice_sender()
    try:
        sender.reap()
        return sender.run_until_idle(notice_id, max_batches=max_batches)
    finally:
        sender.close()


def run_forever(container: Container, poll_seconds: float = 1.0) -> None:
    """``consentry worker`` without a broker: send the due deliveries and policy notices,
    sleep, repeat until interrupted; once an hour, lapse the confirmation requests past their
    lifetime and end the permission passes past their deadline."""
    next_lapse = 0.0
    while True:
        if time.monotonic() >= next_lapse:
            lapse_expired_requests(container)
            end_passes(container)
            next_lapse = time.monotonic() + LAPSE_EVERY_SECONDS
        report = drain(container)
        notices = send_notices(container)
        if notices.claimed:
            log.info("policy notices: %d sent, %d refused", notices.sent, notices.refused)
        if report.claimed:
            log.info(
                "dispatched %d: %d sent, %d refused", report.claimed, report.sent, report.refused
            )
        elif not notices.claimed:
            time.sleep(poll_seconds)
