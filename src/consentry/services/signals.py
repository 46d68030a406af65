"""One pipeline for every signal in: verify → de-duplicate → parse → apply → keep the raw payload.

Verification and parsing happen at the edge (the webhook routes and the inbound SMTP server hold
the secrets and the adapters); ``ingest`` takes what they parsed, with the raw payload, and in one
transaction:

1. records the payload under its (source, event id): a replay finds the row already there (a
   unique constraint, not a check-then-insert) and applies nothing;
2. applies each signal: suppressions (taking the opt-out fence first, so that no message to the
   address leaves after the commit), delivery states, complaint cases, soft-bounce streaks,
   tenant alerts, the WhatsApp service window;
3. settles the event with what was done, in words without personal data.

Whom a report is about is decided conservatively. A bounce or complaint acts only when it can be
tied to a message consentry sent (its Message-ID, or the VERP return path that carries it); an
unattributable report is kept as ``unattributed`` and changes nothing, so a forged report cannot
suppress arbitrary addresses. Keywords sent to the platform's shared numbers apply platform-wide,
as carriers apply STOP to the sending number whoever the sender was.

The applying is split by kind: signal_phone.py (keywords, click-to-chat, WhatsApp), signal_mail.py
(bounces, complaints, delivery reports), both on signal_base.py (the event's bookkeeping and its
suppressions); settings and results are in signal_policy.py.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import datetime

from consentry.domain.delivery import ProviderEvent
from consentry.domain.signals import (
    Block,
    Bounce,
    ButtonOptOut,
    ChatOptIn,
    Complaint,
    InboundMessage,
    Keyword,
    MailtoUnsubscribe,
    ParsedInput,
    Signal,
    SignalSource,
    Unrecognised,
)
from consentry.services.clock import utcnow
from consentry.services.ports import UnitOfWork
from consentry.services.signal_mail import MailSignals
from consentry.services.signal_phone import PhoneSignals
from consentry.services.signal_policy import (
    IngestResult,
    KeywordReplies,
    SignalPolicy,
    message_id_from,
    message_id_from_verp,
)

log = logging.getLogger(__name__)


def ingest(
    uow: UnitOfWork,
    parsed: ParsedInput,
    payload: bytes,
    content_type: str,
    *,
    policy: SignalPolicy,
    now: datetime | None = None,
) -> IngestResult:
    """Record and apply one authentic inbound payload, once. Commits."""
    return ingest_many(uow, [(parsed, payload)], content_type, policy=policy, now=now)[0]


def ingest_many(
    uow: UnitOfWork,
    items: Sequence[tuple[ParsedInput, bytes]],
    content_type: str,
    *,
    policy: SignalPolicy,
    now: datetime | None = None,
) -> list[IngestResult]:
    """Record and apply the inputs of one delivery from a provider (a batch of events, each
    with its own payload) in one transaction: all of them or, on an error, none, so that the
    provider's retry finds nothing half-applied. Each is still recorded, and de-duplicated,
    under its own event id. Commits."""
    now = now or utcnow()
    with uow:
        results = [_record_and_apply(uow, parsed, payload, content_type, policy, now)
                   for parsed, payload in items]  # fmt: skip
        uow.commit()
    for result, (parsed, _) in zip(results, items, strict=True):
        if not result.duplicate:
            facts = {"inbound_id": result.inbound_id, "source": parsed.source.value}
            log.info("signal", extra=facts | {"status": result.status})
    return results


def _record_and_apply(  # noqa: PLR0917  (the pipeline's own helper)
    uow: UnitOfWork,
    parsed: ParsedInput,
    payload: bytes,
    content_type: str,
    policy: SignalPolicy,
    now: datetime,
) -> IngestResult:
    inbound_id = uow.signals.record(parsed.source, parsed.event_id, content_type, payload, now)
    if inbound_id is None:
        return IngestResult(None, duplicate=True, status="duplicate")
    applier = _Applier(uow, inbound_id, parsed.source, policy, parsed.received_at or now)
    applier.message_id = parsed.event_id
    for signal in parsed.signals:
        applier.apply(signal)
    result = applier.result()
    uow.signals.settle(
        inbound_id,
        status=result.status,
        tenant_id=applier.tenant_id(),
        kinds=",".join(sorted({type(s).__name__ for s in parsed.signals})),
        outcome="; ".join(result.applied + result.notes) or "nothing to apply",
    )
    uow.signals.link_points(inbound_id, applier.points)
    return result


def ingest_provider_events(
    uow: UnitOfWork,
    source: SignalSource,
    events: Sequence[ProviderEvent],
    payload: bytes,
    *,
    content_type: str,
    now: datetime | None = None,
) -> list[IngestResult]:
    """Delivery reports from a provider webhook: each one recorded under its own event id (a
    Twilio callback carries one, a WhatsApp webhook may carry several) and applied once, all
    in one transaction."""
    now = now or utcnow()
    results = []
    with uow:
        for event in events:
            inbound_id = uow.signals.record(source, event.event_id, content_type, payload, now)
            if inbound_id is None:
                results.append(IngestResult(None, duplicate=True, status="duplicate"))
                continue
            applier = _Applier(uow, inbound_id, source, SignalPolicy(), event.occurred_at)
            applier.report(event)
            result = applier.result()
            uow.signals.settle(
                inbound_id,
                status=result.status,
                tenant_id=applier.tenant_id(),
                kinds="ProviderEvent",
                outcome="; ".join(result.applied + result.notes) or "nothing to apply",
            )
            uow.signals.link_points(inbound_id, applier.points)
            results.append(result)
        uow.commit()
    return results


def keep_rejected(
    uow: UnitOfWork,
    source: SignalSource,
    payload: bytes,
    content_type: str,
    *,
    why: str,
    now: datetime | None = None,
) -> int | None:
    """Keep an authentic payload that could not be parsed, for inspection; nothing is applied.
    Its event id is the payload's SHA-256, so a resent copy is kept once."""
    now = now or utcnow()
    with uow:
        event_id = "sha256:" + hashlib.sha256(payload).hexdigest()
        inbound_id = uow.signals.record(source, event_id, content_type, payload, now)
        if inbound_id is not None:
            uow.signals.settle(
                inbound_id, status="rejected", tenant_id=None, kinds="", outcome=why[:500]
            )
        uow.commit()
    return inbound_id


class _Applier(PhoneSignals, MailSignals):
    """Applies the signals of one inbound event inside the caller's transaction."""

    def apply(self, signal: Signal) -> None:
        if isinstance(signal, Keyword):
            self.keyword(signal)
        elif isinstance(signal, ChatOptIn):
            self.chat_opt_in(signal)
        elif isinstance(signal, InboundMessage):
            self.inbound_message(signal)
        elif isinstance(signal, ButtonOptOut):
            self.button(signal)
        elif isinstance(signal, Block):
            self.block(signal)
        elif isinstance(signal, Bounce):
            self.bounce(signal)
        elif isinstance(signal, Complaint):
            self.complaint(signal)
        elif isinstance(signal, MailtoUnsubscribe):
            self.mailto.append(signal.token)
        elif isinstance(signal, Unrecognised):
            pass  # kept for inspection with its payload; nothing to apply


__all__ = [
    "IngestResult",
    "KeywordReplies",
    "SignalPolicy",
    "ingest",
    "ingest_many",
    "ingest_provider_events",
    "keep_rejected",
    "message_id_from",
    "message_id_from_verp",
]
