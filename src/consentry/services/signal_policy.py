"""The inbound pipeline's settings, results and shared helpers (services/signals.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from consentry.domain.keywords import KeywordLists
from consentry.domain.model import Channel

KEYWORD_SOURCE = "keyword"  # suppressions a START may lift carry this source prefix
# Keywords answered on their own channel: SMS in the webhook's TwiML, WhatsApp by the Cloud API
# inside the service window the person's message has just opened.
REPLYING = frozenset({Channel.SMS, Channel.WHATSAPP})
_MESSAGE_ID = re.compile(r"<?\s*([^<>\s@]+@[^<>\s]+)\s*>?")
_VERP = re.compile(r"^[^+@]+\+(?P<left>[^@]+)@(?P<domain>.+)$")
EMAILISH = re.compile(r"\S+@\S+")


class KeywordReplies(Protocol):
    """The texts answered to SMS keywords (domain/keywords.py renders them), in the language
    whose keyword list matched (None: the default language)."""

    def opt_out(self, brand: str, language: str | None = None) -> str: ...
    def opt_in(self, brand: str, language: str | None = None) -> str: ...
    def help(self, brand: str, language: str | None = None) -> str: ...
    def with_lists(self, lists: Mapping[str, KeywordLists]) -> KeywordReplies:
        """The same replies, with a tenant's own texts where it has them."""
        ...


@dataclass(frozen=True, slots=True)
class SignalPolicy:
    """Settings of the pipeline (from ``Settings``, built by the composition root)."""

    replies: KeywordReplies | None = None
    keyword_lists: Mapping[str, KeywordLists] | None = None  # the deployment's (None: defaults)
    brand: str = "consentry"  # who answers on the shared numbers when the tenant is not known
    soft_bounce_limit: int = 3
    confirmation_lifetime: timedelta = timedelta(days=7)  # how long a YES can confirm
    sms_frequency: str = "Message frequency varies."  # stated again after a confirmation


@dataclass(slots=True)
class IngestResult:
    inbound_id: int | None
    duplicate: bool
    status: str  # applied, ignored, review, unattributed, duplicate
    applied: list[str] = field(default_factory=list)  # what changed, in words without PII
    notes: list[str] = field(default_factory=list)  # what was considered and left alone
    replies: list[str] = field(default_factory=list)  # texts to answer the person with
    mailto_tokens: list[str] = field(default_factory=list)  # applied by the unsubscribe service
    reply_to: str | None = None  # the person's number, for replies not carried by the answer
    tenant_id: uuid.UUID | None = None  # the one tenant the event concerned, if one


def message_id_from(value: str | None) -> str | None:
    """``left@right`` from a Message-ID header value or a bare id; None if there is none."""
    if not value:
        return None
    match = _MESSAGE_ID.search(value)
    return match.group(1) if match else None


def message_id_from_verp(return_path: str | None) -> str | None:
    """The Message-ID a VERP return path (``bounces+<left>@<domain>``) carries."""
    if not return_path:
        return None
    match = _VERP.match(return_path.strip().strip("<>"))
    return f"{match.group('left')}@{match.group('domain')}" if match else None
