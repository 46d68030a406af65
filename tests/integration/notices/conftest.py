"""A composed consentry (capture channels) on each database, with a tenant whose customers said
yes on version 1 of its consent disclosure, and helpers to publish, notify, send and accept."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from sqlalchemy import Engine
from tests.integration.helpers import NOW, grant, person

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.domain.consent import ConsentEvent, ConsentMethod, ConsentState, Evidence
from consentry.domain.model import (
    BusinessProfile,
    Category,
    Channel,
    Contact,
    PolicyDocument,
    PolicyKind,
)
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services import notices
from consentry.services.messages import register_sender_domain
from consentry.services.notice_sending import NoticeBatch
from consentry.services.tenancy import create_tenant, create_topic, draft_policy, publish_policy

SLUG = "harbour"
PAGE = Evidence(
    method=ConsentMethod.WEB_FORM,
    source="https://consentry.example/n",
    ip_address="198.51.100.41",
    user_agent="Mozilla/5.0 (accepting)",
)
_ACCEPT = re.compile(r"https://consentry\.example/n/([A-Za-z0-9_-]+)")


@dataclass
class World:
    container: Container
    new_uow: Callable[[], SqlUnitOfWork]
    v1: PolicyDocument  # the consent disclosure people said yes on

    def publish(
        self, kind: PolicyKind = PolicyKind.CONSENT_DISCLOSURE, body: str = "New words.",
        title: str = "Offers consent", locale: str = "en",
    ) -> PolicyDocument:  # fmt: skip
        draft = draft_policy(self.new_uow(), SLUG, kind=kind, title=title, body=body,
                             locale=locale, now=NOW)  # fmt: skip
        return publish_policy(self.new_uow(), SLUG, draft.id, NOW)

    def evidence(self, document: PolicyDocument | None = None) -> Evidence:
        return Evidence(
            method=ConsentMethod.WEB_FORM,
            source="https://harbour.example/join",
            ip_address="203.0.113.9",
            user_agent="Mozilla/5.0 test",
            policy_document_id=(document or self.v1).id,
        )

    def contact(self, n: int, **extra: object) -> Contact:
        return person(
            self.new_uow, SLUG, email=f"p{n}@example.com", phone=f"+1617555{n:04d}", **extra
        )

    def opt_in(
        self, contact: Contact, topic: str = "promotions", channel: Channel = Channel.EMAIL,
        document: PolicyDocument | None = None,
    ) -> ConsentEvent:  # fmt: skip
        recorded = grant(self.new_uow, SLUG, str(contact.id), self.evidence(document),
                         topic=topic, channel=channel)  # fmt: skip
        return recorded.event

    def notify(self, document: PolicyDocument, **options: object) -> notices.NoticeView:
        channel = options.pop("channel", Channel.EMAIL)
        return notices.create_notice(
            self.new_uow(),
            SLUG,
            document.id,
            channel,
            "test",
            **options,  # type: ignore[arg-type]
        )

    def send(self, notice_id: uuid.UUID | None = None) -> NoticeBatch:
        sender = self.container.notice_sender()
        try:
            return sender.run_until_idle(notice_id)
        finally:
            sender.close()

    def report(self, notice_id: uuid.UUID) -> notices.NoticeView:
        return notices.get_notice(self.new_uow(), SLUG, notice_id)

    def outbox(self) -> dict[str, str]:
        """Recipient -> the text of the last message captured for them (email body or SMS)."""
        found: dict[str, str] = {}
        outbox = self.container.outbox()
        for m in reversed(outbox.list(None, limit=500)):
            raw = outbox.get(m.id).raw
            if m.channel == Channel.EMAIL:
                mail = message_from_bytes(raw, policy=default_policy)
                body = mail.get_body(("plain",))
                found[m.recipient] = f"Subject: {mail['Subject']}\n" + body.get_content()  # type: ignore[union-attr]
            else:  # the provider request, form-encoded
                found[m.recipient] = parse_qs(raw.decode())["Body"][0]
        return found

    def token(self, address: str) -> str:
        match = _ACCEPT.search(self.outbox()[address])
        assert match is not None, self.outbox()[address]
        return match.group(1)

    def state(self, contact: Contact, topic: str = "promotions",
              channel: Channel = Channel.EMAIL) -> ConsentState | None:  # fmt: skip
        with self.new_uow() as uow:
            tenant = uow.tenants.by_slug(SLUG)
            found = uow.topics.by_key(tenant.id, topic)
            return uow.consent_states.get(tenant.id, contact.id, found.id, channel)

    def cited(self, event_id: uuid.UUID) -> uuid.UUID | None:
        with self.new_uow() as uow:
            tenant = uow.tenants.by_slug(SLUG)
            return uow.ledger.get(tenant.id, event_id).evidence.policy_document_id


@pytest.fixture
def world(engine: Engine, keys: FileKeyRing, tmp_path: Path) -> World:
    settings = Settings(data_dir=tmp_path, public_base_url="https://consentry.example")
    container = Container(settings=settings, engine=engine, keys=keys)
    new_uow = container.uow
    create_tenant(
        new_uow(),
        slug=SLUG,
        name="Harbour Auto",
        now=NOW,
        profile=BusinessProfile(
            legal_name="Harbour Auto LLC",
            country="US",
            postal_address="1 Dock Street, Boston, MA 02110",
            contact_email="hello@harbour.example",
        ),
    )
    create_topic(new_uow(), SLUG, key="reminders", name="Reminders", category=Category.SERVICE)
    create_topic(new_uow(), SLUG, key="promotions", name="Promotions", category=Category.MARKETING)
    create_topic(new_uow(), SLUG, key="surveys", name="Surveys", category=Category.MARKETING)
    register_sender_domain(new_uow(), SLUG, "harbour.example")
    draft = draft_policy(
        new_uow(), SLUG, kind=PolicyKind.CONSENT_DISCLOSURE, title="Offers consent",
        body="You may send me offers.", now=NOW,
    )  # fmt: skip
    return World(container, new_uow, publish_policy(new_uow(), SLUG, draft.id, NOW))
