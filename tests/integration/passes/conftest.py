"""A composed consentry (capture channels) on each database, with a tenant whose customers
said yes to promotions, some of them on a list."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.integration.helpers import NOW, disclosure, grant, person

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.domain.consent import ConsentMethod, Evidence
from consentry.domain.model import BusinessProfile, Category, Channel, Contact
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services import passes
from consentry.services.campaigns import create_list
from consentry.services.clock import utcnow
from consentry.services.messages import register_sender_domain
from consentry.services.tenancy import create_tenant, create_topic

SLUG = "harbour"
PAGE = Evidence(
    method=ConsentMethod.WEB_FORM,
    source="https://consentry.example/r",
    ip_address="198.51.100.23",
    user_agent="Mozilla/5.0 (reconfirming)",
)
_LINK = re.compile(r"https://consentry\.example/r/([A-Za-z0-9_-]+)")


@dataclass
class World:
    container: Container
    new_uow: Callable[[], SqlUnitOfWork]
    evidence: Evidence

    def contact(self, n: int, **extra: object) -> Contact:
        return person(
            self.new_uow, SLUG, email=f"p{n}@example.com", phone=f"+1617555{n:04d}", **extra
        )

    def opt_in(self, contact: Contact, channel: Channel = Channel.EMAIL) -> None:
        grant(self.new_uow, SLUG, str(contact.id), self.evidence, channel=channel)

    def listed(self, name: str, *contacts: Contact) -> str:
        create_list(self.new_uow(), SLUG, name, [c.id for c in contacts], NOW)
        return name

    def start(self, **changes: object) -> passes.PassView:
        values: dict[str, object] = {
            "topic": "promotions",
            "channel": Channel.EMAIL,
            "deadline": utcnow() + timedelta(days=14),
        }
        spec = passes.PassInput(**(values | changes))  # type: ignore[arg-type]
        return passes.create_pass(
            self.new_uow(), SLUG, spec, "test", self.container.composer().reviewer
        )

    def links(self) -> dict[str, str]:
        """Recipient -> the reconfirmation token in the message captured for them."""
        found: dict[str, str] = {}
        outbox = self.container.outbox()
        for m in outbox.list(None, limit=500):
            raw = outbox.get(m.id).raw
            mail = message_from_bytes(raw, policy=default_policy)
            text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
            match = _LINK.search(text)
            if match:
                found[m.recipient] = match.group(1)
        return found


def after(deadline: datetime) -> datetime:
    return deadline + timedelta(minutes=1)


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
    register_sender_domain(new_uow(), SLUG, "harbour.example")
    return World(container, new_uow, disclosure(new_uow, SLUG))
