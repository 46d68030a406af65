"""Transactional messages, templates and sender domains over HTTP.

Every test leaves nothing due behind (see test_campaigns): ``drain`` takes every due delivery.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_campaigns import OFFER, POSTAL, shop

from consentry.domain.access import Scope
from consentry.workers.inprocess import drain

BOOKED = {
    "name": "booked",
    "topic": "reminders",
    "channel": "email",
    "subject": "Booked",
    "text": "See you at {{ data.when }}, {{ contact.first_name }}.",
}


def service_consent(client: httpx.Client, contact: str, action: str = "granted") -> None:
    recorded = client.post(
        "/v1/consent",
        json={
            "contact": contact,
            "topic": "all-service",
            "channel": "email",
            "action": action,
            "basis": "service_necessity",
            "evidence": {"method": "api"},
        },
    )
    assert recorded.status_code == 201, recorded.text


@pytest.fixture
def jane(client: httpx.Client) -> dict[str, Any]:
    """A customer who may get service email, and a template to send her."""
    shop(client)
    assert client.post("/v1/templates", json=BOOKED).status_code == 201
    contact: dict[str, Any] = client.post(
        "/v1/contacts", json={"name": "Jane Roe", "email": "jane.roe@example.com"}
    ).json()
    service_consent(client, contact["id"])
    return contact


def message(contact: str, **data: str) -> dict[str, Any]:
    return {"contact": contact, "template": "booked", "data": data}


def test_a_message_is_queued_through_the_gate_and_sent_by_the_workers(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    accepted = client.post("/v1/messages", json=message(jane["email"], when="9:00"))
    assert accepted.status_code == 202, accepted.text
    body = accepted.json()
    assert (body["status"], body["verdict"], body["reasons"]) == ("queued", "allow", [])
    assert body["consent_event_id"] is not None
    # Nothing is dispatched inside the request without a broker.
    queued = client.get(f"/v1/messages/{body['id']}").json()
    assert (queued["status"], queued["contact_id"], queued["campaign_id"]) == (
        "queued",
        jane["id"],
        None,
    )
    assert "jane" not in json.dumps(queued).lower()

    drain(api.container)
    sent = client.get(f"/v1/messages/{body['id']}").json()
    assert sent["status"] == "sent"
    assert sent["sent_at"] is not None
    assert sent["attempts"] == 1

    missing_data = client.post("/v1/messages", json=message(jane["id"])).json()
    drain(api.container)
    failed = client.get(f"/v1/messages/{missing_data['id']}").json()
    assert failed["status"] == "failed"
    assert failed["error_code"] == "TEMPLATE_RENDER_FAILED"


def test_the_same_idempotency_key_sends_one_message(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    headers = {"Idempotency-Key": "booking-7"}
    before = api.counts()["deliveries"]
    first = client.post("/v1/messages", json=message(jane["id"], when="9:00"), headers=headers)
    assert first.status_code == 202, first.text
    again = client.post("/v1/messages", json=message(jane["id"], when="9:00"), headers=headers)
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    # Another credential of the tenant (so not the HTTP replay): the message itself is keyed.
    other = api.client(api.issue_key(acme.slug).token)
    retried = other.post("/v1/messages", json=message(jane["id"], when="9:00"), headers=headers)
    assert retried.status_code == 202, retried.text
    assert "idempotent-replayed" not in retried.headers
    assert retried.json()["id"] == first.json()["id"]
    assert api.counts()["deliveries"] == before + 1

    drain(api.container)
    assert other.get(f"/v1/messages/{first.json()['id']}").json()["status"] == "sent"
    once_more = other.post("/v1/messages", json=message(jane["id"], when="9:00"), headers=headers)
    assert once_more.json()["id"] == first.json()["id"]
    assert api.counts()["deliveries"] == before + 1


def test_a_contact_who_withdrew_gets_nothing_and_the_reasons_say_why(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    service_consent(client, jane["id"], "withdrawn")
    refused = client.post("/v1/messages", json=message(jane["id"], when="9:00"))
    assert refused.status_code == 202, refused.text
    body = refused.json()
    assert (body["status"], body["verdict"]) == ("suppressed", "deny")
    assert "CONSENT_WITHDRAWN" in body["reasons"]
    captured = api.counts()["captured_messages"]
    drain(api.container)
    stored = client.get(f"/v1/messages/{body['id']}").json()
    assert (stored["status"], stored["reasons"]) == ("suppressed", body["reasons"])
    assert api.counts()["captured_messages"] == captured


def test_unknown_and_wrong_references_are_refused_with_stable_codes(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    assert client.post("/v1/templates", json=OFFER).status_code == 201
    before = api.counts()
    for body, status, code in (
        (message(jane["id"]) | {"template": "nope"}, 404, "TEMPLATE_NOT_FOUND"),
        (message(jane["id"]) | {"template": str(uuid.uuid4())}, 404, "TEMPLATE_NOT_FOUND"),
        (message(str(uuid.uuid4())), 404, "CONTACT_NOT_FOUND"),
        (message("nobody@example.com"), 404, "CONTACT_NOT_FOUND"),
        (message(jane["id"]) | {"template": "offer"}, 422, "INVALID_VALUE"),  # marketing
        (message(jane["id"]) | {"data": [1]}, 422, "VALIDATION_FAILED"),
        ({"contact": jane["id"]}, 422, "VALIDATION_FAILED"),
    ):
        api.problem(client.post("/v1/messages", json=body), status, code)
    assert api.counts() == before
    for message_id in (2**62, 1_000_000):
        api.problem(client.get(f"/v1/messages/{message_id}"), 404, "DELIVERY_NOT_FOUND")
    for message_id in ("0", "abc", str(2**63)):
        api.problem(client.get(f"/v1/messages/{message_id}"), 422, "VALIDATION_FAILED")
    api.problem(
        client.post("/v1/messages", json=message(jane["id"]), headers={"Idempotency-Key": ""}),
        422,
        "IDEMPOTENCY_KEY_INVALID",
    )


def test_templates_are_validated_listed_and_previewed(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    listed = client.get("/v1/templates").json()
    assert [t["name"] for t in listed] == ["booked"]
    assert listed[0]["subject"] == "Booked"
    api.problem(client.post("/v1/templates", json=BOOKED), 409, "ALREADY_EXISTS", field="name")
    for change, code in (
        ({"channel": "pigeon"}, "VALIDATION_FAILED"),
        ({"text": "Hi {{ contact.first_name"}, "TEMPLATE_INVALID"),
        ({"text": "Hi {{ secret }}"}, "TEMPLATE_INVALID"),
        ({"topic": "nope"}, "TOPIC_NOT_FOUND"),
    ):
        status = 404 if code.endswith("NOT_FOUND") else 422
        api.problem(
            client.post("/v1/templates", json=BOOKED | {"name": "x"} | change), status, code
        )

    sample = client.get("/v1/templates/booked/preview", params={"data": '{"when": "9:00"}'})
    assert sample.status_code == 200, sample.text
    shown = sample.json()
    assert shown["subject"] == "Booked"
    assert "See you at 9:00" in shown["text"]
    assert shown["sms"] is None
    assert shown["passed"] is True
    as_jane = client.get(
        f"/v1/templates/{listed[0]['id']}/preview",
        params={"contact": jane["email"], "data": json.dumps({"when": "10:30"})},
    ).json()
    assert "See you at 10:30, Jane." in as_jane["text"]
    api.problem(
        client.get("/v1/templates/booked/preview"), 422, "TEMPLATE_RENDER_FAILED", field="text"
    )
    for data in ("[1]", "{nope", "[" * 5000):
        api.problem(
            client.get("/v1/templates/booked/preview", params={"data": data}),
            422,
            "INVALID_VALUE",
            field="data",
        )
    api.problem(client.get("/v1/templates/nope/preview"), 404, "TEMPLATE_NOT_FOUND")

    sms = {"name": "sms-offer", "topic": "offers", "channel": "sms"}
    made = client.post("/v1/templates", json=sms | {"text": "Réservation confirmée ✓ " * 4})
    assert made.status_code == 201, made.text
    segments = client.get("/v1/templates/sms-offer/preview").json()
    assert segments["sms"]["encoding"] == "UCS-2"
    assert segments["sms"]["segments"] >= 2
    assert "STOP" in segments["text"]  # the opt-out instruction is added, not left to the author

    assert (
        client.post("/v1/templates", json=OFFER | {"name": "loud", "subject": "RE: hi"}).status_code
        == 201
    )
    loud = client.get("/v1/templates/loud/preview").json()
    assert loud["passed"] is False
    assert {"code": "DECEPTIVE_SUBJECT", "severity": "error"}.items() <= loud["findings"][0].items()
    assert POSTAL in loud["text"]


def test_preview_as_a_contact_needs_the_contacts_scope(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    designer = api.client(api.issue_key(acme.slug, scopes=frozenset({Scope.TEMPLATES_READ})).token)
    data = {"data": '{"when": "9:00"}'}
    assert designer.get("/v1/templates/booked/preview", params=data).status_code == 200
    api.problem(
        designer.get("/v1/templates/booked/preview", params=data | {"contact": jane["id"]}),
        403,
        "FORBIDDEN",
    )
    api.problem(designer.post("/v1/messages", json=message(jane["id"])), 403, "FORBIDDEN")


def test_sender_domains_give_the_dkim_record_to_publish(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    signed = client.post(
        "/v1/sender-domains", json={"domain": "Mail.Acme.example.", "dkim_selector": "s1"}
    )
    assert signed.status_code == 201, signed.text
    body = signed.json()
    assert (body["domain"], body["dkim_selector"], body["has_dkim_key"]) == (
        "mail.acme.example",
        "s1",
        True,
    )
    record = body["dkim_record"]
    assert (record["type"], record["name"]) == ("TXT", "s1._domainkey.mail.acme.example")
    assert record["value"].startswith("v=DKIM1; k=rsa; p=")
    plain = client.post("/v1/sender-domains", json={"domain": "acme.example"}).json()
    assert plain["dkim_record"] is None
    listed = client.get("/v1/sender-domains").json()
    assert [d["domain"] for d in listed] == ["acme.example", "mail.acme.example"]
    assert "dkim_record" not in listed[0]
    operator = api.client(api.issue_key(acme.slug).token)  # tenant operators lack admin
    before = api.counts()
    api.problem(
        client.post("/v1/sender-domains", json={"domain": "acme.example"}), 409, "ALREADY_EXISTS"
    )
    api.problem(
        client.post("/v1/sender-domains", json={"domain": "not a domain"}), 422, "INVALID_VALUE"
    )
    api.problem(
        client.post("/v1/sender-domains", json={"domain": "b.example", "dkim_selector": "a.b"}),
        422,
        "INVALID_VALUE",
        field="dkim_selector",
    )
    api.problem(operator.post("/v1/sender-domains", json={"domain": "c.example"}), 403, "FORBIDDEN")
    assert api.counts() == before


def test_another_tenant_can_neither_read_nor_reach_a_message(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    joe = client.post("/v1/contacts", json={"email": "joe@example.com"}).json()
    sent = client.post("/v1/messages", json=message(joe["id"], when="9:00")).json()
    assert sent["status"] == "suppressed"  # no consent: nothing left queued
    bravo = api.tenant("bravo")
    other = api.client(bravo.token)
    other.put("/v1/profile", json={"legal_name": "Bravo Ltd", "country": "GB"})
    other.post("/v1/sender-domains", json={"domain": "bravo.example"})
    assert other.post("/v1/templates", json=BOOKED | {"name": "bravo-booked"}).status_code == 201
    before = api.counts()

    theirs = api.problem(other.get(f"/v1/messages/{sent['id']}"), 404, "DELIVERY_NOT_FOUND")
    assert theirs["detail"] == f"delivery {sent['id']} not found"
    for ref in (jane["id"], jane["email"]):
        api.problem(
            other.post("/v1/messages", json=message(ref) | {"template": "bravo-booked"}),
            404,
            "CONTACT_NOT_FOUND",
        )
        api.problem(
            other.get("/v1/templates/bravo-booked/preview", params={"contact": ref}),
            404,
            "CONTACT_NOT_FOUND",
        )
    for ref in ("booked", client.get("/v1/templates").json()[0]["id"]):
        api.problem(other.get(f"/v1/templates/{ref}/preview"), 404, "TEMPLATE_NOT_FOUND")
    assert [t["name"] for t in other.get("/v1/templates").json()] == ["bravo-booked"]
    assert [d["domain"] for d in other.get("/v1/sender-domains").json()] == ["bravo.example"]
    assert api.counts() == before


def test_with_a_broker_a_queued_message_is_handed_to_the_workers(
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
    assert client.post("/v1/templates", json=BOOKED).status_code == 201
    jane = client.post("/v1/contacts", json={"email": "jane@example.com"}).json()
    refused = client.post("/v1/messages", json=message(jane["id"], when="9:00")).json()
    assert refused["status"] == "suppressed"
    assert queued == []
    service_consent(client, jane["id"])
    headers = {"Idempotency-Key": "k"}
    client.post("/v1/messages", json=message(jane["id"], when="9:00"), headers=headers)
    assert queued == [None]
    other = api.client(api.issue_key(acme.slug).token)
    other.post("/v1/messages", json=message(jane["id"], when="9:00"), headers=headers)
    assert queued == [None]  # the same message: not handed over twice
    drain(api.container)
