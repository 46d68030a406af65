"""Campaigns over HTTP: draft, simulate, launch through the gate, follow, steer, and refusals.

On PostgreSQL the tests share a database and ``drain`` takes every due delivery in it, while only
the test that queued one holds its tenant's keys: so every test leaves nothing due behind.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.e2e.api.conftest import Api, Seeded

from consentry.domain.access import Scope
from consentry.workers.inprocess import drain

POSTAL = "1 High St, Leeds LS1 1AA"
WEB_FORM = {
    "method": "web_form",
    "source": "https://acme.example/join",
    "ip_address": "203.0.113.9",
    "user_agent": "Mozilla/5.0 (e2e)",
}
OFFER = {
    "name": "offer",
    "topic": "offers",
    "channel": "email",
    "subject": "An offer for {{ contact.first_name }}",
    "text": "Hello {{ contact.first_name }}, brake pads are 20% off.",
}


def shop(client: httpx.Client) -> None:
    """A postal address for the compliance footer and a domain to send from."""
    profile = {"legal_name": "Acme Ltd", "country": "GB", "postal_address": POSTAL}
    assert client.put("/v1/profile", json=profile).status_code == 200
    domain = client.post("/v1/sender-domains", json={"domain": "acme.example"})
    assert domain.status_code == 201, domain.text


def person(
    client: httpx.Client, acme: Seeded, n: int, *, consent: bool, **fields: Any
) -> dict[str, Any]:
    body = {"name": f"Person {n}", "email": f"p{n}-{uuid.uuid4().hex[:6]}@example.com"} | fields
    contact: dict[str, Any] = client.post("/v1/contacts", json=body).json()
    if consent:
        grant = {
            "contact": contact["id"],
            "topic": "offers",
            "channel": "email",
            "evidence": WEB_FORM | {"policy_document_id": str(acme.disclosure_id)},
        }
        assert client.post("/v1/consent", json=grant).status_code == 201
    return contact


def campaign(client: httpx.Client, name: str = "spring", **extra: Any) -> dict[str, Any]:
    created = client.post(
        "/v1/campaigns", json={"name": name, "topic": "offers", "template": "offer"} | extra
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


@pytest.fixture
def offer(client: httpx.Client) -> dict[str, Any]:
    shop(client)
    created = client.post("/v1/templates", json=OFFER)
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def test_a_campaign_is_simulated_launched_followed_and_sent(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    people = [person(client, acme, n, consent=n < 2) for n in range(3)]
    created = campaign(client, frequency_cap="3/24h")
    assert created["status"] == "draft"
    assert created["template_id"] == offer["id"]
    assert created["frequency_cap"] == "3/24h"
    assert [c["id"] for c in client.get("/v1/campaigns").json()] == [created["id"]]
    assert client.get("/v1/campaigns/spring").json() == created
    assert client.get(f"/v1/campaigns/{created['id']}").json() == created

    before = api.counts()
    simulated = client.post("/v1/campaigns/spring/simulate")
    assert simulated.status_code == 200, simulated.text
    sim = simulated.json()
    assert (sim["total"], sim["eligible"], sim["deferred"]) == (3, 2, 0)
    assert sim["by_reason"] == {"ALLOW": 2, "NO_CONSENT": 1}
    assert sim["refused_sample"] == [{"contact_id": people[2]["id"], "reasons": ["NO_CONSENT"]}]
    assert api.counts() == before  # simulating writes nothing

    launched = client.post("/v1/campaigns/spring/launch")
    assert launched.status_code == 200, launched.text
    progress = launched.json()
    assert progress["campaign"]["status"] == "running"
    assert progress["campaign"]["plan_counts"] == {"ALLOW": 2, "NO_CONSENT": 1}
    # Queued, not sent: without a broker nothing is dispatched inside the request.
    assert progress["by_status"] == {"queued": 2, "suppressed": 1}
    assert (progress["total"], progress["remaining"]) == (3, 2)
    assert client.get("/v1/campaigns/spring/status").json() == progress

    rows = client.get("/v1/campaigns/spring/deliveries")
    assert rows.status_code == 200
    page = rows.json()
    assert page["next_cursor"] is None
    assert {d["contact_id"] for d in page["items"]} == {p["id"] for p in people}
    for secret in (p[k] for p in people for k in ("name", "email")):
        assert secret not in rows.text  # ids, statuses and reasons only
    refused = client.get("/v1/campaigns/spring/deliveries", params={"status": "suppressed"})
    [row] = refused.json()["items"]
    assert (row["contact_id"], row["status"], row["reasons"]) == (
        people[2]["id"],
        "suppressed",
        ["NO_CONSENT"],
    )
    first = client.get("/v1/campaigns/spring/deliveries", params={"limit": 2}).json()
    assert len(first["items"]) == 2
    rest = client.get(
        "/v1/campaigns/spring/deliveries", params={"limit": 2, "after": first["next_cursor"]}
    ).json()
    assert [d["id"] for d in first["items"] + rest["items"]] == [d["id"] for d in page["items"]]
    assert rest["next_cursor"] is None

    report = drain(api.container, uuid.UUID(created["id"]))
    assert report.sent == 2
    done = client.get("/v1/campaigns/spring/status").json()
    assert done["campaign"]["status"] == "completed"
    assert done["by_status"] == {"sent": 2, "suppressed": 1}
    assert done["remaining"] == 0
    sent = client.get("/v1/campaigns/spring/deliveries", params={"status": "sent"}).json()
    assert all(d["sent_at"] is not None for d in sent["items"])
    for action in ("launch", "pause", "resume", "cancel"):
        api.problem(client.post(f"/v1/campaigns/spring/{action}"), 409, "CAMPAIGN_STATE_CONFLICT")


def test_pause_resume_and_cancel_follow_the_campaign_states(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    for n in range(2):
        person(client, acme, n, consent=True)
    autumn = uuid.UUID(campaign(client, "autumn")["id"])
    for action in ("pause", "resume"):  # a draft has not started
        api.problem(client.post(f"/v1/campaigns/autumn/{action}"), 409, "CAMPAIGN_STATE_CONFLICT")
    assert client.post("/v1/campaigns/autumn/launch").status_code == 200

    paused = client.post("/v1/campaigns/autumn/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json()["campaign"]["status"] == "paused"
    api.problem(client.post("/v1/campaigns/autumn/pause"), 409, "CAMPAIGN_STATE_CONFLICT")
    api.problem(client.post("/v1/campaigns/autumn/launch"), 409, "CAMPAIGN_STATE_CONFLICT")
    assert drain(api.container, autumn).sent == 0  # a paused campaign is not claimed
    assert client.get("/v1/campaigns/autumn/status").json()["by_status"] == {"queued": 2}

    resumed = client.post("/v1/campaigns/autumn/resume")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["campaign"]["status"] == "running"
    api.problem(client.post("/v1/campaigns/autumn/resume"), 409, "CAMPAIGN_STATE_CONFLICT")

    cancelled = client.post("/v1/campaigns/autumn/cancel")
    assert cancelled.status_code == 200, cancelled.text
    body = cancelled.json()
    assert body["campaign"]["status"] == "cancelled"
    assert body["by_status"] == {"cancelled": 2}
    assert body["remaining"] == 0
    for action in ("cancel", "resume", "pause", "launch"):
        api.problem(client.post(f"/v1/campaigns/autumn/{action}"), 409, "CAMPAIGN_STATE_CONFLICT")
    captured = api.counts()["captured_messages"]
    assert drain(api.container, autumn).sent == 0
    assert api.counts()["captured_messages"] == captured

    campaign(client, "winter")
    assert client.post("/v1/campaigns/winter/cancel").json()["campaign"]["status"] == "cancelled"


def test_content_that_fails_review_cannot_launch(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    person(client, acme, 1, consent=True)
    shouty = OFFER | {
        "name": "shouty",
        "subject": "RE: your order",
        "text": "Brake pads at https://bit.ly/brakes",
    }
    assert client.post("/v1/templates", json=shouty).status_code == 201
    created = campaign(client, "sneaky", template="shouty")

    before = api.counts()
    refused = client.post("/v1/campaigns/sneaky/launch")
    body = api.problem(refused, 422, "CONTENT_NOT_COMPLIANT")
    codes = {f["code"] for f in body["findings"]}
    assert {"LINK_SHORTENER", "DECEPTIVE_SUBJECT"} <= codes
    assert all(f["message"] for f in body["findings"])
    assert api.counts() == before
    assert client.get(f"/v1/campaigns/{created['id']}").json()["status"] == "draft"
    assert client.get("/v1/campaigns/sneaky/deliveries").json()["items"] == []


def test_lists_narrow_the_audience(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    people = [person(client, acme, n, consent=True) for n in range(3)]
    ids = [people[0]["id"], people[1]["id"], people[0]["id"]]
    made = client.post("/v1/lists", json={"name": " vip ", "contacts": ids})
    assert made.status_code == 201, made.text
    assert (made.json()["name"], made.json()["added"]) == ("vip", 2)
    api.problem(
        client.post("/v1/lists", json={"name": "vip", "contacts": []}), 409, "ALREADY_EXISTS"
    )
    api.problem(
        client.post("/v1/lists", json={"name": "ghosts", "contacts": [str(uuid.uuid4())]}),
        404,
        "CONTACT_NOT_FOUND",
    )

    created = campaign(client, "vip-only", list="vip")
    assert created["list_id"] == made.json()["id"]
    assert client.post("/v1/campaigns/vip-only/simulate").json()["total"] == 2
    campaign(client, "leeds", audience={"country": ["GB"], "locale": ["en-GB"]})
    assert client.post("/v1/campaigns/leeds/simulate").json()["total"] == 0
    person(client, acme, 9, consent=True, country="GB", locale="en-GB")
    assert client.post("/v1/campaigns/leeds/simulate").json()["eligible"] == 1


def test_unknown_references_are_not_found_with_stable_codes(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    nobody = str(uuid.uuid4())
    for path in ("", "/status", "/deliveries"):
        api.problem(client.get(f"/v1/campaigns/{nobody}{path}"), 404, "CAMPAIGN_NOT_FOUND")
    for action in ("simulate", "launch", "pause", "resume", "cancel"):
        api.problem(client.post(f"/v1/campaigns/nope/{action}"), 404, "CAMPAIGN_NOT_FOUND")
    spec = {"name": "x", "topic": "offers", "template": "offer"}
    before = api.counts()
    for change, code in (
        ({"template": "nope"}, "TEMPLATE_NOT_FOUND"),
        ({"template": nobody}, "TEMPLATE_NOT_FOUND"),
        ({"topic": "nope"}, "TOPIC_NOT_FOUND"),
        ({"list": "nope"}, "LIST_NOT_FOUND"),
    ):
        api.problem(client.post("/v1/campaigns", json=spec | change), 404, code)
    assert api.counts() == before
    campaign(client, "x")
    api.problem(client.post("/v1/campaigns", json=spec), 409, "ALREADY_EXISTS", field="name")


def test_bad_campaigns_are_refused_with_a_code(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    spec = {"name": "bad", "topic": "offers", "template": "offer"}
    before = api.counts()
    for change, code, field in (
        ({"channel": "pigeon"}, "VALIDATION_FAILED", "channel"),
        ({"channel": "sms"}, "INVALID_VALUE", "template"),
        ({"frequency_cap": "x/y"}, "INVALID_INPUT", "frequency_cap"),
        ({"frequency_cap": "0/24h"}, "INVALID_INPUT", "frequency_cap"),
        ({"name": "   "}, "INVALID_VALUE", "name"),
        ({"topic": "reminders"}, "INVALID_VALUE", "template"),
        ({"audience": {"country": []}}, "INVALID_AUDIENCE_FILTER", None),
        ({"audience": {"email": ["a@example.com"]}}, "VALIDATION_FAILED", "audience.email"),
        ({"scheduled_at": "2030-01-01T09:00:00"}, "VALIDATION_FAILED", "scheduled_at"),
        ({"surprise": True}, "VALIDATION_FAILED", "surprise"),
    ):
        api.problem(client.post("/v1/campaigns", json=spec | change), 422, code, field=field)
    assert api.counts() == before
    campaign(client, "ok")
    for params in ({"status": "lost"}, {"limit": "0"}, {"after": "-1"}, {"after": str(2**63)}):
        api.problem(
            client.get("/v1/campaigns/ok/deliveries", params=params), 422, "VALIDATION_FAILED"
        )


def test_another_tenant_cannot_see_or_steer_a_campaign(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    person(client, acme, 1, consent=True)
    mine = campaign(client, "private")
    assert client.post("/v1/campaigns/private/launch").status_code == 200
    bravo = api.client(api.tenant("bravo").token)
    before = api.counts()
    for ref in (mine["id"], "private"):
        for method, path in (
            ("GET", ""),
            ("GET", "/status"),
            ("GET", "/deliveries"),
            ("POST", "/simulate"),
            ("POST", "/pause"),
            ("POST", "/cancel"),
        ):
            theirs = bravo.request(method, f"/v1/campaigns/{ref}{path}")
            body = api.problem(theirs, 404, "CAMPAIGN_NOT_FOUND")
            nothing = bravo.request(method, f"/v1/campaigns/{uuid.uuid4()}{path}")
            assert api.problem(nothing, 404, "CAMPAIGN_NOT_FOUND").keys() == body.keys()
    assert bravo.get("/v1/campaigns").json() == []
    api.problem(
        bravo.post("/v1/campaigns", json={"name": "b", "topic": "offers", "template": "offer"}),
        404,
        "TEMPLATE_NOT_FOUND",
    )
    assert api.counts() == before
    assert client.get("/v1/campaigns/private").json()["status"] == "running"
    assert client.post("/v1/campaigns/private/cancel").status_code == 200


def test_scopes_separate_drafting_from_sending(
    api: Api, acme: Seeded, client: httpx.Client, offer: dict[str, Any]
) -> None:
    drafter = api.client(
        api.issue_key(
            acme.slug, scopes=frozenset({Scope.CAMPAIGNS_READ, Scope.CAMPAIGNS_WRITE})
        ).token
    )
    assert (
        drafter.post(
            "/v1/campaigns", json={"name": "d", "topic": "offers", "template": "offer"}
        ).status_code
        == 201
    )
    api.problem(drafter.post("/v1/campaigns/d/launch"), 403, "FORBIDDEN")
    reader = api.client(api.issue_key(acme.slug, scopes=frozenset({Scope.CAMPAIGNS_READ})).token)
    assert reader.get("/v1/campaigns/d").status_code == 200
    api.problem(reader.post("/v1/campaigns/d/cancel"), 403, "FORBIDDEN")
    api.problem(reader.post("/v1/lists", json={"name": "l", "contacts": []}), 403, "FORBIDDEN")


def test_with_a_broker_launch_and_resume_hand_the_campaign_to_the_workers(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queued: list[uuid.UUID | None] = []
    monkeypatch.setattr(
        "consentry.workers.celery_app.enqueue_dispatch",
        lambda _settings, campaign_id, parallel=4: queued.append(campaign_id),
    )
    api = serve(broker_url="memory://")
    acme = api.tenant("acme")
    client = api.client(acme.token)
    shop(client)
    assert client.post("/v1/templates", json=OFFER).status_code == 201
    person(client, acme, 1, consent=True)
    created = campaign(client)
    assert client.post("/v1/campaigns/spring/launch").status_code == 200
    assert queued == [uuid.UUID(created["id"])]
    client.post("/v1/campaigns/spring/pause")
    assert queued == [uuid.UUID(created["id"])]
    client.post("/v1/campaigns/spring/resume")
    assert queued == [uuid.UUID(created["id"])] * 2

    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    campaign(client, "later", scheduled_at=later)
    scheduled = client.post("/v1/campaigns/later/launch").json()
    assert scheduled["campaign"]["status"] == "scheduled"
    assert len(queued) == 2  # the workers start it when its time comes
    for name in ("spring", "later"):
        assert client.post(f"/v1/campaigns/{name}/cancel").status_code == 200
