"""A tenant whose data key cannot be used holds up its own deliveries, not everyone's."""

from __future__ import annotations

from sqlalchemy import select
from tests.integration.delivery.conftest import SLUG, World
from tests.integration.helpers import NOW, disclosure, grant, person

from consentry.domain.model import BusinessProfile, Category, Channel
from consentry.persistence.tables import deliveries, tenants
from consentry.services.campaigns import CampaignInput, create_campaign, launch_campaign
from consentry.services.messages import TemplateInput, create_template, register_sender_domain
from consentry.services.tenancy import create_tenant, create_topic
from consentry.workers.inprocess import drain

OTHER = "dock"


def _second_tenant(world: World) -> None:
    profile = BusinessProfile(
        legal_name="Dock Tyres LLC",
        country="US",
        postal_address="2 Pier Road, Boston, MA 02110",
        contact_email="hello@dock.example",
    )
    create_tenant(world.new_uow(), slug=OTHER, name="Dock Tyres", now=NOW, profile=profile)
    create_topic(world.new_uow(), OTHER, key="promotions", name="Promotions",
                 category=Category.MARKETING)  # fmt: skip
    register_sender_domain(world.new_uow(), OTHER, "dock.example", dkim_selector="cs1")
    template = TemplateInput(name="spring", topic="promotions", channel=Channel.EMAIL,
                             subject="Spring offer", text="Tyres are 10% off.")  # fmt: skip
    create_template(world.new_uow(), OTHER, template)
    evidence = disclosure(world.new_uow, OTHER)
    for n in range(2):
        someone = person(world.new_uow, OTHER, email=f"d{n}@example.com", phone=None)
        grant(world.new_uow, OTHER, str(someone.id), evidence)


def _launch(world: World, slug: str) -> None:
    campaign = create_campaign(
        world.new_uow(), slug, CampaignInput(name="spring", topic="promotions", template="spring"),
        actor="test",
    )  # fmt: skip
    launch_campaign(world.new_uow(), slug, str(campaign.id), world.container.composer().reviewer)


def test_a_tenant_whose_key_fails_is_postponed_and_the_others_are_sent(world: World) -> None:
    for n in range(2):
        world.opt_in(world.contact(n))
    _second_tenant(world)
    _launch(world, SLUG)
    _launch(world, OTHER)
    with world.container.engine.begin() as conn:  # the second tenant's data key is damaged
        conn.execute(tenants.update().where(tenants.c.slug == OTHER).values(data_key=b"broken"))

    drain(world.container)  # does not raise: the first tenant's messages go

    with world.container.engine.connect() as conn:
        rows = conn.execute(
            select(tenants.c.slug, deliveries.c.status, deliveries.c.reasons).join(
                tenants, tenants.c.id == deliveries.c.tenant_id
            )
        ).all()
    assert sorted((slug, status) for slug, status, _ in rows) == [
        (OTHER, "deferred"), (OTHER, "deferred"), (SLUG, "sent"), (SLUG, "sent"),
    ]  # fmt: skip
    assert {reasons for slug, _, reasons in rows if slug == OTHER} == {"KEY_UNAVAILABLE,"}
