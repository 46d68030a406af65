"""Applying what people send by SMS and WhatsApp (services/signals.py)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import replace

from consentry.domain.errors import InvalidInput
from consentry.domain.keywords import classify
from consentry.domain.model import Channel
from consentry.domain.signals import (
    Block,
    ButtonOptOut,
    ChatOptIn,
    FeedbackType,
    InboundMessage,
    Keyword,
    KeywordKind,
)
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.services.chat_opt_in import opt_in_by_chat
from consentry.services.compose.confirmation import sms_disclosures
from consentry.services.confirming import confirm_by_reply
from consentry.services.reconfirming import renew_by_reply
from consentry.services.signal_base import ApplierBase
from consentry.services.signal_policy import (
    KEYWORD_SOURCE,
    REPLYING,
    KeywordReplies,
)
from consentry.services.tenant_keywords import lists_for as tenant_keyword_lists

log = logging.getLogger(__name__)


class PhoneSignals(ApplierBase):
    """Keywords, click-to-chat opt-ins, the WhatsApp service window, stop buttons and blocks."""

    def owner(self, channel: Channel, point_key: bytes) -> uuid.UUID | None:
        """The one tenant that knows the number on ``channel``, if only one does."""
        key = (channel, point_key)
        if key not in self._owners:
            tenants = {t for t, _ in self.uow.signals.contacts_with_point(channel, point_key)}
            self._owners[key] = tenants.pop() if len(tenants) == 1 else None
        return self._owners[key]

    def brand_for(self, channel: Channel, point_key: bytes) -> str:
        """The business that answers: the one that knows the number, else the platform."""
        tenant_id = self.owner(channel, point_key)
        if tenant_id is None:
            return self.policy.brand
        self.tenants.add(tenant_id)
        return self.uow.tenants.get(tenant_id).name

    def tenant_reading(self, k: Keyword, point_key: bytes) -> tuple[Keyword, KeywordReplies | None]:
        """The keyword as the tenant that knows the number reads it, with its own words and
        reply texts, when it has any (services/tenant_keywords.py); else as it came."""
        replies = self.policy.replies
        tenant_id = self.owner(k.channel, point_key)
        if tenant_id is None:
            return k, replies
        try:
            lists = tenant_keyword_lists(self.uow, tenant_id, self.policy.keyword_lists)
        except InvalidInput:
            log.warning("tenant keywords unusable", extra={"tenant": str(tenant_id)})
            return k, replies
        if lists is None:
            return k, replies
        if not k.by_provider:  # Twilio's own reading of STOP/START/HELP wins (it acts on it)
            kind, language = classify(k.text, lists)
            k = replace(k, kind=kind, language=language)
        return k, replies.with_lists(lists) if replies is not None else None

    def keyword(self, k: Keyword) -> None:
        self.reply_to = k.sender
        point_key = self.phone_key(k.sender)
        if point_key is None:
            self.notes.append("sender number not valid: nothing applied")
            return
        k, replies = self.tenant_reading(k, point_key)
        if k.kind is KeywordKind.OPT_OUT:
            added = self.suppress(
                None,
                point_key,
                k.channel,
                SuppressionReason.UNSUBSCRIBED,
                SuppressionScope.ALL,
                f"{KEYWORD_SOURCE}:{self.source.value}",
                note="opted out by keyword",
            )
            # One confirmation, on the first STOP only; it carries no marketing.
            if added and k.channel in REPLYING and replies is not None:
                self.replies.append(
                    replies.opt_out(self.brand_for(k.channel, point_key), k.language)
                )
            if not added:
                self.notes.append("already opted out by keyword")
        elif k.kind is KeywordKind.OPT_IN:
            self.confirm_pending(k, point_key)
            lifted = 0
            for s in self.uow.suppressions.active_for(None, point_key, k.channel):
                if (
                    s.tenant_id is None
                    and s.reason is SuppressionReason.UNSUBSCRIBED
                    and (s.source or "").startswith(KEYWORD_SOURCE)
                ):
                    self.uow.suppressions.lift(s.id, self.at, f"signal:{self.inbound_id}")
                    lifted += 1
            if lifted:
                # Keyword-scoped messaging resumes; marketing still needs consent the person
                # gave before the stop, or a new affirmative act (the gate checks it).
                self.applied.append(f"lifted {lifted} keyword opt-out(s) on {k.channel.value}")
                if k.channel in REPLYING and replies is not None:
                    self.replies.append(
                        replies.opt_in(self.brand_for(k.channel, point_key), k.language)
                    )
        elif k.kind is KeywordKind.HELP:
            if k.channel in REPLYING and replies is not None:
                brand = self.brand_for(k.channel, point_key)
                self.replies.append(replies.help(brand, k.language))
        elif k.kind is KeywordKind.REFUSAL_LIKE:
            self.review = True
            self.applied.append("looks like a refusal but matches no keyword: queued for review")
            for tenant_id, _ in self.uow.signals.contacts_with_point(k.channel, point_key):
                self.uow.signals.alert(
                    tenant_id,
                    "refusal_review",
                    f"a {k.channel.value} reply that reads like a refusal awaits review "
                    f"(inbound event {self.inbound_id})",
                    self.inbound_id,
                    self.at,
                )

    def confirm_pending(self, k: Keyword, point_key: bytes) -> None:
        """YES to a double opt-in request confirms it (evidence: the keyword and this inbound
        message); the reply repeats the program's disclosures, as the first message after the
        confirmation must (CTIA Messaging Principles)."""
        if k.channel is not Channel.SMS:
            return
        confirmed = confirm_by_reply(
            self.uow,
            point_key,
            self.message_id or f"inbound:{self.inbound_id}",
            lifetime=self.policy.confirmation_lifetime,
            now=self.at,
        )
        for tenant, topic in confirmed:
            self.tenants.add(tenant.id)
            self.applied.append(f"confirmed the sms double opt-in for topic {topic.key}")
            self.replies.append(sms_disclosures(tenant.name, topic.name, self.policy.sms_frequency))
        # YES to a permission pass's text keeps the subscription, as its link does.
        for view in renew_by_reply(
            self.uow, point_key, self.message_id or f"inbound:{self.inbound_id}", self.at
        ):
            self.tenants.add(view.tenant.id)
            self.applied.append(f"renewed topic {view.topic.key} for permission pass")
            self.replies.append(
                f"{view.tenant.name}: thank you, you will keep getting {view.topic.name} texts. "
                "Reply STOP to opt out."
            )

    def chat_opt_in(self, c: ChatOptIn) -> None:
        """A click-to-chat message asking a named business for a topic on WhatsApp."""
        done = opt_in_by_chat(self.uow, c, self.message_id or f"inbound:{self.inbound_id}", self.at)
        if done is None:
            self.notes.append("click-to-chat reference names no business or topic: nothing applied")
            return
        self.tenants.add(done.tenant.id)
        self.reply_to = c.sender
        business = done.tenant.profile.legal_name or done.tenant.name
        # The first message after the opt-in names the business and the way out.
        self.replies.append(
            f"{business}: you are subscribed to {done.topic.name} on WhatsApp. "
            "Reply STOP to opt out."
        )
        action = done.event.action.value
        self.applied.append(f"whatsapp opt-in to {done.topic.key} by click-to-chat ({action})")

    def inbound_message(self, m: InboundMessage) -> None:
        if m.channel is not Channel.WHATSAPP:
            return
        point_key = self.phone_key(m.sender)
        if point_key is None:
            return
        opened = self.uow.signals.open_service_window(point_key, m.at)
        if opened:
            self.applied.append(f"service window opened for {opened} contact(s)")

    def button(self, b: ButtonOptOut) -> None:
        point_key = self.phone_key(b.sender)
        if point_key is None:
            return
        added = self.suppress(
            None,
            point_key,
            Channel.WHATSAPP,
            SuppressionReason.UNSUBSCRIBED,
            SuppressionScope.MARKETING,
            f"whatsapp:button:{b.payload[:40]}",
            note="marketing opt-out button",
        )
        if not added:
            self.notes.append("already opted out of WhatsApp marketing")

    def block(self, b: Block) -> None:
        point_key = self.phone_key(b.sender)
        if point_key is None:
            return
        self.suppress(
            None,
            point_key,
            Channel.WHATSAPP,
            SuppressionReason.BLOCKED,
            SuppressionScope.ALL,
            "whatsapp:report" if b.reported else "whatsapp:block",
            note="the person reported the business" if b.reported else "the person blocked",
        )
        if b.reported:
            contacts = self.uow.signals.contacts_with_point(Channel.WHATSAPP, point_key)
            latest = self.uow.signals.latest_sent_to([c for _, c in contacts], Channel.WHATSAPP)
            if latest is None:
                self.unattributed = True
                self.notes.append("report not attributable to a message we sent")
                return
            self.open_case(latest, Channel.WHATSAPP, FeedbackType.ABUSE)
