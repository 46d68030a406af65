"""The one message a pending address may receive: when the confirmation request may go."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consentry.domain.confirmation import (
    NOT_PENDING,
    REQUEST_EXPIRED,
    TENANT_NOT_ACTIVE,
    confirmation_refusal,
)
from consentry.domain.consent import ConsentStatus
from consentry.domain.gate import SuppressionFact
from consentry.domain.model import TenantStatus
from consentry.domain.suppression import SuppressionReason, SuppressionScope

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
WEEK = timedelta(days=7)
ACTIVE = TenantStatus.ACTIVE


def refusal(
    status: ConsentStatus | None = ConsentStatus.PENDING,
    requested: datetime | None = NOW - timedelta(hours=1),
    tenant: TenantStatus = ACTIVE,
    suppressions: tuple[SuppressionFact, ...] = (),
) -> str | None:
    return confirmation_refusal(status, requested, WEEK, tenant, suppressions, NOW)


def test_a_pending_request_within_its_lifetime_may_be_confirmed() -> None:
    assert refusal() is None
    assert refusal(tenant=TenantStatus.PAUSED) is None  # paused tenants still send service


@pytest.mark.parametrize(
    "status",
    [None, ConsentStatus.ACTIVE, ConsentStatus.WITHDRAWN, ConsentStatus.LAPSED, ConsentStatus.VOID],
)
def test_only_a_pending_address_gets_a_confirmation_request(status: ConsentStatus | None) -> None:
    assert refusal(status) == NOT_PENDING


def test_an_expired_request_gets_none() -> None:
    assert refusal(requested=NOW - WEEK - timedelta(seconds=1)) == REQUEST_EXPIRED
    assert refusal(requested=NOW - WEEK) is None


@pytest.mark.parametrize("tenant", [TenantStatus.SUSPENDED, TenantStatus.TERMINATED])
def test_a_suspended_tenant_sends_none(tenant: TenantStatus) -> None:
    assert refusal(tenant=tenant) == TENANT_NOT_ACTIVE


def test_all_scope_blocks_stop_it_and_marketing_unsubscribes_do_not() -> None:
    bounce = SuppressionFact(SuppressionReason.HARD_BOUNCE, SuppressionScope.ALL)
    stop = SuppressionFact(SuppressionReason.UNSUBSCRIBED, SuppressionScope.ALL, platform=True)
    marketing = SuppressionFact(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING)
    assert refusal(suppressions=(bounce,)) == "SUPPRESSED_HARD_BOUNCE"
    assert refusal(suppressions=(stop,)) == "SUPPRESSED_UNSUBSCRIBED"
    assert refusal(suppressions=(marketing,)) is None
