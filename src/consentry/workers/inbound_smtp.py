"""The inbound SMTP server (``consentry inbound-smtp``): bounces, complaints, mailto unsubscribes.

Receiving MTAs send delivery status notifications (RFC 3464) to each message's VERP return path
(``bounces+<id>@<sender domain>``), feedback loops send ARF reports (RFC 5965) to the abuse
address registered with them, and mail clients send the ``List-Unsubscribe`` mailto message to
``unsubscribe+<token>@<sender domain>``. Point those domains' MX (or a relay's transport) here.

Every accepted message goes through the one signal pipeline (services/signals.py): parsed by
``channels/inbound_mail.py``, recorded once under its Message-ID, applied, its raw bytes kept.
Mail that is not a message at all is kept as ``rejected`` and refused with a 5xx; recipients
outside the handled mailboxes are refused at RCPT, so the server is no open relay.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from consentry.bootstrap import Container
from consentry.channels.inbound_mail import parse_inbound_mail
from consentry.domain.errors import InvalidInput
from consentry.domain.signals import MailtoUnsubscribe, SignalSource
from consentry.services.compose.tokens import InvalidToken
from consentry.services.optouts import unsubscribe_by_mail
from consentry.services.signals import ingest, keep_rejected

log = logging.getLogger(__name__)

HANDLED = ("bounces", "unsubscribe", "abuse", "fbl", "postmaster")


class InboundHandler:
    """aiosmtpd handler: accepts mail for the handled mailboxes and applies what it says."""

    def __init__(self, container: Container) -> None:
        self.container = container
        mailbox = container.settings.unsubscribe_mailbox or "unsubscribe"
        self.mailbox = mailbox.split("@", 1)[0]
        local = "|".join(re.escape(m) for m in {*HANDLED, self.mailbox})
        self._accepts = re.compile(rf"^(?:{local})(?:\+[^@]*)?@[^@]+$", re.IGNORECASE)

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        del server, session, rcpt_options
        if not self._accepts.match(address):
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        del server, session
        raw = envelope.original_content or b""
        if isinstance(envelope.content, bytes) and not raw:
            raw = envelope.content
        return await asyncio.to_thread(self.receive, bytes(raw), list(envelope.rcpt_tos))

    def receive(self, raw: bytes, rcpt_tos: list[str]) -> str:
        """Apply one received message; the SMTP reply to give. Also the synchronous entry for
        mail handed over by other means (a pipe from the local MTA)."""
        c = self.container
        try:
            parsed = parse_inbound_mail(raw, rcpt_tos, self.mailbox)
        except InvalidInput as exc:
            keep_rejected(c.uow(), SignalSource.INBOUND_SMTP, raw, "message/rfc822", why=str(exc))
            return f"554 5.6.0 {exc}"
        try:
            # The unsubscribe first (it is idempotent): if it fails, nothing is recorded yet and
            # the sender's retry applies it; recorded first, a retry would be a mere duplicate.
            notes = [self._unsubscribe(signal.token) for signal in parsed.signals
                     if isinstance(signal, MailtoUnsubscribe)]  # fmt: skip
            ingest(c.uow(), parsed, raw, "message/rfc822", policy=c.signal_policy())
        except Exception:
            log.exception("inbound mail could not be applied")
            return "451 4.3.0 Try again later"  # the sender retries; nothing was lost
        if notes:
            log.info("mailto unsubscribe", extra={"outcomes": notes})
        return "250 2.0.0 Received"

    def _unsubscribe(self, token: str) -> str:
        c = self.container
        try:
            unsubscribe_by_mail(c.uow(), c.unsubscribe_tokens(), token)
        except InvalidToken:
            return "token invalid"  # forged, expired or its contact gone: nothing to apply
        return "applied"


def make_controller(container: Container, host: str | None = None, port: int | None = None) -> Any:
    """An aiosmtpd controller for the inbound server (``start()`` / ``stop()``)."""
    s = container.settings
    return Controller(
        InboundHandler(container),
        hostname=host or s.inbound_smtp_host,
        port=port if port is not None else s.inbound_smtp_port,
        data_size_limit=s.inbound_max_bytes,
        server_hostname="consentry-inbound",
    )
