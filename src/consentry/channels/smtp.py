"""Email through SMTP relays, with ``smtplib`` and a pool of persistent connections per relay.

A connection carries many transactions: after a completed one the next MAIL starts afresh
(RFC 5321 §3.3), after a refused one we send RSET. A pooled connection is used without a NOOP
probe; if the relay closed it while it sat idle, the first command fails (or answers 421) and the
message goes through a fresh connection instead. Relays are tried in order: one that cannot be
reached, or answers 4xx, hands the message to the next; a 5xx is the final answer for the message.

Replies (RFC 5321 codes, RFC 3463 enhanced status codes, which win when present)::

    5.1.x at RCPT/DATA (not 5.1.7/5.1.8: those are about the sender),
    or a bare 550/551/553 at RCPT          -> PermanentDeliveryError(signal=HARD_BOUNCE)
    5.2.2 mailbox full, or a bare 552 at RCPT (RFC 5321 §4.5.3.1.10)
                                           -> TransientDeliveryError (a soft bounce here)
    any other 5xx                          -> PermanentDeliveryError
    4xx, unreadable replies, connection, TLS and AUTH failures, timeouts
                                           -> TransientDeliveryError (after trying every relay)

SMTP has no delivery webhooks: bounces come back later as DSNs (RFC 3464) to the envelope
sender, which the inbound SMTP server handles.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from consentry.channels import redact
from consentry.domain.delivery import (
    DeliveryError,
    EmailMessage,
    OutboundMessage,
    PermanentDeliveryError,
    ProviderEvent,
    ProviderSignal,
    SendResult,
    TransientDeliveryError,
)
from consentry.domain.model import Channel

log = logging.getLogger("consentry.channels.smtp")

Security = Literal["none", "starttls", "tls"]
_ENHANCED = re.compile(rb"([245])\.(\d{1,3})\.(\d{1,3})\b")
_SENDER_STATUS = frozenset({7, 8})  # X.1.7 bad sender mailbox, X.1.8 bad sender system
_UNKNOWN_USER = frozenset({550, 551, 553})


@dataclass(frozen=True, slots=True)
class SmtpRelay:
    """One relay (smarthost). ``ssl_context`` defaults to ``ssl.create_default_context()``."""

    host: str
    port: int = 587
    security: Security = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    max_connections: int = 4
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    helo_name: str | None = None  # None: the host's FQDN, as smtplib looks it up

    def __post_init__(self) -> None:
        if self.security not in ("none", "starttls", "tls"):
            raise ValueError(f"unknown SMTP security {self.security!r}")
        if self.username is not None and self.security == "none":
            raise ValueError("SMTP credentials are only sent over TLS")
        if self.max_connections < 1:
            raise ValueError("a relay needs at least one connection")


def _connect(relay: SmtpRelay, context: ssl.SSLContext) -> smtplib.SMTP:
    """A connection that has said EHLO, upgraded to TLS and logged in as configured."""
    try:
        if relay.security == "tls":
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                relay.host, relay.port, relay.helo_name, timeout=relay.timeout, context=context
            )
        else:
            conn = smtplib.SMTP(relay.host, relay.port, relay.helo_name, timeout=relay.timeout)
    except (smtplib.SMTPException, OSError) as exc:
        raise TransientDeliveryError(f"cannot connect to relay {relay.host}:{relay.port}") from exc
    try:
        # Each write is a whole command group or message: nothing to gain from Nagle's
        # algorithm holding one back until the last is acknowledged.
        if conn.sock is not None:
            conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.ehlo()
        if relay.security == "starttls":
            conn.starttls(context=context)
            conn.ehlo()  # RFC 3207 §4.2: forget what was learnt before TLS
        if relay.username is not None:
            conn.login(relay.username, relay.password or "")
    except (smtplib.SMTPException, OSError) as exc:
        conn.close()
        # No provider_code: a 5xx here (535 bad credentials) is the relay's, not the message's,
        # so the next relay is still worth trying.
        reason = getattr(exc, "smtp_code", None) or type(exc).__name__
        raise TransientDeliveryError(
            f"relay {relay.host}:{relay.port} refused the session setup ({reason})"
        ) from exc
    return conn


class _Pool:
    """Connections to one relay: idle ones to reuse, at most ``max_connections`` open at once."""

    def __init__(self, relay: SmtpRelay) -> None:
        self.relay = relay
        # Built once: loading the system's CA certificates costs more than an SMTP handshake.
        self._context = relay.ssl_context or ssl.create_default_context()
        self._idle: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(relay.max_connections)
        self._closed = False

    def take(self, *, fresh: bool = False) -> tuple[smtplib.SMTP, bool]:
        """A connection, and whether it was reused from the pool."""
        if not self._slots.acquire(timeout=self.relay.timeout):
            raise TransientDeliveryError(f"every connection to relay {self.relay.host} is busy")
        with self._lock:
            if self._idle and not fresh:
                return self._idle.pop(), True  # the most recently used one: least likely stale
        try:
            return _connect(self.relay, self._context), False
        except BaseException:
            self._slots.release()
            raise

    def give_back(self, conn: smtplib.SMTP, *, reusable: bool) -> None:
        with self._lock:
            keep = reusable and not self._closed
            if keep:
                self._idle.append(conn)
        if not keep:
            conn.close()
        self._slots.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                conn.close()


def _refused(stage: str, code: int, reply: bytes) -> DeliveryError:
    """The delivery error for a refusal at MAIL, RCPT or DATA."""
    text = f"{stage} refused: {code} {redact(reply.decode('utf-8', 'replace'))}"
    status = _ENHANCED.match(reply)
    subject, detail = (int(status[2]), int(status[3])) if status else (None, None)
    if not 500 <= code < 600:  # 4xx, or a reply smtplib could not read (-1)
        return TransientDeliveryError(text, provider_code=str(code))
    if (subject, detail) == (2, 2) or (status is None and code == 552 and stage == "RCPT"):
        return TransientDeliveryError(text, provider_code=str(code))  # mailbox full: soft
    if stage != "MAIL" and (
        (subject == 1 and detail not in _SENDER_STATUS)
        or (status is None and stage == "RCPT" and code in _UNKNOWN_USER)
    ):
        return PermanentDeliveryError(
            text, provider_code=str(code), signal=ProviderSignal.HARD_BOUNCE
        )
    return PermanentDeliveryError(text, provider_code=str(code))


_UNSAFE_IN_PATH = frozenset('<>\r\n"(),;: \t')


def _command(
    conn: smtplib.SMTP, verb: str, keyword: str, address: str, options: list[str]
) -> tuple[int, bytes]:
    """MAIL FROM or RCPT TO for an address validated when it was stored. smtplib quotes the
    address by parsing it as an RFC 5322 header first, which cost a third of a send thread's
    CPU; a bare address needs only its angle brackets. Anything else takes smtplib's path."""
    if not address or any(c in _UNSAFE_IN_PATH for c in address):
        if verb == "mail":
            return conn.mail(address, options)
        return conn.rcpt(address, options)
    optionlist = ""
    if options and conn.does_esmtp:
        if any(o.lower() == "smtputf8" for o in options):
            conn.command_encoding = "utf-8"  # as smtplib does for SMTPUTF8
        optionlist = " " + " ".join(options)
    conn.putcmd(verb, f"{keyword}:<{address}>{optionlist}")
    return conn.getreply()


