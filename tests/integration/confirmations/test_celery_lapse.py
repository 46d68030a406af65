"""With Celery workers, beat lapses unconfirmed consent requests every hour, as the in-process
worker does."""

from __future__ import annotations

from pathlib import Path

from tests.integration.helpers import disclosure, grant, person, shop

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.consent import ConsentAction, ConsentStatus
from consentry.domain.model import Channel
from consentry.workers.celery_app import LAPSE, make_celery
from consentry.workers.inprocess import LAPSE_EVERY_SECONDS


def test_beat_lapses_requests_past_their_lifetime(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, broker_url="memory://")
    container = bootstrap(settings, create_keys=True)
    try:
        slug = shop(container.uow)
        ana = person(container.uow, slug)
        # A request made months ago (the helpers' fixed date) and never confirmed.
        grant(container.uow, slug, str(ana.id), disclosure(container.uow, slug),
              action=ConsentAction.REQUESTED)  # fmt: skip
        app = make_celery(settings)

        assert app.conf.beat_schedule["lapse"] == {
            "task": LAPSE,
            "schedule": LAPSE_EVERY_SECONDS,
        }
        assert app.tasks[LAPSE]() == 1
        assert app.tasks[LAPSE]() == 0  # nothing left pending
        with container.read_uow() as uow:
            tenant = uow.tenants.by_slug(slug)
            topic = uow.topics.by_key(tenant.id, "promotions")
            state = uow.consent_states.get(tenant.id, ana.id, topic.id, Channel.EMAIL)
        assert state is not None
        assert state.status is ConsentStatus.LAPSED
    finally:
        container.close()
