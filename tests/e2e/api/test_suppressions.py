"""Suppressions over HTTP: block an address, list the blocks, lift only what may be lifted."""

from __future__ import annotations

import uuid

import httpx
from tests.e2e.api.conftest import Api, Seeded


def test_suppressions_are_created_listed_and_lifted_where_allowed(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post(
        "/v1/contacts", json={"email": "jane.roe@example.com", "phone": "07400 123456"}
    ).json()
    manual = client.post(
        "/v1/suppressions",
        json={"address": "+447400123456", "channels": ["sms", "voice"], "note": "asked by phone"},
    )
    assert manual.status_code == 201, manual.text
    assert {(s["channel"], s["reason"], s["scope"]) for s in manual.json()} == {
        ("sms", "manual", "all"),
        ("voice", "manual", "all"),
    }
    bounce = client.post(
        "/v1/suppressions",
        json={"address": "JANE.ROE@example.com", "channels": ["email"], "reason": "hard_bounce"},
    )
    assert bounce.status_code == 201, bounce.text
    [bounced] = bounce.json()

    repeated = client.post(
        "/v1/suppressions",
        json={"address": "jane.roe@example.com", "channels": ["email"], "reason": "hard_bounce"},
    )
    assert [s["id"] for s in repeated.json()] == [bounced["id"]]  # the same block, not a second

    listed = {s["id"]: s for s in client.get("/v1/suppressions").json()}
    assert {s["id"] for s in manual.json()} | {bounced["id"]} == set(listed)
    assert listed[bounced["id"]]["reason"] == "hard_bounce"
    assert listed[bounced["id"]]["lifted_at"] is None

    denied = client.post(
        "/v1/decisions", json={"contact": jane["id"], "topic": "reminders", "channel": "email"}
    ).json()
    assert "SUPPRESSED_HARD_BOUNCE" in denied["reasons"]

    before = api.counts()
    api.problem(client.delete(f"/v1/suppressions/{bounced['id']}"), 409, "SUPPRESSION_NOT_LIFTABLE")
    assert api.counts() == before
    assert bounced["id"] in {s["id"] for s in client.get("/v1/suppressions").json()}

    sms = next(s for s in manual.json() if s["channel"] == "sms")
    lifted = client.delete(f"/v1/suppressions/{sms['id']}")
    assert lifted.status_code == 200, lifted.text
    assert lifted.json()["lifted_at"] is not None
    active = {s["id"] for s in client.get("/v1/suppressions").json()}
    assert sms["id"] not in active
    everything = client.get("/v1/suppressions", params={"include_lifted": "true"}).json()
    assert sms["id"] in {s["id"] for s in everything}

    api.problem(client.delete(f"/v1/suppressions/{uuid.uuid4()}"), 404, "SUPPRESSION_NOT_FOUND")


def test_bad_suppressions_are_refused(api: Api, acme: Seeded, client: httpx.Client) -> None:
    before = api.counts()
    api.problem(
        client.post(
            "/v1/suppressions", json={"address": "jane@example.com", "channels": ["email", "sms"]}
        ),
        422,
        "INVALID_VALUE",
        field="channel",
    )
    api.problem(
        client.post("/v1/suppressions", json={"address": "not-an-email", "channels": ["email"]}),
        422,
        "INVALID_EMAIL",
    )
    api.problem(
        client.post("/v1/suppressions", json={"address": "jane@example.com", "channels": []}),
        422,
        "VALIDATION_FAILED",
        field="channels",
    )
    api.problem(
        client.post(
            "/v1/suppressions",
            json={"address": "jane@example.com", "channels": ["email"], "reason": "bored"},
        ),
        422,
        "VALIDATION_FAILED",
        field="reason",
    )
    assert api.counts() == before
