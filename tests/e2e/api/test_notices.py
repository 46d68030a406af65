"""Policy notices over HTTP: publish a new version, consents keep citing the old one, queue a
notice (202, nothing sent in the request), the workers send it, the report counts it."""

from __future__ import annotations

import re
import uuid
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import httpx
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_campaigns import person, shop

from consentry.domain.access import Scope
from consentry.workers.inprocess import send_notices

_ACCEPT = re.compile(r"https://localhost:8000/n/([A-Za-z0-9_-]+)")


def publish(client: httpx.Client, kind: str = "consent_disclosure", **extra: str) -> dict[str, Any]:
    body = {"kind": kind, "title": "Offers consent", "body": "Offers and surveys."} | extra
    draft = client.post("/v1/policies", json=body)
    assert draft.status_code == 201, draft.text
    published = client.post(f"/v1/policies/{draft.json()['id']}/publish")
    assert published.status_code == 200, published.text
    found: dict[str, Any] = published.json()
    return found


def notify(client: httpx.Client, document: str, **body: Any) -> httpx.Response:
    return client.post(f"/v1/policies/{document}/notices", json=body)


def notice_links(api: Api, tenant: Seeded) -> dict[str, str]:
    """Recipient -> the acceptance token in the notice captured for them."""
    found: dict[str, str] = {}
    outbox = api.container.outbox()
    for m in outbox.list(tenant.id, limit=200):
        mail = message_from_bytes(outbox.get(m.id).raw, policy=default_policy)
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        match = _ACCEPT.search(text)
        if match:
            found[m.recipient] = match.group(1)
    return found


def test_consents_keep_citing_the_version_seen_after_a_new_one_is_published(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    contact = person(client, acme, 1, consent=True)
    v2 = publish(client)
    assert v2["version"] == 2
    versions = client.get("/v1/policies", params={"kind": "consent_disclosure"}).json()
    assert [(d["version"], d["status"]) for d in versions] == [(1, "published"), (2, "published")]
    [event] = client.get(f"/v1/contacts/{contact['id']}/consent").json()
    assert event["policy_document_id"] == str(acme.disclosure_id)
    assert event["disclosure_hash"] == versions[0]["content_hash"]


def test_a_notice_is_queued_sent_by_the_workers_and_reported(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    shop(client)
    people = [person(client, acme, n, consent=True) for n in range(1, 4)]
    person(client, acme, 4, consent=False)  # concerned by nothing
    bounced = people[2]["email"]
    body = {"address": bounced, "channels": ["email"], "reason": "hard_bounce"}
    assert client.post("/v1/suppressions", json=body).status_code == 201
    v2 = publish(client)

    created = notify(client, v2["id"], channel="email", ask_acceptance=True)
    assert created.status_code == 202, created.text
    notice = created.json()
    assert (notice["kind"], notice["version"], notice["status"]) == (
        "consent_disclosure",
        2,
        "sending",
    )
    assert notice["report"] == {
        "targeted": 3, "waiting": 3, "sent": 0, "refused": {}, "failed": {}, "accepted": 0,
    }  # fmt: skip
    assert api.container.outbox().list(acme.id, limit=10) == []  # nothing sent in the request

    send_notices(api.container)
    report = client.get(f"/v1/policy-notices/{notice['id']}")
    assert report.status_code == 200, report.text
    assert report.json()["status"] == "done"
    assert report.json()["report"] == {
        "targeted": 3, "waiting": 0, "sent": 2, "refused": {"SUPPRESSED_HARD_BOUNCE": 1},
        "failed": {}, "accepted": 0,
    }  # fmt: skip
    assert sorted(notice_links(api, acme)) == sorted(p["email"] for p in people[:2])
    [listed] = client.get(f"/v1/policies/{v2['id']}/notices").json()
    assert listed["id"] == notice["id"]


def test_bad_requests_get_their_codes_and_write_nothing(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    person(client, acme, 1, consent=True)
    draft = client.post(
        "/v1/policies", json={"kind": "privacy_policy", "title": "Privacy", "body": "Draft"}
    ).json()
    v2 = publish(client)
    reader = api.issue_key(acme.slug, scopes=frozenset({Scope.CONSENT_READ}))
    before = api.counts()
    api.problem(notify(client, str(acme.disclosure_id)), 409, "NOTICE_NOT_NEEDED")
    api.problem(notify(client, draft["id"]), 404, "POLICY_DOCUMENT_NOT_FOUND")
    api.problem(notify(client, str(uuid.uuid4())), 404, "POLICY_DOCUMENT_NOT_FOUND")
    api.problem(
        notify(client, v2["id"], channel="whatsapp"), 422, "NOTICE_CHANNEL_INVALID", field="channel"
    )
    api.problem(notify(client, v2["id"], channel="fax"), 422, "VALIDATION_FAILED")
    api.problem(notify(client, v2["id"], extra=1), 422, "VALIDATION_FAILED")
    api.problem(client.get(f"/v1/policy-notices/{uuid.uuid4()}"), 404, "NOTICE_NOT_FOUND")
    api.problem(notify(api.client(reader.token), v2["id"]), 403, "FORBIDDEN")
    assert api.counts() == before


def test_an_idempotency_key_replays_the_notice_instead_of_queueing_another(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    person(client, acme, 1, consent=True)
    v2 = publish(client)
    headers = {"Idempotency-Key": uuid.uuid4().hex}
    first = client.post(f"/v1/policies/{v2['id']}/notices", json={}, headers=headers)
    again = client.post(f"/v1/policies/{v2['id']}/notices", json={}, headers=headers)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert len(client.get(f"/v1/policies/{v2['id']}/notices").json()) == 1
