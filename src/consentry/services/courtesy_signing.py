"""DKIM, and a record for bounces, for email sent outside campaigns: confirmation requests,
preference-centre links, policy notices and import confirmations.

Campaign messages are signed as they are composed (services/outbound.py). The messages sent
outside campaigns come from the same tenant sender domains (``slug@domain``), so a receiver that
enforces DMARC for such a domain expects the same signature on them; unsigned, a confirmation
request would be refused exactly where a signed campaign is delivered. ``SigningEmailChannel``
wraps the email adapter those senders use and signs each message with the key of the sender
domain its ``From`` names, when the tenant registered that domain with a DKIM key; other
messages pass unchanged.

Such a message is not a delivery, so nothing tied a bounce or a complaint about it to anyone: a
dead address kept receiving them. ``CourtesyLog`` keeps each one's Message-ID with the tenant and
the recipient's blind index before it is handed over (``SqlSignals.record_courtesy``, 30 days),
and the signal pipeline suppresses the address as it would for a campaign message
(services/signal_mail.py).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.utils import parseaddr

from consentry.domain.delivery import EmailMessage, OutboundMessage, ProviderEvent, SendResult
from consentry.domain.errors import InvalidInput
from consentry.domain.model import Channel, PointKind, point_index_value
from consentry.services.addresses import normalize_email
from consentry.services.clock import utcnow
from consentry.services.compose.dkim import DkimSigner
from consentry.services.ports import ChannelAdapter, UnitOfWork

KEY_LIFETIME_SECONDS = 60.0  # a new or removed DKIM key is used at most this long after
COURTESY_KEPT = timedelta(days=30)  # bounces come within days; complaints within weeks
PRUNE_EVERY = timedelta(minutes=1)
_BARE_LF = re.compile(rb"(?<!\r)\n")


def from_domain(data: bytes) -> str | None:
    """The domain of the message's ``From`` address, lower-cased."""
    head = data.partition(b"\r\n\r\n")[0] if b"\r\n\r\n" in data else data.partition(b"\n\n")[0]
    found = BytesHeaderParser().parsebytes(head + b"\n\n").get("From")
    if found is None:
        return None
    _name, address = parseaddr(str(found))
    domain = address.rpartition("@")[2].strip().lower()
    return domain or None


class DomainSigners:
    """The DKIM signer of each tenant's sender domain, read from the database and kept for
    ``lifetime`` seconds."""

    def __init__(
        self,
        new_uow: Callable[[], UnitOfWork],
        lifetime: float = KEY_LIFETIME_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._new_uow = new_uow
        self._lifetime = lifetime
        self._clock = clock
        self._lock = threading.Lock()
        self._known: dict[tuple[uuid.UUID, str], tuple[float, DkimSigner | None]] = {}

    def signer(self, tenant_id: uuid.UUID, domain: str) -> DkimSigner | None:
        key = (tenant_id, domain)
        now = self._clock()
        with self._lock:
            cached = self._known.get(key)
        if cached is not None and now - cached[0] < self._lifetime:
            return cached[1]
        with self._new_uow() as uow:
            registered = uow.sender_domains.get(tenant_id, domain)
        signer = None
        if registered is not None:
            sender, pem = registered
            if pem is not None and sender.dkim_selector:
                signer = DkimSigner(domain, sender.dkim_selector, pem.encode())
        with self._lock:
            self._known[key] = (now, signer)
        return signer

    def sign(self, message: EmailMessage) -> EmailMessage:
        domain = from_domain(message.data)
        signer = self.signer(message.tenant_id, domain) if domain else None
        if signer is None:
            return message
        data = _BARE_LF.sub(b"\r\n", message.data)  # DKIM hashes what SMTP carries: CRLF lines
        return replace(message, data=signer.sign(data))


class CourtesyLog:
    """Keeps each email sent outside campaigns by its Message-ID, for its bounces, and forgets
    those older than ``COURTESY_KEPT`` at most once every ``PRUNE_EVERY``."""

    def __init__(
        self, new_uow: Callable[[], UnitOfWork], clock: Callable[[], datetime] = utcnow
    ) -> None:
        self._new_uow = new_uow
        self._clock = clock
        self._lock = threading.Lock()
        self._pruned: datetime | None = None

    def record(self, message: EmailMessage) -> None:
        try:
            address = normalize_email(message.rcpt_to)
        except InvalidInput:
            return  # the relay will refuse it; nothing can bounce
        now = self._clock()
        with self._lock:
            prune = self._pruned is None or now - self._pruned >= PRUNE_EVERY
            if prune:
                self._pruned = now
        with self._new_uow() as uow:
            key = uow.keys.blind_index(PointKind.EMAIL, point_index_value(PointKind.EMAIL, address))
            uow.signals.record_courtesy(message.message_id.strip("<>"), message.tenant_id, key, now)
            if prune:
                uow.signals.forget_courtesy(now - COURTESY_KEPT)
            uow.commit()


class SigningEmailChannel:
    """An email channel adapter that DKIM-signs each message and, with a ``CourtesyLog``,
    records it before the wrapped one sends it."""

    channel = Channel.EMAIL

    def __init__(
        self, inner: ChannelAdapter, signers: DomainSigners, log: CourtesyLog | None = None
    ) -> None:
        self._inner = inner
        self._signers = signers
        self._log = log

    def send(self, message: OutboundMessage) -> SendResult:
        if isinstance(message, EmailMessage):
            message = self._signers.sign(message)
            if self._log is not None:
                self._log.record(message)
        return self._inner.send(message)

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        return self._inner.verify_webhook(url, headers, body)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        return self._inner.parse_webhook(headers, body)

    def close(self) -> None:
        self._inner.close()


def signing_email(
    adapters: dict[Channel, ChannelAdapter],
    signers: DomainSigners,
    log: CourtesyLog | None = None,
) -> dict[Channel, ChannelAdapter]:
    """``adapters`` with the email one wrapped in ``SigningEmailChannel``."""
    wrapped = dict(adapters)
    if Channel.EMAIL in wrapped:
        wrapped[Channel.EMAIL] = SigningEmailChannel(wrapped[Channel.EMAIL], signers, log)
    return wrapped
