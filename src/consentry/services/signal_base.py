"""The state of applying one inbound event, and suppressing (services/signals.py)."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

from consentry.domain.errors import InvalidInput
from consentry.domain.ids import new_id
from consentry.domain.model import Channel, PointKind, point_index_value
from consentry.domain.signals import (
    ComplaintCase,
    FeedbackType,
    SentDelivery,
    SignalSource,
)
from consentry.domain.suppression import Suppression, SuppressionReason, SuppressionScope
from consentry.services.addresses import normalize_email, normalize_phone
from consentry.services.ports import UnitOfWork
from consentry.services.signal_policy import (
    IngestResult,
    SignalPolicy,
)

log = logging.getLogger(__name__)


class ApplierBase:
    """What every kind of signal needs: the event's bookkeeping and the suppressions it adds,
    inside the caller's transaction."""

    def __init__(
        self,
        uow: UnitOfWork,
        inbound_id: int,
        source: SignalSource,
        policy: SignalPolicy,
        at: datetime,
    ) -> None:
        self.uow = uow
        self.inbound_id = inbound_id
        self.source = source
        self.policy = policy
        self.at = at
        self.applied: list[str] = []  # what changed
        self.notes: list[str] = []  # what was considered and left alone
        self.replies: list[str] = []
        self.mailto: list[str] = []
        self.tenants: set[uuid.UUID] = set()
        self.review = False
        self.unattributed = False
        self.message_id: str | None = None  # the provider's id of the inbound message
        self.reply_to: str | None = None
        self._owners: dict[tuple[Channel, bytes], uuid.UUID | None] = {}
        # The addresses (blind indexes) this event was found to be about: linked to it, so
        # that erasing one of them empties its payload.
        self.points: set[bytes] = set()

    def result(self) -> IngestResult:
        if self.review:
            status = "review"
        elif self.applied or self.replies or self.mailto:
            status = "applied"
        elif self.unattributed:
            status = "unattributed"
        else:
            status = "ignored"
        return IngestResult(
            self.inbound_id,
            duplicate=False,
            status=status,
            applied=self.applied,
            notes=self.notes,
            replies=self.replies,
            mailto_tokens=self.mailto,
            reply_to=self.reply_to,
            tenant_id=self.tenant_id(),
        )

    def tenant_id(self) -> uuid.UUID | None:
        return next(iter(self.tenants)) if len(self.tenants) == 1 else None

    def suppress(  # noqa: PLR0917  (one call shape, used only inside this module)
        self,
        tenant_id: uuid.UUID | None,
        point_key: bytes,
        channel: Channel,
        reason: SuppressionReason,
        scope: SuppressionScope,
        source: str,
        note: str | None = None,
    ) -> bool:
        """Add a suppression unless the same one stands; True if it was added. Takes the opt-out
        fence first: messages to this address already past their final check finish first, and
        none leaves after the commit."""
        self.points.add(point_key)
        self.uow.fences.exclusive([point_key])
        standing = [
            s
            for s in self.uow.suppressions.active_for(tenant_id, point_key, channel)
            if s.reason is reason and s.scope is scope and s.tenant_id == tenant_id
        ]
        if standing:
            return False
        self.uow.suppressions.add(
            Suppression(
                id=new_id(),
                tenant_id=tenant_id,
                point_key=point_key,
                channel=channel,
                scope=scope,
                reason=reason,
                created_at=self.at,
                source=source,
                note=note,
                actor=f"signal:{self.inbound_id}",
            )
        )
        who = "platform-wide" if tenant_id is None else "for the tenant"
        self.applied.append(f"suppressed {channel.value} {scope.value} ({reason.value}) {who}")
        if tenant_id is not None:
            self.tenants.add(tenant_id)
        return True

    def phone_key(self, number: str) -> bytes | None:
        try:
            e164, _ = normalize_phone(number, None)
        except InvalidInput:
            return None
        key = self.uow.keys.blind_index(PointKind.PHONE, point_index_value(PointKind.PHONE, e164))
        self.points.add(key)
        return key

    def email_key(self, address: str | None) -> bytes | None:
        if not address:
            return None
        try:
            normalized = normalize_email(address)
        except InvalidInput:
            return None
        key = self.uow.keys.blind_index(
            PointKind.EMAIL, point_index_value(PointKind.EMAIL, normalized)
        )
        self.points.add(key)
        return key

    def open_case(self, sent: SentDelivery, channel: Channel, feedback: FeedbackType) -> None:
        self.open_case_for(
            sent.tenant_id, channel, feedback, sent.campaign_id, sent.id, sent.contact_id
        )

    def open_case_for(  # noqa: PLR0917  (the case's fields)
        self,
        tenant_id: uuid.UUID,
        channel: Channel,
        feedback: FeedbackType,
        campaign_id: uuid.UUID | None = None,
        delivery_id: int | None = None,
        contact_id: uuid.UUID | None = None,
    ) -> None:
        """A complaint case against the tenant (and the campaign and delivery, when known)."""
        case = ComplaintCase(
            id=new_id(),
            tenant_id=tenant_id,
            campaign_id=campaign_id,
            delivery_id=delivery_id,
            channel=channel,
            feedback_type=feedback,
            source=self.source,
            status="open",
            opened_at=self.at,
        )
        self.uow.signals.open_case(case, contact_id, self.inbound_id)
        self.tenants.add(tenant_id)
        self.applied.append(f"complaint case {case.id} opened")
