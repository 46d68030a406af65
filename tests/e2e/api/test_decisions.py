"""Decisions one at a time and in batches."""

from __future__ import annotations

import uuid

import httpx
from tests.e2e.api.conftest import Api, Seeded


def test_a_batch_answers_each_item_or_names_its_error(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json={"email": "jane.roe@example.com"}).json()
    client.post(
        "/v1/consent",
        json={
            "contact": jane["id"],
            "topic": "offers",
            "channel": "email",
            "evidence": {
                "method": "web_form",
                "source": "https://acme.example/signup",
                "ip_address": "203.0.113.9",
                "user_agent": "Mozilla/5.0",
                "policy_document_id": str(acme.disclosure_id),
            },
        },
    )
    batch = client.post(
        "/v1/decisions/batch",
        json={
            "items": [
                {"contact": jane["id"], "topic": "offers", "channel": "email"},
                {"contact": str(uuid.uuid4()), "topic": "offers", "channel": "email"},
                {"contact": jane["email"], "topic": "offers", "channel": "sms"},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    first, second, third = batch.json()
    assert [first["index"], second["index"], third["index"]] == [0, 1, 2]
    assert first["error"] is None
    assert first["decision"]["verdict"] == "allow"
    assert second["decision"] is None
    assert second["error"]["code"] == "CONTACT_NOT_FOUND"
    assert second["error"]["field"] == "contact"
    assert third["decision"]["verdict"] == "deny"
    assert third["decision"]["reasons"] == ["ADDRESS_MISSING"]


def test_a_batch_is_limited_to_a_thousand_items(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    item = {"contact": "nobody@example.com", "topic": "offers", "channel": "email"}
    before = api.counts()
    api.problem(
        client.post("/v1/decisions/batch", json={"items": [item] * 1001}),
        422,
        "VALIDATION_FAILED",
        field="items",
    )
    api.problem(client.post("/v1/decisions/batch", json={"items": []}), 422, "VALIDATION_FAILED")
    assert api.counts() == before


def test_a_decision_names_what_it_could_not_find(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json={"email": "jane.roe@example.com"}).json()
    api.problem(
        client.post(
            "/v1/decisions", json={"contact": jane["id"], "topic": "nope", "channel": "email"}
        ),
        404,
        "TOPIC_NOT_FOUND",
        field="topic",
    )
    api.problem(
        client.post(
            "/v1/decisions",
            json={"contact": "ghost@example.com", "topic": "offers", "channel": "email"},
        ),
        404,
        "CONTACT_NOT_FOUND",
        field="contact",
    )
    no_consent = client.post(
        "/v1/decisions", json={"contact": jane["id"], "topic": "offers", "channel": "email"}
    ).json()
    assert no_consent["verdict"] == "deny"
    assert no_consent["reasons"] == ["NO_CONSENT"]
