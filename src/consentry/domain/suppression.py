"""Suppressions: blocks on a contact point that no import or sync may lift.

A suppression names a contact point by its keyed blind index (never the address itself), so that it
outlives the contact it came from, including after erasure.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from consentry.domain.model import Category, Channel


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    BLOCKED = "blocked"
    DNC_REGISTRY = "dnc_registry"
    REASSIGNED_NUMBER = "reassigned_number"
    ERASED = "erased"
    PROVIDER = "provider"
    MANUAL = "manual"


class SuppressionScope(StrEnum):
    ALL = "all"
    MARKETING = "marketing"


# When several suppressions cover one address the gate names the weightiest; this order is also the
# order the set-based twin ranks them in (lower wins).
REASON_PRIORITY: tuple[SuppressionReason, ...] = (
    SuppressionReason.ERASED,
    SuppressionReason.COMPLAINT,
    SuppressionReason.HARD_BOUNCE,
    SuppressionReason.BLOCKED,
    SuppressionReason.REASSIGNED_NUMBER,
    SuppressionReason.UNSUBSCRIBED,
    SuppressionReason.DNC_REGISTRY,
    SuppressionReason.PROVIDER,
    SuppressionReason.MANUAL,
)
REASON_RANK: dict[SuppressionReason, int] = {r: i for i, r in enumerate(REASON_PRIORITY)}

# Only an operator's own manual block, or an unsubscribe the person reverses by a new affirmative
# act, may be lifted. Bounces, complaints, blocks, registry listings and erasures are facts about
# the address or the person's rights, and are never lifted by hand.
LIFTABLE_REASONS = frozenset({SuppressionReason.MANUAL, SuppressionReason.UNSUBSCRIBED})


@dataclass(frozen=True, slots=True)
class Suppression:
    id: uuid.UUID
    tenant_id: uuid.UUID | None  # None: platform-wide
    point_key: bytes
    channel: Channel
    scope: SuppressionScope
    reason: SuppressionReason
    created_at: datetime
    source: str | None = None
    note: str | None = None
    actor: str | None = None
    lifted_at: datetime | None = None
    lifted_by: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    def covers(self, category: Category) -> bool:
        return self.scope is SuppressionScope.ALL or category is Category.MARKETING


def reason_code(reason: SuppressionReason) -> str:
    return "SUPPRESSED_" + reason.value.upper()
