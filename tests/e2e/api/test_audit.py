"""Guarantee: every read or change of personal data through the API is in the audit log."""

from __future__ import annotations

import uuid

import httpx
from tests.e2e.api.conftest import Api, Seeded

from consentry.services.audit import verify_audit

WEB_FORM = {
    "method": "web_form",
    "source": "https://acme.example/signup",
    "ip_address": "203.0.113.9",
    "user_agent": "Mozilla/5.0",
}


def test_each_access_to_personal_data_is_recorded_and_the_chain_verifies(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    steps: list[tuple[str, str]] = []  # (action, request id) in the order they were made

    def call(action: str, method: str, path: str, body: object = None) -> httpx.Response:
        request_id = uuid.uuid4().hex
        response = client.request(method, path, json=body, headers={"X-Request-Id": request_id})
        assert response.status_code < 300, response.text
        assert response.headers["x-request-id"] == request_id
        steps.append((action, request_id))
        return response

    jane = call("contact.create", "POST", "/v1/contacts", {"email": "jane@example.com"}).json()
    call("contact.read", "GET", f"/v1/contacts/{jane['id']}")
    call("contact.read", "POST", "/v1/contacts/lookup", {"address": "jane@example.com"})
    call("contact.list", "GET", "/v1/contacts")
    call(
        "contact.update",
        "PUT",
        f"/v1/contacts/{jane['id']}",
        {"email": "jane@example.com", "name": "Jane"},
    )
    call(
        "consent.granted",
        "POST",
        "/v1/consent",
        {
            "contact": jane["id"],
            "topic": "offers",
            "channel": "email",
            "evidence": WEB_FORM | {"policy_document_id": str(acme.disclosure_id)},
        },
    )
    call("consent.read", "GET", f"/v1/contacts/{jane['id']}/consent")
    call(
        "decision.read",
        "POST",
        "/v1/decisions",
        {"contact": jane["id"], "topic": "offers", "channel": "email"},
    )
    call(
        "consent.withdrawn",
        "POST",
        "/v1/consent",
        {
            "contact": jane["id"],
            "topic": "offers",
            "channel": "email",
            "action": "withdrawn",
            "evidence": {"method": "api"},
        },
    )
    call("contact.erase", "DELETE", f"/v1/contacts/{jane['id']}")

    entries = sorted(api.audit(acme.id), key=lambda e: e.seq)
    assert [(e.action, e.request_id) for e in entries] == steps
    for entry in entries:
        assert entry.actor == acme.actor
        assert entry.tenant_id == acme.id
        assert entry.ip_digest  # the address only as a keyed digest
        assert "127.0.0.1" not in entry.ip_digest
        if entry.action != "contact.list":
            assert entry.object_type == "contact"
            assert entry.object_id == jane["id"]
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))

    report = verify_audit(api.container.uow(), acme.id)
    assert report.broken is None
    assert report.verified == report.head_seq == len(steps)


def test_batch_decisions_record_each_contact_and_refusals_record_nothing(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json={"email": "jane@example.com"}).json()
    john = client.post("/v1/contacts", json={"email": "john@example.com"}).json()
    baseline = len(api.audit(acme.id))

    item = {"topic": "offers", "channel": "email"}
    batch = client.post(
        "/v1/decisions/batch",
        json={
            "items": [
                item | {"contact": jane["id"]},
                item | {"contact": "ghost@example.com"},
                item | {"contact": john["email"]},
            ]
        },
    )
    assert batch.status_code == 200
    new = sorted(api.audit(acme.id), key=lambda e: e.seq)[baseline:]
    assert [(e.action, e.object_id) for e in new] == [
        ("decision.read", jane["id"]),
        ("decision.read", john["id"]),
    ]

    baseline += len(new)
    client.get(f"/v1/contacts/{uuid.uuid4()}")
    client.post("/v1/contacts", json={"email": "bad@"})
    assert len(api.audit(acme.id)) == baseline
    assert verify_audit(api.container.uow(), acme.id).broken is None
