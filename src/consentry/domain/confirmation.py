"""Confirmed (double) opt-in: the one message a pending contact point may receive, and when a
request lapses.

States of one contact point x topic x channel (the ledger fold, domain/consent.py)::

    requested --> pending --confirmed (link or YES reply)--> active, confirmed
                  pending --lifetime passed--> lapsed      (``lapse-pending``)

While pending, the gate refuses every message on the topic (CONSENT_PENDING). The confirmation
request itself is a service message that ``confirmation_refusal`` decides: it goes only while
the request is pending and within its lifetime, never through a bounce, complaint, block or
other all-scope suppression, and never from a suspended or terminated tenant.

Errors::

    ConsentryError
    └── RateLimited    CONFIRMATION_RESEND_TOO_SOON   (429, with the seconds to wait)
"""

from __future__ import annotations

from datetime import datetime, timedelta

from consentry.domain.consent import ConsentStatus
from consentry.domain.errors import ConsentryError
from consentry.domain.gate import SuppressionFact, tenant_blocks, weightiest_suppression
from consentry.domain.model import Category, TenantStatus
from consentry.domain.suppression import reason_code

NOT_PENDING = "CONSENT_NOT_PENDING"
REQUEST_EXPIRED = "CONFIRMATION_EXPIRED"
TENANT_NOT_ACTIVE = "TENANT_NOT_ACTIVE"


class RateLimited(ConsentryError):
    """Too soon to do this again; ``retry_after`` says how many seconds to wait."""

    code = "CONFIRMATION_RESEND_TOO_SOON"

    def __init__(self, message: str, *, retry_after: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


def request_expired(requested_at: datetime, lifetime: timedelta, now: datetime) -> bool:
    """Whether a pending request is past its lifetime (it can no longer be confirmed)."""
    return now - requested_at > lifetime


def confirmation_refusal(  # noqa: PLR0917  (the facts one decision needs)
    status: ConsentStatus | None,
    requested_at: datetime | None,
    lifetime: timedelta,
    tenant_status: TenantStatus,
    suppressions: tuple[SuppressionFact, ...],
    now: datetime,
) -> str | None:
    """None when a confirmation request may go now; otherwise the reason code it may not."""
    if tenant_blocks(tenant_status, Category.SERVICE):
        return TENANT_NOT_ACTIVE
    if status is not ConsentStatus.PENDING or requested_at is None:
        return NOT_PENDING
    if request_expired(requested_at, lifetime, now):
        return REQUEST_EXPIRED
    hit = weightiest_suppression(suppressions, Category.SERVICE)
    return None if hit is None else reason_code(hit.reason)