def _data(conn: smtplib.SMTP, data: bytes) -> tuple[int, bytes]:
    """DATA and the message, as ``smtplib.SMTP.data`` sends them. smtplib dot-stuffs (RFC 5321
    §4.5.2) with a multi-line regular expression over the whole message, a twentieth of a
    worker's CPU; a message whose every line ends in CRLF, as composed messages do, is stuffed
    with one replace. Anything else takes smtplib's path."""
    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:
        return conn.data(data)
    conn.putcmd("data")
    code, reply = conn.getreply()
    if code != 354:
        raise smtplib.SMTPDataError(code, reply)
    conn.send(_stuffed(data))
    return conn.getreply()


def _stuffed(data: bytes) -> bytes:
    """A message whose every line ends in CRLF, dot-stuffed and ended with the final dot."""
    stuffed = data.replace(b"\r\n.", b"\r\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


def _transaction(conn: smtplib.SMTP, message: EmailMessage) -> tuple[DeliveryError | None, bool]:
    """One MAIL/RCPT/DATA transaction: the refusal if any, and whether the connection is
    still usable. A 421 (the relay is closing the channel) raises SMTPServerDisconnected."""
    options: list[str] = []
    if not message.data.isascii() and conn.has_extn("8bitmime"):
        options.append("BODY=8BITMIME")
    if not (message.mail_from + message.rcpt_to).isascii():
        if not conn.has_extn("smtputf8"):
            return PermanentDeliveryError("the relay does not offer SMTPUTF8 (RFC 6531)"), True
        options.append("SMTPUTF8")
    if _can_pipeline(conn, message):
        return _pipelined(conn, message, options)
    stage, (code, reply) = "MAIL", _command(conn, "mail", "FROM", message.mail_from, options)
    if code == 250:
        stage, (code, reply) = "RCPT", _command(conn, "rcpt", "TO", message.rcpt_to, [])
    if code in (250, 251) and stage == "RCPT":
        stage = "DATA"
        try:
            code, reply = _data(conn, message.data)
        except smtplib.SMTPDataError as exc:  # the DATA command itself was refused
            code, error = exc.smtp_code, exc.smtp_error
            reply = error if isinstance(error, bytes) else error.encode()
        else:  # after the final dot the transaction is over, whatever the answer
            return (None if code == 250 else _refused(stage, code, reply)), code != 421
    if code == 421:
        raise smtplib.SMTPServerDisconnected(f"421 at {stage}")
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        return _refused(stage, code, reply), False
    return _refused(stage, code, reply), True


def _can_pipeline(conn: smtplib.SMTP, message: EmailMessage) -> bool:
    """The relay offers PIPELINING (RFC 2920), both addresses need no quoting, and every line of
    the message ends in CRLF: the commands can go in one write."""
    return (
        conn.has_extn("pipelining")
        and bool(message.mail_from)
        and bool(message.rcpt_to)
        and not any(c in _UNSAFE_IN_PATH for c in message.mail_from + message.rcpt_to)
        and message.data.count(b"\n") == message.data.count(b"\r\n") == message.data.count(b"\r")
    )


def _pipelined(
    conn: smtplib.SMTP, message: EmailMessage, options: list[str]
) -> tuple[DeliveryError | None, bool]:
    """``_transaction`` with MAIL, RCPT and DATA sent together and their three replies read
    after (RFC 2920): two round trips a message instead of four. The relay answers DATA with
    503 or 554 when no recipient was accepted, so the message goes only after a 354 that
    follows an accepted MAIL and RCPT."""
    optionlist = " " + " ".join(options) if options else ""
    if any(o.lower() == "smtputf8" for o in options):
        conn.command_encoding = "utf-8"  # as smtplib does for SMTPUTF8
    commands = (
        f"MAIL FROM:<{message.mail_from}>{optionlist}\r\nRCPT TO:<{message.rcpt_to}>\r\nDATA\r\n"
    )
    conn.send(commands.encode(conn.command_encoding))
    replies = [conn.getreply() for _ in range(3)]  # every reply is read: the stream stays in step
    (mail, mail_reply), (rcpt, rcpt_reply), (data, data_reply) = replies
    if mail == 250 and rcpt in (250, 251) and data == 354:
        conn.send(_stuffed(message.data))
        code, reply = conn.getreply()  # after the final dot the transaction is over
        return (None if code == 250 else _refused("DATA", code, reply)), code != 421
    stage, code, reply = (
        ("MAIL", mail, mail_reply)
        if mail != 250
        else ("RCPT", rcpt, rcpt_reply)
        if rcpt not in (250, 251)
        else ("DATA", data, data_reply)
    )
    if 421 in (mail, rcpt, data):
        raise smtplib.SMTPServerDisconnected(f"421 at {stage}")
    if data == 354:  # a relay that took DATA after refusing the envelope waits for a message
        return _refused(stage, code, reply), False
    try:
        conn.rset()
    except (smtplib.SMTPException, OSError):
        return _refused(stage, code, reply), False
    return _refused(stage, code, reply), True


class SmtpChannel:
    """Sends ``EmailMessage`` through the first relay that takes it; thread-safe."""

    channel: Channel = Channel.EMAIL

    def __init__(self, relays: Sequence[SmtpRelay]) -> None:
        if not relays:
            raise ValueError("the SMTP channel needs at least one relay")
        self._pools = [_Pool(relay) for relay in relays]
        # Sends worth running at once: one per connection of a relay (the dispatcher sizes its
        # lanes so); the relays after the first take over only what it refuses.
        self.concurrency = max(relay.max_connections for relay in relays)

    def send(self, message: OutboundMessage) -> SendResult:
        if not isinstance(message, EmailMessage):
            raise PermanentDeliveryError(f"the SMTP channel cannot send {message.channel}")
        failure: DeliveryError = TransientDeliveryError("no relay took the message")
        for pool in self._pools:
            try:
                refusal = _send_via(pool, message)
            except TransientDeliveryError as exc:  # unreachable, TLS or AUTH refused, dropped
                refusal = exc
            if refusal is None:
                return SendResult(provider_message_id=message.message_id)
            failure = refusal
            # A 5xx (even a transient full mailbox) is about the recipient: another relay
            # would only hear the same from the same mailbox.
            if (failure.provider_code or "").startswith("5"):
                raise failure
            log.warning(
                "relay %s:%s did not take delivery %s (%s)",
                pool.relay.host,
                pool.relay.port,
                message.delivery_id,
                failure.provider_code or type(failure.__cause__).__name__,
            )
        raise failure

    def verify_webhook(self, url: str, headers: Mapping[str, str], body: bytes) -> bool:
        """Always False: SMTP has no webhooks."""
        del url, headers, body  # the signature is ChannelAdapter's
        return False

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[ProviderEvent]:
        """Always empty: bounces arrive as DSNs (RFC 3464) at the inbound SMTP server, which
        reports them; nothing about an SMTP delivery comes in over HTTP."""
        del headers, body  # the signature is ChannelAdapter's
        return []

    def close(self) -> None:
        for pool in self._pools:
            pool.close()


def _send_via(pool: _Pool, message: EmailMessage) -> DeliveryError | None:
    """The relay's refusal of the message, if any; TransientDeliveryError when the relay
    itself failed. A pooled connection that turns out stale is replaced by a fresh one once."""
    for fresh in (False, True):
        conn, reused = pool.take(fresh=fresh)
        reusable = False
        try:
            refusal, reusable = _transaction(conn, message)
        except smtplib.SMTPServerDisconnected as exc:
            if reused and not fresh:
                continue  # the relay dropped an idle connection (idle timeout, restart)
            raise TransientDeliveryError(f"relay {pool.relay.host} closed the connection") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientDeliveryError(
                f"SMTP conversation with relay {pool.relay.host} failed ({type(exc).__name__})"
            ) from exc
        finally:
            pool.give_back(conn, reusable=reusable)
        return refusal
    raise AssertionError("unreachable")  # pragma: no cover
