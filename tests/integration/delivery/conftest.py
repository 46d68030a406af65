"""A composed consentry (capture channels) on each database, with a tenant ready to send."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.integration.helpers import NOW, disclosure, grant, person

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.domain.consent import Evidence
from consentry.domain.model import BusinessProfile, Category, Channel, Contact
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.campaigns import CampaignInput, create_campaign, launch_campaign
from consentry.services.messages import TemplateInput, create_template, register_sender_domain
from consentry.services.tenancy import create_tenant, create_topic

SLUG = "harbour"


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

    def launch(self, campaign: CampaignInput) -> uuid.UUID:
        """Create the campaign and launch it now (planned and queued, nothing sent yet)."""
        created = create_campaign(self.new_uow(), SLUG, campaign, actor="test")
        review = self.container.composer().reviewer
        launch_campaign(self.new_uow(), SLUG, str(created.id), review)
        return created.id


@pytest.fixture
def world(engine: Engine, keys: FileKeyRing, tmp_path: Path) -> Iterator[World]:
    settings = Settings(
        data_dir=tmp_path, public_base_url="https://consentry.example", delivery_window=8
    )
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
    register_sender_domain(new_uow(), SLUG, "harbour.example", dkim_selector="cs1")
    create_template(
        new_uow(),
        SLUG,
        TemplateInput(
            name="spring",
            topic="promotions",
            channel=Channel.EMAIL,
            subject="Spring service offer for {{ contact.first_name }}",
            text="Hello {{ contact.first_name }}, tyres are 10% off this month.",
            html="<html><body><p>Hello {{ contact.first_name }}</p></body></html>",
        ),
    )
    create_template(
        new_uow(),
        SLUG,
        TemplateInput(
            name="reminder",
            topic="reminders",
            channel=Channel.EMAIL,
            subject="Your appointment",
            text="Your car is booked for {{ data.when }}.",
        ),
    )
    return World(container, new_uow, disclosure(new_uow, SLUG))
