"""The demo's sending part: a sender domain, templates and a spring campaign by email."""

from __future__ import annotations

from collections.abc import Callable

from consentry.domain.campaigns import CampaignNotFound, CampaignProgress
from consentry.domain.model import Channel
from consentry.services.campaigns import (
    CampaignInput,
    Reviewer,
    campaign_progress,
    create_campaign,
    launch_campaign,
)
from consentry.services.demo import DEMO_SLUG
from consentry.services.messages import TemplateInput, create_template, register_sender_domain
from consentry.services.ports import UnitOfWork

DEMO_CAMPAIGN = "spring-tyre-check"

_TEXT = """Hello {{ contact.first_name or "there" }},

Spring is here: book a tyre and brake check at {{ business.name }} this month and get 15% off.
Book online at {{ business.website }} or call {{ business.contact_phone }}.
"""
_HTML = """<html><body>
<p>Hello {{ contact.first_name or "there" }},</p>
<p>Spring is here: book a <b>tyre and brake check</b> at {{ business.name }} this month and get
15% off.</p>
<p><a href="{{ business.website }}">Book online</a> or call {{ business.contact_phone }}.</p>
</body></html>"""


def seed_demo_campaign(
    new_uow: Callable[[], UnitOfWork], review: Reviewer
) -> tuple[CampaignProgress, bool]:
    """Create and launch the demo campaign once; (its progress, whether it was launched now)."""
    try:
        return campaign_progress(new_uow(), DEMO_SLUG, DEMO_CAMPAIGN), False
    except CampaignNotFound:
        pass
    register_sender_domain(new_uow(), DEMO_SLUG, "harbourauto.example", dkim_selector="cs2026")
    create_template(
        new_uow(),
        DEMO_SLUG,
        TemplateInput(
            name="spring-offer-email",
            topic="promotions",
            channel=Channel.EMAIL,
            subject="15% off your spring tyre check, {{ contact.first_name or 'neighbour' }}",
            text=_TEXT,
            html=_HTML,
        ),
    )
    create_template(
        new_uow(),
        DEMO_SLUG,
        TemplateInput(
            name="reminder-sms",
            topic="appointment-reminders",
            channel=Channel.SMS,
            text="your car is booked for {{ data.when }}. Reply to this number to change it.",
        ),
    )
    campaign = create_campaign(
        new_uow(),
        DEMO_SLUG,
        CampaignInput(
            name=DEMO_CAMPAIGN,
            topic="promotions",
            template="spring-offer-email",
            from_address="offers@harbourauto.example",
        ),
        actor="demo",
    )
    return launch_campaign(new_uow(), DEMO_SLUG, str(campaign.id), review), True
