"""Dispatch: claim a batch, check every recipient at the gate again, send, record.

One batch goes through these steps, a *window* of messages at a time:

1. claim      lease up to ``batch_size`` due deliveries (``FOR UPDATE SKIP LOCKED``; committed)
2. fence      take the shared opt-out fence on the window's addresses (persistence/fences.py)
3. check      the gate for the whole window in one query, against committed state; refused →
              ``suppressed`` with reasons, quiet hours or a frequency cap → ``deferred``
4. compose    render each message with its compliance elements; a template that fails for
              one recipient fails that delivery only
5. in flight  mark the window ``sending`` (committed before any channel is called)
6. send       hand the messages to the channel concurrently: all at once to an adapter that
              sends batches (``send_many``: the HTTP providers, on an event loop), else by as
              many lanes as the channel has connections (its adapter's ``concurrency``), each
              sending one message after another; the dispatching thread is one of them
7. record     ``sent`` / ``failed`` / back to ``queued`` with backoff, in one statement; then
              release the fence, and turn hard bounces and provider opt-outs into suppressions

A crash between 5 and 7 leaves ``sending`` rows: the reaper makes marketing ones ``unknown``
(never re-sent) and re-queues service ones (re-sent with the same Message-ID).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol, cast

from consentry.domain.campaigns import ClaimedDelivery, Outcome
from consentry.domain.delivery import (
    MAX_ATTEMPTS,
    DeliveryError,
    DeliveryStatus,
    OutboundMessage,
    PermanentDeliveryError,
    ProviderSignal,
    SendResult,
    backoff,
)
from consentry.domain.errors import ConsentryError, KeyUnavailable
from consentry.domain.gate import Decision, Intent, Reason, Verdict, frequency_defer
from consentry.domain.model import Category, Channel, Contact, Tenant
from consentry.services.campaigns import _intent
from consentry.services.gate import intent_for
from consentry.services.ports import ChannelAdapter, UnitOfWork
from consentry.services.sending import (
    RefusalSignal,
    message_ref,
    send_all_through,
    send_through,
    suppress_for,
)

log = logging.getLogger("consentry.dispatch")
KEY_RETRY = timedelta(minutes=5)  # a window whose tenant key cannot be used waits this long


class MessageFactory(Protocol):
    """Composes the message of one delivery (services/outbound.py)."""

    def compose(
        self, uow: UnitOfWork, tenant: Tenant, delivery: ClaimedDelivery, contact: Contact
    ) -> OutboundMessage: ...


class RateLimiter(Protocol):
    def acquire(self, key: str, count: int) -> None:
        """Block until ``count`` sends under ``key`` fit the limit."""
        ...


class NoRateLimit:
    def acquire(self, key: str, count: int) -> None:
        del key, count


@dataclass(frozen=True, slots=True)
class DispatchConfig:
    batch_size: int = 500
    window: int = 32
    lease: timedelta = timedelta(seconds=120)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    refused: int = 0
    deferred: int = 0
    failed: int = 0
    retried: int = 0

    def add(self, other: BatchReport) -> None:
        for name in ("claimed", "sent", "refused", "deferred", "failed", "retried"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Dispatcher:
    """Sends due deliveries; safe to run in many processes against one database."""

    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        new_read_uow: Callable[[], UnitOfWork],
        adapters: Mapping[Channel, ChannelAdapter],
        factory: MessageFactory,
        *,
        clock: Callable[[], datetime],
        config: DispatchConfig | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self._uow = new_uow
        self._read_uow = new_read_uow
        self._adapters = adapters
        self._factory = factory
        self._clock = clock
        self.config = config or DispatchConfig()
        self._limiter = limiter or NoRateLimit()
        self._lanes = {channel: self._lane_count(adapter) for channel, adapter in adapters.items()}
        # The dispatching thread is a lane itself: the pool holds the others.
        self._pool = ThreadPoolExecutor(
            max(1, max(self._lanes.values(), default=1) - 1), thread_name_prefix="consentry-send"
        )

    def _lane_count(self, adapter: ChannelAdapter) -> int:
        """Sends of one window that run at once: more than the channel has connections would
        only wait for one (and cost a thread switch each)."""
        concurrency = getattr(adapter, "concurrency", None)
        if isinstance(concurrency, int) and concurrency > 0:
            return min(self.config.window, concurrency)
        return self.config.window

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- the loop ------------------------------------------------------------------------------

    def reap(self) -> tuple[int, int]:
        """Settle deliveries whose worker died: (unknown, re-queued). Commits."""
        with self._uow() as uow:
            found = uow.deliveries.reap(self._clock())
            uow.commit()
        if any(found):
            log.warning("reaped expired leases: %d unknown, %d re-queued", *found)
        return found

    def run_once(self, campaign_id: uuid.UUID | None = None) -> BatchReport:
        """Claim one batch and dispatch it; an empty report when nothing is due."""
        now = self._clock()
        owner = self.config.worker_id
        with self._uow() as uow:
            claimed = uow.deliveries.claim(
                owner, now, now + self.config.lease, self.config.batch_size, campaign_id
            )
            uow.commit()
        report = BatchReport(claimed=len(claimed))
        groups: dict[tuple[object, ...], list[ClaimedDelivery]] = {}
        for d in claimed:
            # One intent per window: messages of one template (free text or an approved WhatsApp
            # template decide differently) of one campaign, topic and channel.
            key = (d.tenant_id, d.campaign_id, d.topic_id, d.template_id, d.channel, d.category)
            groups.setdefault(key, []).append(d)
        for group in groups.values():
            for start in range(0, len(group), self.config.window):
                report.add(self._window(group[start : start + self.config.window]))
        if len(claimed) < self.config.batch_size:
            # Nothing more was due: a running campaign may have nothing left. (Checked only
            # then: on PostgreSQL the check looks through every pending delivery, and a full
            # claim means there may be more to send; run_until_idle ends on a short claim.)
            with self._uow() as uow:
                uow.deliveries.complete_finished(self._clock())
                uow.commit()
        return report

    def run_until_idle(
        self,
        campaign_id: uuid.UUID | None = None,
        on_batch: Callable[[BatchReport], None] | None = None,
        max_batches: int | None = None,
    ) -> BatchReport:
        total = BatchReport()
        batches = 0
        while max_batches is None or batches < max_batches:
            report = self.run_once(campaign_id)
            if report.claimed == 0:
                break
            total.add(report)
            batches += 1
            if on_batch is not None:
                on_batch(report)
        return total

    # -- one window ----------------------------------------------------------------------------

    def _window(self, window: list[ClaimedDelivery]) -> BatchReport:
        with self._read_uow() as check:  # held until the window has left: the fence lives here
            try:
                tenant = check.tenants.get(window[0].tenant_id)
                contacts = {
                    c.id: c for c in check.contacts.many(tenant.id, [d.contact_id for d in window])
                }
                channel = window[0].channel
                check.fences.shared(
                    k for c in contacts.values() if (k := check.contacts.point_key(c, channel))
                )
                now = self._clock()
                decisions = self._decide(check, tenant, window, list(contacts), now)
            except KeyUnavailable as exc:
                # One tenant's key cannot be used (not loaded, rotated away, damaged): its window
                # waits and is tried again later; the other tenants' windows go on.
                return self._postpone(window, exc)
            report, in_flight = self._prepare(check, tenant, window, contacts, decisions, now)
            if in_flight:
                self._limiter.acquire(f"{tenant.id}:{channel.value}", len(in_flight))
            results = self._send([m for _, m, _ in in_flight], self._lanes.get(channel, 1))
            signals = self._record(in_flight, results, contacts, report)
        for s in signals:  # after the fence is released: a suppression takes it exclusively
            suppress_for(self._uow, s, "dispatcher", self._clock())
        return report

    def _send(
        self, messages: list[OutboundMessage], lanes: int
    ) -> list[SendResult | DeliveryError]:
        """Each message's answer, in order: all at once from an adapter that sends batches,
        else by lanes. Every lane takes the next message until none is left, so a slow answer
        holds up one lane, not a share of the window fixed up front."""
        batch = send_all_through(self._adapters, messages)
        if batch is not None:
            return batch
        results: list[SendResult | DeliveryError | None] = [None] * len(messages)
        queue = deque(enumerate(messages))

        def lane() -> None:
            while True:
                try:
                    i, message = queue.popleft()  # atomic: the lanes share the queue
                except IndexError:
                    return
                results[i] = send_through(self._adapters, message)

        others = [self._pool.submit(lane) for _ in range(min(lanes, len(messages)) - 1)]
        lane()
        for other in others:
            other.result()
        return cast("list[SendResult | DeliveryError]", results)  # every slot is filled

    def _postpone(self, window: list[ClaimedDelivery], error: KeyUnavailable) -> BatchReport:
        """Nothing of the window was marked in flight: defer all of it by ``KEY_RETRY``."""
        log.error("window of tenant %s postponed: %s", window[0].tenant_id, error.code)
        now = self._clock()
        until = (now + KEY_RETRY, (error.code,))
        with self._uow() as uow:
            uow.deliveries.defer(self.config.worker_id, {d.id: until for d in window}, now)
            uow.commit()
        return BatchReport(deferred=len(window))

    def _decide(
        self,
        check: UnitOfWork,
        tenant: Tenant,
        window: list[ClaimedDelivery],
        contact_ids: list[uuid.UUID],
        now: datetime,
    ) -> dict[uuid.UUID, Decision]:
        """The gate for the whole window in one query, then the frequency cap."""
        intent = self._intent_of(check, tenant, window[0])
        decisions = {
            row.contact_id: row.decision
            for row in check.gate.eligibility(tenant, intent, now, contact_ids)
        }
        return self._apply_frequency_cap(check, intent, window, decisions, now)

    def _prepare(  # noqa: PLR0917  (one window's state, passed along the steps)
        self,
        check: UnitOfWork,
        tenant: Tenant,
        window: list[ClaimedDelivery],
        contacts: dict[uuid.UUID, Contact],
        decisions: dict[uuid.UUID, Decision],
        now: datetime,
    ) -> tuple[BatchReport, list[tuple[int, OutboundMessage, ClaimedDelivery]]]:
        """Settle refusals, deferrals and composition failures, and mark the rest in flight
        (committed before any channel is called)."""
        owner = self.config.worker_id
        refused: dict[int, tuple[str, ...]] = {}
        deferred: dict[int, tuple[datetime, tuple[str, ...]]] = {}
        messages: dict[int, tuple[OutboundMessage, ClaimedDelivery]] = {}
        unsent: dict[int, tuple[str, str]] = {}
        gone = Decision(Verdict.DENY, (Reason.ADDRESS_MISSING,))  # erased since it was planned
        for d in window:
            decision = decisions.get(d.contact_id, gone)
            if decision.verdict is Verdict.DENY:
                refused[d.id] = decision.reasons
            elif decision.verdict is Verdict.DEFER and decision.defer_until is not None:
                deferred[d.id] = (decision.defer_until, decision.reasons)
            else:
                try:
                    message = self._factory.compose(check, tenant, d, contacts[d.contact_id])
                except ConsentryError as exc:
                    unsent[d.id] = (exc.code, exc.message)
                else:
                    messages[d.id] = (message, d)
        batch = {
            i: (message_ref(m), decisions[d.contact_id].consent_event_id)
            for i, (m, d) in messages.items()
        }
        with self._uow() as uow:
            uow.deliveries.refuse(owner, refused, now)
            uow.deliveries.defer(owner, deferred, now)
            uow.deliveries.fail_unsent(owner, unsent, now)
            marked = uow.deliveries.mark_sending(owner, batch, now, now + self.config.lease)
            uow.commit()
        report = BatchReport(refused=len(refused), deferred=len(deferred), failed=len(unsent))
        return report, [(i, m, d) for i, (m, d) in messages.items() if i in marked]

    def _record(
        self,
        in_flight: list[tuple[int, OutboundMessage, ClaimedDelivery]],
        results: list[SendResult | DeliveryError],
        contacts: dict[uuid.UUID, Contact],
        report: BatchReport,
    ) -> list[RefusalSignal]:
        outcomes = []
        signals = []
        done = self._clock()
        for (i, _m, d), result in zip(in_flight, results, strict=True):
            outcome, signal = self._outcome(i, d, result, done)
            outcomes.append(outcome)
            address = contacts[d.contact_id].address_for(d.channel)
            if signal is not None and address and isinstance(result, DeliveryError):
                signals.append(
                    RefusalSignal(d.tenant_id, d.channel, address, signal, result.provider_code)
                )
            if outcome.status is DeliveryStatus.SENT:
                report.sent += 1
            elif outcome.status is DeliveryStatus.QUEUED:
                report.retried += 1
            else:
                report.failed += 1
        with self._uow() as uow:
            uow.deliveries.record(self.config.worker_id, outcomes)
            uow.commit()
        return signals

    @staticmethod
    def _intent_of(uow: UnitOfWork, tenant: Tenant, d: ClaimedDelivery) -> Intent:
        if d.campaign_id is not None:
            return _intent(uow, tenant, uow.campaigns.get(tenant.id, d.campaign_id))
        topic = uow.topics.get(tenant.id, d.topic_id)
        # A WhatsApp template without an approved template name is a free-form reply: it
        # needs the 24-hour window the person opened.
        free_form = (
            d.channel is Channel.WHATSAPP
            and uow.templates.get(tenant.id, d.template_id).whatsapp_template is None
        )
        return intent_for(uow, tenant, topic, d.channel, whatsapp_free_form=free_form)

    @staticmethod
    def _apply_frequency_cap(
        uow: UnitOfWork,
        intent: Intent,
        window: Sequence[ClaimedDelivery],
        decisions: dict[uuid.UUID, Decision],
        now: datetime,
    ) -> dict[uuid.UUID, Decision]:
        cap = intent.frequency_cap
        if cap is None or intent.category is not Category.MARKETING:
            return decisions
        recent = uow.deliveries.recent_sends([d.contact_id for d in window], now - cap.period)
        capped = dict(decisions)
        for contact_id, sends in recent.items():
            decision = capped.get(contact_id)
            if decision is None or decision.verdict is not Verdict.ALLOW:
                continue
            until = frequency_defer(sends, cap, now)
            if until is not None:
                capped[contact_id] = replace(
                    decision,
                    verdict=Verdict.DEFER,
                    reasons=(Reason.FREQUENCY_CAP,),
                    defer_until=until,
                )
        return capped

    @staticmethod
    def _outcome(
        delivery_id: int, d: ClaimedDelivery, result: SendResult | DeliveryError, at: datetime
    ) -> tuple[Outcome, ProviderSignal | None]:
        if isinstance(result, SendResult):
            return Outcome(delivery_id, DeliveryStatus.SENT, at, result.provider_message_id), None
        code = result.provider_code or result.code
        if isinstance(result, PermanentDeliveryError) or d.attempts + 1 >= MAX_ATTEMPTS:
            status = (
                DeliveryStatus.BOUNCED
                if result.signal is ProviderSignal.HARD_BOUNCE
                else DeliveryStatus.FAILED
            )
            return Outcome(delivery_id, status, at, None, code, result.message), result.signal
        retry_at = at + backoff(d.attempts + 1, result.retry_after)
        outcome = Outcome(
            delivery_id, DeliveryStatus.QUEUED, at, None, code, result.message, retry_at
        )
        return outcome, None
