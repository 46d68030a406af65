"""Confirmation requests for an import into a topic that requires confirmed opt-in.

The import records each consent as ``requested`` (pending); once it has committed, every pending
contact point it recorded gets the one message a pending address may receive: the confirmation
request of confirmations.py (a link by email, "reply YES" by SMS). They go out batch by batch,
each batch in a read-only transaction of its own. Like a campaign's dispatch, that transaction
takes the shared opt-out fence on the batch's addresses before the rule is checked and keeps it
until the batch's messages have been handed to the channel: an opt-out either commits before the
check (which then refuses the message) or waits until the message has left (persistence/fences.py).
The rule of ``confirmation_refusal`` applies to each (still pending and within its lifetime,
tenant able to send, no all-scope suppression); those it refuses are counted, not sent.

Sending again (``consentry consent send-confirmations --import``) sends to every point still
pending, including those asked before (it is meant for after a failure, not to be repeated
within the hour): people who confirmed meanwhile get nothing more.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.delivery import DeliveryError, OutboundMessage
from consentry.domain.imports import ImportStatus
from consentry.services.clock import utcnow
from consentry.services.compose.confirmation import ConfirmationTokens
from consentry.services.confirmations import ConfirmationConfig, confirmation_message
from consentry.services.ports import UnitOfWork
from consentry.services.tenants_ref import TenantRef, find_tenant

log = logging.getLogger(__name__)
BATCH = 200  # addresses whose opt-outs wait (at most) for one batch's sending
Send = Callable[[OutboundMessage], None]
Progress = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class ConfirmationsSent:
    sent: int = 0
    refused: int = 0  # the confirmation rule refused them (no longer pending, suppressed ...)
    failed: int = 0  # the channel did not take them; sending again retries them


def send_import_confirmations(  # noqa: PLR0917  (a use case with its collaborators)
    new_uow: Callable[[], UnitOfWork],
    tokens: ConfirmationTokens,
    config: ConfirmationConfig,
    send: Send,
    tenant_ref: TenantRef,
    import_id: uuid.UUID,
    *,
    now: datetime | None = None,
    progress: Progress | None = None,
    new_read_uow: Callable[[], UnitOfWork] | None = None,
) -> ConfirmationsSent:
    """Send the confirmation requests of a completed import's pending consents; adds the
    number sent to the import's counts after each batch (commits that alone). Nothing for an
    import whose topic needs no confirmation, or that did not complete. Batches are checked and
    sent inside ``new_read_uow`` transactions (``new_uow`` when not given): on SQLite a writing
    one would hold the database's write lock while the messages leave."""
    now = now or utcnow()
    read_uow = new_read_uow or new_uow
    with new_uow() as uow:
        tenant = find_tenant(uow, tenant_ref)
        record = uow.imports.get(tenant.id, import_id)
        topic = uow.topics.get(tenant.id, record.topic_id)
    if not record.confirmation_required or record.status is not ImportStatus.COMPLETED:
        return ConfirmationsSent()
    sent = refused = failed = 0
    after: uuid.UUID | None = None
    while True:
        went = 0
        with read_uow() as uow:  # held until the batch has left: the fence lives here
            first = uow.imports.pending_requests(record, after, BATCH)
            if not first:
                break
            uow.fences.shared(s.point_key for s in first)
            # Read again behind the fence: a suspension, a withdrawal or a confirmation that
            # committed before it counts. Only the fenced addresses go in this batch.
            tenant = uow.tenants.get(tenant.id)
            fenced = {s.contact_id for s in first}
            batch = [
                s
                for s in uow.imports.pending_requests(record, after, BATCH)
                if s.contact_id in fenced
            ]
            refused += len(first) - len(batch)  # no longer pending
            found = {c.id: c for c in uow.contacts.many(tenant.id, [s.contact_id for s in batch])}
            messages = [
                confirmation_message(
                    uow, tokens, config, tenant, found[s.contact_id], topic, s, now
                )
                if s.contact_id in found
                else None
                for s in batch
            ]
            for message in messages:
                if message is None:
                    refused += 1
                    continue
                try:
                    send(message)
                except DeliveryError as exc:
                    log.warning("import confirmation not sent", extra={"code": exc.code})
                    failed += 1
                    continue
                went += 1
        with new_uow() as uow:  # counted batch by batch: the API shows them as they go
            uow.imports.add_confirmations_sent(record.id, went)
            uow.commit()
        sent += went
        after = first[-1].contact_id
        if progress is not None:
            progress(sent + refused + failed)
    return ConfirmationsSent(sent, refused, failed)
