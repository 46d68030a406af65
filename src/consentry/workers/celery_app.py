"""Celery on RabbitMQ or Redis (``CONSENTRY_BROKER_URL``): the same dispatch code, many hosts.

Tasks carry only ids: which deliveries a worker sends is decided by the database (claims with
``FOR UPDATE SKIP LOCKED`` and leases), so a task delivered twice, or to two workers, sends
nothing twice. Acknowledgement is late: a worker killed mid-task leaves its task to another
worker, whose reaper settles the dead worker's in-flight deliveries first.

``CONSENTRY_CELERY_QUEUE`` names the queue the tasks go to and the workers consume (default
Celery's ``celery``), so that several consentry installations can share one broker vhost.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from celery import Celery

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.services.campaigns import start_due_campaigns
from consentry.workers.inprocess import (
    LAPSE_EVERY_SECONDS,
    end_passes,
    lapse_expired_requests,
    send_notices,
)

DISPATCH = "consentry.dispatch"
TICK = "consentry.tick"
LAPSE = "consentry.lapse_pending"
END_PASSES = "consentry.end_passes"
NOTICES = "consentry.send_notices"
BATCHES_PER_TASK = 20


class _ConsentryCelery(Celery):  # type: ignore[misc]  # celery is untyped
    def worker_main(self, argv: list[str] | None = None) -> None:
        """``celery worker`` with a node name of its own, exiting non-zero when it fails.

        Celery's default node name is ``celery@<host>``, and a worker's remote-control queue is
        named after it and declared exclusive: a second worker on the same host stops at start
        with RESOURCE_LOCKED. Celery's ``start`` also returns the worker's exit code instead of
        exiting with it, so a worker that could not start looked like a clean stop."""
        args = list(argv or [])
        if not any(a in ("-n", "--hostname") or a.startswith("--hostname=") for a in args):
            args.append(f"--hostname=consentry-{os.getpid()}@%h")
        code = self.start(args)
        if code:
            raise SystemExit(code)


def make_celery(settings: Settings) -> Celery:
    """The Celery application for ``settings``; the database is opened lazily in each worker
    process (after the fork), never at import."""
    if not settings.broker_url:
        raise ValueError("CONSENTRY_BROKER_URL is not set")
    app = _ConsentryCelery("consentry", broker=settings.broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        task_ignore_result=True,
        worker_hijack_root_logger=False,
        beat_schedule={
            "tick": {"task": TICK, "schedule": 5.0},
            "lapse": {"task": LAPSE, "schedule": LAPSE_EVERY_SECONDS},
            "end-passes": {"task": END_PASSES, "schedule": LAPSE_EVERY_SECONDS},
        },
    )
    app.conf.task_default_queue = settings.celery_queue
    state: dict[str, Container] = {}

    def container() -> Container:
        if "c" not in state:
            state["c"] = bootstrap(settings, migrate=False)
        return state["c"]

    @app.task(name=DISPATCH)  # type: ignore[untyped-decorator]
    def dispatch(campaign_id: str | None = None) -> dict[str, Any]:
        dispatcher = container().dispatcher()
        try:
            dispatcher.reap()
            cid = uuid.UUID(campaign_id) if campaign_id else None
            report = dispatcher.run_until_idle(cid, max_batches=BATCHES_PER_TASK)
        finally:
            dispatcher.close()
        if report.claimed:  # more may be due: keep the work moving in small tasks
            app.send_task(DISPATCH, args=[campaign_id])
        return dict(vars(report))

    @app.task(name=TICK)  # type: ignore[untyped-decorator]
    def tick() -> int:
        """Start scheduled campaigns, retry deferred deliveries, settle dead workers."""
        c = container()
        start_due_campaigns(c.uow())
        app.send_task(DISPATCH, args=[None])
        app.send_task(NOTICES)
        return 0

    @app.task(name=NOTICES)  # type: ignore[untyped-decorator]
    def notices() -> int:
        """Send the queued policy-change notices (leased like deliveries: a task delivered
        twice sends nothing twice)."""
        report = send_notices(container(), max_batches=BATCHES_PER_TASK)
        if report.claimed:  # more may be due: keep the work moving in small tasks
            app.send_task(NOTICES)
        return report.sent

    @app.task(name=LAPSE)  # type: ignore[untyped-decorator]
    def lapse() -> int:
        """Lapse the confirmation requests past their lifetime (hourly, from beat)."""
        return lapse_expired_requests(container())

    @app.task(name=END_PASSES)  # type: ignore[untyped-decorator]
    def end_due() -> int:
        """End the permission passes past their deadline (hourly, from beat)."""
        return end_passes(container())

    return app


def enqueue_notices(settings: Settings) -> None:
    """Ask the workers to send the queued policy notices now."""
    app = make_celery(settings)
    try:
        app.send_task(NOTICES)
    finally:
        app.close()


def enqueue_dispatch(settings: Settings, campaign_id: uuid.UUID | None, parallel: int = 4) -> None:
    """Ask the workers to send a campaign (``parallel`` tasks so several workers join in)."""
    app = make_celery(settings)
    try:
        for _ in range(parallel):
            app.send_task(DISPATCH, args=[str(campaign_id) if campaign_id else None])
    finally:
        app.close()
