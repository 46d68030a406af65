"""Decisions one at a time and in batches."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.e2e.api.conftest import Api, Seeded


def _consent(acme: Seeded, client: httpx.Client, contact: str, action: str) -> httpx.Response:
    return client.post(
        "/v1/consent",
        json={
            "contact": contact,
            "topic": "offers",
            "channel": "email",
            "action": action,
            "evidence": {
                "method": "web_form",
                "source": "https://acme.example/signup",
                "ip_address": "203.0.113.9",
                "user_agent": "Mozilla/5.0",
                "policy_document_id": str(acme.disclosure_id),
            },
        },
    )


def test_a_batch_answers_each_item_or_names_its_error(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json={"email": "jane.roe@example.com"}).json()
    assert _consent(acme, client, jane["id"], "granted").status_code == 201
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


@pytest.mark.parametrize("inline", [True, False], ids=["inline", "thread-pool"])
def test_short_requests_answer_alike_on_the_event_loop_and_on_worker_threads(
    serve: Callable[..., Api], inline: bool
) -> None:
    """``http_inline`` moves the API-key check and decisions between the event loop and the
    thread pool (on PostgreSQL); what the service answers and writes is the same either way,
    also when many requests arrive at once and consent writes queue on the tenant's ledger."""
    api = serve(http_inline=inline)
    acme = api.tenant("acme")
    client = api.client(acme.token)
    people = [
        client.post("/v1/contacts", json={"email": f"p{n}@example.com"}).json()["id"]
        for n in range(12)
    ]
    with ThreadPoolExecutor(6) as pool:
        granted = list(pool.map(lambda p: _consent(acme, api.client(acme.token), p, "granted"),
                                people))  # fmt: skip
    assert [r.status_code for r in granted] == [201] * len(people), [r.text for r in granted]
    seqs = sorted(r.json()["seq"] for r in granted)
    assert seqs == list(range(seqs[0], seqs[0] + len(people)))  # one chain, no gap, no repeat

    def decide(person: str) -> str:
        answer = api.client(acme.token).post(
            "/v1/decisions", json={"contact": person, "topic": "offers", "channel": "email"}
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["verdict"])

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(decide, people)) == ["allow"] * len(people)
    assert _consent(acme, client, people[0], "withdrawn").status_code == 201
    assert decide(people[0]) == "deny"
    api.problem(
        api.client("csk_not-a-key").post(
            "/v1/decisions", json={"contact": people[1], "topic": "offers", "channel": "email"}
        ),
        401,
        "UNAUTHENTICATED",
    )
