"""Applying bounces, complaints and delivery reports (services/signals.py)."""

from __future__ import annotations

import uuid

from consentry.domain.delivery import DeliveryStatus, ProviderEvent, ProviderSignal
from consentry.domain.model import Channel
from consentry.domain.signals import (
    SUPPRESSING_FEEDBACK,
    Bounce,
    BounceKind,
    Complaint,
    CourtesyMessage,
    SentDelivery,
)
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.services.signal_base import ApplierBase
from consentry.services.signal_policy import (
    EMAILISH,
    message_id_from,
    message_id_from_verp,
)


class MailSignals(ApplierBase):
    """Bounces, complaints and providers' delivery reports, tied to a message we sent."""

    def find_sent(self, *message_ids: str | None) -> SentDelivery | None:
        for value in message_ids:
            message_id = message_id_from(value)
            if message_id is None:
                continue
            found = self.uow.signals.delivery_by_message_id(message_id)
            if found is not None:
                return found
        return None

    def point_of(self, sent: SentDelivery, address: str | None) -> bytes | None:
        """The address a report is about: the delivery's contact's own, which must match the
        report's recipient when the report names one."""
        contact = self.uow.contacts.get(sent.tenant_id, sent.contact_id)
        own = self.uow.contacts.point_key(contact, sent.channel)
        if own is not None:
            self.points.add(own)
        named = self.email_key(address)
        if named is not None and own is not None and named != own:
            return None  # the report names someone else: do not act on it
        return own or named

    def find_courtesy(self, *message_ids: str | None) -> CourtesyMessage | None:
        """An email sent outside campaigns (services/courtesy_signing.py) by its Message-ID."""
        for value in message_ids:
            message_id = message_id_from(value)
            if message_id is not None:
                found = self.uow.signals.courtesy_by_message_id(message_id)
                if found is not None:
                    return found
        return None

    def bounce(self, b: Bounce) -> None:
        if b.kind is BounceKind.DELAYED:
            self.notes.append(f"delayed ({b.status}): not a bounce")
            return
        verp = message_id_from_verp(b.return_path) or message_id_from_verp(b.original_envelope_id)
        sent = self.find_sent(b.original_message_id, verp)
        if sent is None:
            courtesy = self.find_courtesy(b.original_message_id, verp)
            if courtesy is None:
                self.unattributed = True
                return
            self.tenants.add(courtesy.tenant_id)
            named = self.email_key(b.recipient)
            if named is not None and named != courtesy.point_key:
                self.unattributed = True  # the report names someone else: do not act on it
                return
            self.notes.append("about a message sent outside campaigns")
            self._bounced(b, courtesy.tenant_id, courtesy.point_key, None)
            return
        self.tenants.add(sent.tenant_id)
        point_key = self.point_of(sent, b.recipient)
        if point_key is None:
            self.unattributed = True
            return
        self._bounced(b, sent.tenant_id, point_key, sent.id)

    def _bounced(
        self, b: Bounce, tenant_id: uuid.UUID, point_key: bytes, delivery_id: int | None
    ) -> None:
        if b.kind is BounceKind.POLICY:
            diagnostic = EMAILISH.sub("<address>", b.diagnostic)[:300]
            self.uow.signals.alert(
                tenant_id,
                "policy_bounce",
                f"{b.status} from {b.reporting_mta or 'the receiving server'}: {diagnostic}",
                self.inbound_id,
                self.at,
            )
            self.applied.append(f"policy failure {b.status}: tenant alerted, nobody suppressed")
            return
        if b.kind is BounceKind.HARD:
            if delivery_id is not None:
                self.uow.signals.report_delivery(
                    delivery_id, DeliveryStatus.BOUNCED, self.at, b.status
                )
            self.suppress(
                tenant_id,
                point_key,
                Channel.EMAIL,
                SuppressionReason.HARD_BOUNCE,
                SuppressionScope.ALL,
                f"dsn:{b.status}",
            )
            self.uow.signals.reset_bounces(point_key)
            return
        count = self.uow.signals.soft_bounce(point_key, b.status, self.at)
        self.applied.append(f"soft bounce {b.status}: {count} in a row")
        if count >= self.policy.soft_bounce_limit:
            self.suppress(
                tenant_id,
                point_key,
                Channel.EMAIL,
                SuppressionReason.HARD_BOUNCE,
                SuppressionScope.ALL,
                f"dsn:{b.status}",
                note=f"{count} soft bounces in a row",
            )

    def complaint(self, c: Complaint) -> None:
        verp = message_id_from_verp(c.original_mail_from)
        sent = self.find_sent(c.original_message_id, verp)
        if sent is None:
            courtesy = self.find_courtesy(c.original_message_id, verp)
            if courtesy is None:
                self.unattributed = True
                self.notes.append(f"{c.feedback_type.value} report not attributable")
                return
            self._courtesy_complaint(c, courtesy)
            return
        self.tenants.add(sent.tenant_id)
        if c.feedback_type not in SUPPRESSING_FEEDBACK:
            self.notes.append(f"{c.feedback_type.value} report: nothing suppressed")
            return
        point_key = self.point_of(sent, c.recipient)
        if point_key is None:
            self.unattributed = True
            return
        self.uow.signals.report_delivery(
            sent.id, DeliveryStatus.COMPLAINED, self.at, c.feedback_type.value
        )
        self.suppress(
            sent.tenant_id,
            point_key,
            sent.channel,
            SuppressionReason.COMPLAINT,
            SuppressionScope.ALL,
            f"arf:{c.feedback_type.value}",
        )
        self.open_case(sent, sent.channel, c.feedback_type)

    def _courtesy_complaint(self, c: Complaint, courtesy: CourtesyMessage) -> None:
        """A complaint about a message sent outside campaigns: the address is suppressed and a
        case opened against the tenant, as for a campaign message."""
        self.tenants.add(courtesy.tenant_id)
        if c.feedback_type not in SUPPRESSING_FEEDBACK:
            self.notes.append(f"{c.feedback_type.value} report: nothing suppressed")
            return
        named = self.email_key(c.recipient)
        if named is not None and named != courtesy.point_key:
            self.unattributed = True
            return
        self.notes.append("about a message sent outside campaigns")
        self.suppress(
            courtesy.tenant_id,
            courtesy.point_key,
            Channel.EMAIL,
            SuppressionReason.COMPLAINT,
            SuppressionScope.ALL,
            f"arf:{c.feedback_type.value}",
        )
        self.open_case_for(courtesy.tenant_id, Channel.EMAIL, c.feedback_type)

    def report(self, event: ProviderEvent) -> None:
        sent = self.uow.signals.delivery_by_provider_id(event.provider_message_id)
        if sent is None:
            self.unattributed = True
            return
        self.tenants.add(sent.tenant_id)
        if event.status in (DeliveryStatus.DELIVERED, DeliveryStatus.FAILED):
            moved = self.uow.signals.report_delivery(
                sent.id, event.status, self.at, event.error_code
            )
            if moved:
                self.applied.append(f"delivery {sent.id} {event.status.value}")
        if event.status is DeliveryStatus.DELIVERED and sent.channel is Channel.EMAIL:
            # Mail reached the mailbox: soft bounces before it were passing trouble, and the
            # next ones start a new run (only soft bounces *in a row* suppress an address).
            point_key = self.uow.signals.contact_point_key(sent.contact_id, Channel.EMAIL)
            if point_key is not None:
                self.points.add(point_key)
                self.uow.signals.reset_bounces(point_key)
        if event.signal is ProviderSignal.OPT_OUT:
            contact = self.uow.contacts.get(sent.tenant_id, sent.contact_id)
            point_key = self.uow.contacts.point_key(contact, sent.channel)
            if point_key is not None:
                scope = (
                    SuppressionScope.MARKETING
                    if sent.channel is Channel.WHATSAPP
                    else SuppressionScope.ALL
                )
                self.suppress(
                    sent.tenant_id,
                    point_key,
                    sent.channel,
                    SuppressionReason.PROVIDER,
                    scope,
                    f"provider:{event.error_code or 'opt_out'}",
                )
