"""Consent over HTTP: a grant with evidence, the history, a withdrawal and the gate's answer."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import httpx
from tests.e2e.api.conftest import DISCLOSURE, Api, Seeded

JANE = {"name": "Jane Roe", "email": "jane.roe@example.com", "phone": "07400 123456"}
WEB_FORM = {
    "method": "web_form",
    "source": "https://acme.example/signup",
    "ip_address": "203.0.113.9",
    "user_agent": "Mozilla/5.0 (X11; e2e)",
}


def grant(contact: str, disclosure: uuid.UUID, **extra: Any) -> dict[str, Any]:
    return {
        "contact": contact,
        "topic": "offers",
        "channel": "email",
        "evidence": WEB_FORM | {"policy_document_id": str(disclosure)},
    } | extra


def test_a_grant_is_recorded_with_its_evidence_and_shown_in_the_history(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json=JANE).json()
    recorded = client.post("/v1/consent", json=grant(jane["email"], acme.disclosure_id))
    assert recorded.status_code == 201, recorded.text
    first = recorded.json()
    assert first["seq"] == 1
    assert re.fullmatch(r"[0-9a-f]{64}", first["hash"])
    assert first["state"] == "active"

    second = client.post(
        "/v1/consent", json=grant(jane["id"], acme.disclosure_id, channel="sms")
    ).json()
    assert second["seq"] == 2
    assert second["hash"] != first["hash"]

    history = client.get(f"/v1/contacts/{jane['id']}/consent")
    assert history.status_code == 200
    events = history.json()
    assert [(e["seq"], e["channel"], e["action"]) for e in events] == [
        (1, "email", "granted"),
        (2, "sms", "granted"),
    ]
    event = events[0]
    assert event["id"] == first["event_id"]
    assert event["hash"] == first["hash"]
    assert event["topic"] == "offers"
    assert event["basis"] == "express"
    assert event["method"] == "web_form"
    assert event["source"] == WEB_FORM["source"]
    assert event["ip_address"] == WEB_FORM["ip_address"]
    assert event["user_agent"] == WEB_FORM["user_agent"]
    assert event["policy_document_id"] == str(acme.disclosure_id)
    assert event["disclosure_hash"] == "sha256:" + hashlib.sha256(DISCLOSURE.encode()).hexdigest()
    assert event["actor"] == acme.actor

    allowed = client.post(
        "/v1/decisions", json={"contact": jane["id"], "topic": "offers", "channel": "email"}
    ).json()
    assert allowed["verdict"] == "allow", allowed
    assert allowed["consent_event_id"] == first["event_id"]
    assert allowed["evidence"]["disclosure_hash"] == event["disclosure_hash"]


def test_a_withdrawal_turns_the_decision_to_deny_with_its_reason(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json=JANE).json()
    client.post("/v1/consent", json=grant(jane["id"], acme.disclosure_id))
    withdrawn = client.post(
        "/v1/consent",
        json={
            "contact": "+447400123456",
            "topic": "offers",
            "channel": "email",
            "action": "withdrawn",
            "evidence": {"method": "api"},
        },
    )
    assert withdrawn.status_code == 201, withdrawn.text
    assert withdrawn.json()["state"] == "withdrawn"

    decided = client.post(
        "/v1/decisions", json={"contact": jane["email"], "topic": "offers", "channel": "email"}
    )
    assert decided.status_code == 200, decided.text
    body = decided.json()
    assert body["contact_id"] == jane["id"]
    assert body["verdict"] == "deny"
    assert body["reasons"] == ["CONSENT_WITHDRAWN"]
    assert body["consent_event_id"] is None
    assert body["evidence"]["action"] == "withdrawn"
    assert body["evidence"]["event_id"] == withdrawn.json()["event_id"]
    checks = {c["rule"]: c for c in body["checks"]}
    assert checks["consent"]["outcome"] == "failed"
    assert checks["consent"]["reason"] == "CONSENT_WITHDRAWN"
    assert all(c["outcome"] != "failed" for r, c in checks.items() if r != "consent")
    assert body["rule_pack"]


def test_consent_that_cannot_be_proven_is_refused_and_nothing_is_written(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json={"email": "jane.roe@example.com"}).json()
    draft = client.post(
        "/v1/policies", json={"kind": "consent_disclosure", "title": "Draft", "body": "maybe"}
    ).json()
    before = api.counts()
    cases = [
        (
            grant(jane["id"], acme.disclosure_id) | {"evidence": {"method": "web_form"}},
            422,
            "EVIDENCE_INCOMPLETE",
            "source",
        ),
        (
            grant(jane["id"], uuid.UUID(draft["id"])),
            422,
            "DISCLOSURE_MISMATCH",
            "policy_document_id",
        ),
        (grant(jane["id"], uuid.uuid4()), 404, "POLICY_DOCUMENT_NOT_FOUND", None),
        (grant(jane["id"], acme.disclosure_id, channel="sms"), 422, "ADDRESS_MISSING", "channel"),
        (grant(jane["id"], acme.disclosure_id, topic="nope"), 404, "TOPIC_NOT_FOUND", "topic"),
        (grant("nobody@example.com", acme.disclosure_id), 404, "CONTACT_NOT_FOUND", "contact"),
        (
            grant(jane["id"], acme.disclosure_id, channel="pigeon"),
            422,
            "VALIDATION_FAILED",
            "channel",
        ),
    ]
    for payload, status, code, field in cases:
        api.problem(client.post("/v1/consent", json=payload), status, code, field=field)
    assert api.counts() == before
    api.problem(client.get(f"/v1/contacts/{uuid.uuid4()}/consent"), 404, "CONTACT_NOT_FOUND")


def test_a_time_without_a_zone_is_not_a_server_error(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json=JANE).json()
    before = api.counts()
    payload = grant(jane["id"], acme.disclosure_id, occurred_at="2024-01-01T09:30:00")
    response = client.post("/v1/consent", json=payload)
    assert response.status_code in {201, 422}, response.text
    if response.status_code == 422:  # refusing it is fine, as long as it names the field
        api.problem(response, 422, response.json()["code"], field="occurred_at")
        assert api.counts() == before


def test_consent_dated_in_the_future_is_refused(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    canadian = client.post("/v1/contacts", json={"email": "cam@example.ca", "country": "CA"})
    contact = canadian.json()["id"]
    implied = {
        "basis": "implied_relationship",
        "evidence": {"method": "api", "relationship": "purchase"},
    }
    before = api.counts()
    for occurred_at in ("2999-01-01T00:00:00Z", "9999-12-31T23:59:59Z"):
        response = client.post(
            "/v1/consent",
            json=grant(contact, acme.disclosure_id, occurred_at=occurred_at) | implied,
        )
        assert 400 <= response.status_code < 500, (occurred_at, response.text)
        assert response.json()["code"], response.text
    assert api.counts() == before
    decided = client.post(
        "/v1/decisions", json={"contact": contact, "topic": "offers", "channel": "email"}
    ).json()
    assert decided["verdict"] == "deny"
