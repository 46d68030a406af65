"""What every sender outside the web process shares (the dispatcher of campaigns and messages,
and the sender of policy notices): handing one message to its channel without losing the
batch to an adapter's bug, the reference a message is recorded under, and the suppression a
provider's refusal becomes."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from consentry.domain.delivery import (
    DeliveryError,
    EmailMessage,
    OutboundMessage,
    PermanentDeliveryError,
    ProviderSignal,
    SendResult,
)
from consentry.domain.errors import ConsentryError
from consentry.domain.model import Channel
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.services.ports import ChannelAdapter, UnitOfWork
from consentry.services.suppressions import add_suppression

log = logging.getLogger("consentry.sending")


@dataclass(frozen=True, slots=True)
class RefusalSignal:
    """A provider's answer that binds later messages too (a hard bounce, an opt-out)."""

    tenant_id: uuid.UUID
    channel: Channel
    address: str
    signal: ProviderSignal
    code: str | None


def message_ref(message: OutboundMessage) -> str:
    """The reference a sent message is recorded under: its Message-ID, else its idempotency
    key (what the provider echoes back in reports)."""
    if isinstance(message, EmailMessage):
        return message.message_id
    return message.idempotency_key


def send_through(
    adapters: Mapping[Channel, ChannelAdapter], message: OutboundMessage
) -> SendResult | DeliveryError:
    """The channel's answer, an error included; never raises."""
    try:
        return adapters[message.channel].send(message)
    except DeliveryError as exc:
        return exc
    except Exception as exc:  # an adapter bug must not lose the batch's outcomes
        log.exception("channel %s raised outside its contract", message.channel)
        return PermanentDeliveryError(f"channel error: {type(exc).__name__}")


def send_all_through(
    adapters: Mapping[Channel, ChannelAdapter], messages: Sequence[OutboundMessage]
) -> list[SendResult | DeliveryError] | None:
    """Each message's answer, in order, from an adapter that sends a batch at once (its
    ``send_many``: the HTTP providers', all in flight together on one event loop); None when
    the channel's adapter sends one message at a time. Never raises."""
    if not messages:
        return []
    channel = messages[0].channel
    send_many = getattr(adapters[channel], "send_many", None)
    if send_many is None or any(m.channel is not channel for m in messages):
        return None
    try:
        results = list(send_many(messages))
    except Exception:  # an adapter bug must not lose the batch's outcomes
        log.exception("channel %s raised outside its contract", channel)
        return [PermanentDeliveryError("channel error") for _ in messages]
    if len(results) != len(messages):  # pragma: no cover  (the adapters' contract)
        log.error("channel %s answered %d of %d messages", channel, len(results), len(messages))
        return [PermanentDeliveryError("channel error") for _ in messages]
    return results


def suppress_for(
    new_uow: Callable[[], UnitOfWork], s: RefusalSignal, actor: str, now: datetime
) -> None:
    """Record what a provider's refusal means for every later message (commits)."""
    if s.signal is ProviderSignal.HARD_BOUNCE:
        reason, scope = SuppressionReason.HARD_BOUNCE, SuppressionScope.ALL
    elif s.channel is Channel.WHATSAPP:
        # WhatsApp 131050: the person stopped marketing messages from this business.
        reason, scope = SuppressionReason.PROVIDER, SuppressionScope.MARKETING
    else:
        # Twilio 21610: the number replied STOP; the carrier blocks everything from us.
        reason, scope = SuppressionReason.PROVIDER, SuppressionScope.ALL
    try:
        add_suppression(
            new_uow(),
            s.tenant_id,
            address=s.address,
            channels=[s.channel],
            reason=reason,
            scope=scope,
            source=f"provider:{s.code or s.signal.value}",
            actor=actor,
            now=now,
        )
    except ConsentryError:
        log.exception("could not record a %s signal", s.signal.value)
