from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from consentry.bootstrap import bootstrap
from consentry.config import Settings
from consentry.domain.access import Role
from consentry.services.access import issue_api_key, local_operator
from consentry.services.demo import DEMO_SLUG, DEMO_TOPICS, seed_demo
from consentry.web.app import create_app

schema = schemathesis.openapi.from_dict(create_app(Settings(data_dir=Path("unused"))).openapi())

KNOWN: dict[str, list[Any]] = {
    "contact": [
        "alice@example.com",
        "bob@example.com",
        "carla@example.com",
        "+16175550162",
        "+1 617 555 0178",
    ],
    "topic": [*DEMO_TOPICS, "all-service", "all-marketing"],
    "contact_id": [],
    "document_id": [],
    "suppression_id": [],
}


def _maybe(value: Any, key: str) -> st.SearchStrategy[Any]:
    known = KNOWN.get(key) or []
    if not known or not isinstance(value, str):
        return st.just(value)
    return st.one_of(st.just(value), st.sampled_from(known))


@schema.hook("flatmap_body")
def _known_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    if not isinstance(body, dict):
        return st.just(body)
    fields = {
        k: _maybe(v, "contact_id" if k == "contact" and False else k) for k, v in body.items()
    }
    if isinstance(body.get("evidence"), dict):
        ev = body["evidence"]
        fields["evidence"] = st.fixed_dictionaries(
            {k: _maybe(v, "document_id" if k == "policy_document_id" else k) for k, v in ev.items()}
        )
    if isinstance(body.get("items"), list):
        pass
    return st.fixed_dictionaries(fields)


@schema.hook("flatmap_path_parameters")
def _known_path(context: Any, params: dict[str, Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({k: _maybe(v, k) for k, v in params.items()})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[object, str]]:
    data_dir = tmp_path_factory.mktemp("schemathesis") / "data"
    s = Settings(
        data_dir=data_dir,
        api_rate_per_second=1e6,
        api_rate_burst=10**6,
        database_url=os.environ.get("PGX"),
    )
    container = bootstrap(s, create_keys=True)
    seed_demo(container.uow)
    key = issue_api_key(
        container.uow(), local_operator(), tenant_slug=DEMO_SLUG, name="st", role=Role.TENANT_OWNER
    )
    with container.read_uow() as uow:
        t = uow.tenants.by_slug(DEMO_SLUG)
        KNOWN["contact_id"][:] = [str(c.id) for c in uow.contacts.page(t.id, None, 20)]
        KNOWN["document_id"][:] = [str(d.id) for d in uow.policies.list(t.id)]
        KNOWN["suppression_id"][:] = [str(x.id) for x in uow.suppressions.list(t.id)]
    app = create_app(s, container)
    yield app, key.token
    container.close()


CHECKS = os.environ.get("CHECKS")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("N", "25")),
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api(case, api):
    app, token = api
    kw = {}
    if CHECKS:
        kw["checks"] = [getattr(schemathesis.checks, c) for c in CHECKS.split(",")]
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"}, app=app, **kw)
