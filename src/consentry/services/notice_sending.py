"""Sending policy-change notices: claim a batch, check every recipient again, send, record.

One batch goes through these steps, notice by notice:

1. claim      lease up to ``batch_size`` queued recipients (``FOR UPDATE SKIP LOCKED``; committed)
2. fence      take the shared opt-out fence on their addresses (persistence/fences.py), held
              until the messages have left: a suppression committing meanwhile waits, or is seen
3. check      ``notice_refusal`` against committed state: tenant status, all-scope suppressions,
              the address still the one planned; refused -> ``refused`` with the reason
4. in flight  mark the rest ``sending`` (committed before any channel is called)
5. send       hand the messages to the channel
6. record     ``sent`` / ``failed`` / ``queued`` again with backoff; then turn hard bounces and
              provider opt-outs into suppressions, as the dispatcher does

Notices are not deliveries of a campaign: they are about no topic, and the gate's consent rule
(which a marketing opt-out can fail) does not apply to a message about the relationship itself.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

from consentry.domain.delivery import (
    MAX_ATTEMPTS,
    DeliveryError,
    OutboundMessage,
    PermanentDeliveryError,
    SendResult,
    backoff,
)
from consentry.domain.errors import ConsentryError
from consentry.domain.gate import SuppressionFact
from consentry.domain.model import Channel, Contact
from consentry.domain.notices import NoticeRecipient, RecipientStatus, notice_refusal
from consentry.services.compose.notice import (
    NoticeClaims,
    NoticeContent,
    NoticeTokens,
    compose_notice,
)
from consentry.services.dispatch import NoRateLimit, RateLimiter
from consentry.services.ports import ChannelAdapter, UnitOfWork
from consentry.services.sending import (
    RefusalSignal,
    message_ref,
    send_through,
    suppress_for,
)

log = logging.getLogger("consentry.notices")
Outcome = tuple[RecipientStatus, str | None, datetime | None]


@dataclass(frozen=True, slots=True)
class NoticeSendConfig:
    public_base_url: str  # the /d/ and /n/ pages live here
    sms_sender: str
    batch_size: int = 200
    window: int = 8  # messages handed to the channel at once
    lease: timedelta = timedelta(seconds=120)
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")


@dataclass
class NoticeBatch:
    claimed: int = 0
    sent: int = 0
    refused: int = 0
    failed: int = 0
    retried: int = 0

    def add(self, other: NoticeBatch) -> None:
        for name in ("claimed", "sent", "refused", "failed", "retried"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class NoticeSender:
    """Sends queued notices; safe to run in many processes against one database."""

    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        new_read_uow: Callable[[], UnitOfWork],
        adapters: Mapping[Channel, ChannelAdapter],
        tokens: NoticeTokens,
        config: NoticeSendConfig,
        *,
        clock: Callable[[], datetime],
        limiter: RateLimiter | None = None,
    ) -> None:
        self._uow = new_uow
        self._read_uow = new_read_uow
        self._adapters = adapters
        self._tokens = tokens
        self.config = config
        self._clock = clock
        self._limiter = limiter or NoRateLimit()
        self._pool = ThreadPoolExecutor(config.window, thread_name_prefix="consentry-notice")

    def close(self) -> None:
        """Stop the sending threads and close the channels (built for this sender)."""
        self._pool.shutdown(wait=True)
        for adapter in self._adapters.values():
            adapter.close()

    def reap(self) -> int:
        """Recipients left in flight by a dead sender go back to the queue. Commits."""
        with self._uow() as uow:
            found = uow.notices.reap(self._clock())
            uow.commit()
        if found:
            log.warning("re-queued %d notice recipient(s) left in flight", found)
        return found

    def run_once(self, notice_id: uuid.UUID | None = None) -> NoticeBatch:
        """Claim one batch and send it; an empty report when nothing is due."""
        now = self._clock()
        with self._uow() as uow:
            claimed = uow.notices.claim(
                self.config.worker_id, now, now + self.config.lease, self.config.batch_size,
                notice_id,
            )  # fmt: skip
            uow.commit()
        report = NoticeBatch(claimed=len(claimed))
        groups: dict[uuid.UUID, list[NoticeRecipient]] = {}
        for r in claimed:
            groups.setdefault(r.notice_id, []).append(r)
        for group in groups.values():
            try:
                report.add(self._group(group))
            except ConsentryError as exc:
                # One tenant's notice cannot be sent now (its data key cannot be used, ...): its
                # recipients stay queued under the lease and are tried again when it runs out;
                # the other notices go on.
                log.warning("notice %s postponed: %s", group[0].notice_id, exc.code)
        with self._uow() as uow:
            uow.notices.finish_done(self._clock())
            uow.commit()
        return report

    def run_until_idle(
        self,
        notice_id: uuid.UUID | None = None,
        on_batch: Callable[[NoticeBatch], None] | None = None,
        max_batches: int | None = None,
    ) -> NoticeBatch:
        total = NoticeBatch()
        batches = 0
        while max_batches is None or batches < max_batches:
            report = self.run_once(notice_id)
            if report.claimed == 0:
                break
            total.add(report)
            batches += 1
            if on_batch is not None:
                on_batch(report)
        return total

    # -- one notice's recipients of a batch ----------------------------------------------------

    def _group(self, group: list[NoticeRecipient]) -> NoticeBatch:
        tenant_id, notice_id = group[0].tenant_id, group[0].notice_id
        owner = self.config.worker_id
        with self._read_uow() as check:  # held until the messages have left: the fence lives here
            content = self._content(check, tenant_id, notice_id)
            channel = content.notice.channel
            contacts = {
                c.id: c for c in check.contacts.many(tenant_id, [r.contact_id for r in group])
            }
            check.fences.shared(r.point_key for r in group if r.point_key is not None)
            now = self._clock()
            settled: dict[uuid.UUID, Outcome] = {}
            messages: dict[uuid.UUID, OutboundMessage] = {}
            for r in group:
                try:
                    outcome, message = self._prepare(check, content, r, contacts, now)
                except ConsentryError as exc:  # one recipient's message could not be made
                    outcome, message = (RecipientStatus.FAILED, exc.code, None), None
                if message is None:
                    settled[r.contact_id] = outcome
                else:
                    messages[r.contact_id] = message
            with self._uow() as uow:
                uow.notices.settle(owner, notice_id, settled, now)
                uow.notices.mark_sending(
                    owner, notice_id, {c: message_ref(m) for c, m in messages.items()}, now,
                    now + self.config.lease,
                )  # fmt: skip
                uow.commit()
            if messages:
                self._limiter.acquire(f"{tenant_id}:{channel.value}", len(messages))
            results = list(self._pool.map(partial(send_through, self._adapters), messages.values()))
        report = NoticeBatch(
            refused=sum(1 for s, _r, _t in settled.values() if s is RecipientStatus.REFUSED),
            failed=sum(1 for s, _r, _t in settled.values() if s is RecipientStatus.FAILED),
        )
        attempts = {r.contact_id: r.attempts for r in group}
        outcomes: dict[uuid.UUID, Outcome] = {}
        signals = []
        done = self._clock()
        for contact_id, result in zip(messages, results, strict=True):
            outcome = self._outcome(result, attempts[contact_id], done)
            outcomes[contact_id] = outcome
            status = outcome[0]
            report.sent += status is RecipientStatus.SENT
            report.failed += status is RecipientStatus.FAILED
            report.retried += status is RecipientStatus.QUEUED
            address = contacts[contact_id].address_for(channel)
            if isinstance(result, DeliveryError) and result.signal is not None and address:
                signals.append(
                    RefusalSignal(tenant_id, channel, address, result.signal, result.provider_code)
                )
        with self._uow() as uow:
            uow.notices.settle(owner, notice_id, outcomes, done)
            uow.commit()
        for s in signals:  # after the fence is released: a suppression takes it exclusively
            suppress_for(self._uow, s, "notice-sender", self._clock())
        return report

    def _content(
        self, uow: UnitOfWork, tenant_id: uuid.UUID, notice_id: uuid.UUID
    ) -> NoticeContent:
        tenant = uow.tenants.get(tenant_id)
        notice = uow.notices.get(tenant_id, notice_id)
        document = uow.policies.get(tenant_id, notice.document_id)
        base = self.config.public_base_url.rstrip("/")
        domains = uow.sender_domains.list(tenant_id)
        domain = domains[0].domain if domains else (urlsplit(base).hostname or "local")
        return NoticeContent(
            tenant=tenant,
            document=document,
            notice=notice,
            document_url=f"{base}/d/{tenant.slug}/{document.id}",
            sender_domain=domain,
            sms_sender=self.config.sms_sender,
        )

    def _prepare(
        self,
        uow: UnitOfWork,
        content: NoticeContent,
        r: NoticeRecipient,
        contacts: dict[uuid.UUID, Contact],
        now: datetime,
    ) -> tuple[Outcome, OutboundMessage | None]:
        """Refused with the reason, or the message to send."""
        channel = content.notice.channel
        contact = contacts.get(r.contact_id)
        facts: tuple[SuppressionFact, ...] = ()
        if r.point_key is not None:
            found = uow.suppressions.active_for(r.tenant_id, r.point_key, channel)
            facts = tuple(SuppressionFact(s.reason, s.scope, s.tenant_id is None) for s in found)
        address = contact.address_for(channel) if contact else None
        current = uow.contacts.point_key(contact, channel) if contact else None
        reason = notice_refusal(
            content.tenant.status,
            facts,
            address_present=address is not None
            and r.point_key is not None
            and current == r.point_key,
        )
        if reason is not None or address is None or r.point_key is None:
            return (RecipientStatus.REFUSED, reason, None), None
        accept_url = None
        if content.notice.ask_acceptance:
            claims = NoticeClaims(r.tenant_id, r.notice_id, r.contact_id, r.point_key, now)
            base = self.config.public_base_url.rstrip("/")
            accept_url = f"{base}/n/{self._tokens.mint(claims)}"
        message = compose_notice(content, r.contact_id, address, accept_url, now)
        return (RecipientStatus.SENDING, None, None), message

    @staticmethod
    def _outcome(result: SendResult | DeliveryError, attempts: int, at: datetime) -> Outcome:
        if isinstance(result, SendResult):
            return RecipientStatus.SENT, None, None
        code = (result.provider_code or result.code)[:64]
        if isinstance(result, PermanentDeliveryError) or attempts + 1 >= MAX_ATTEMPTS:
            return RecipientStatus.FAILED, code, None
        return RecipientStatus.QUEUED, code, at + backoff(attempts + 1, result.retry_after)
