"""SendGrid's Event Webhook over HTTP: signed batches of bounces and spam reports about messages
consentry sent, tied to them by their Message-ID (``smtp-id``)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import select
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_campaigns import shop
from tests.e2e.api.test_webhooks import changed, consent, decide, events, person

from consentry.persistence.tables import deliveries, inbound_events
from consentry.workers.inprocess import drain

PATH = "/webhooks/sendgrid"
KEY = ec.generate_private_key(ec.SECP256R1())
PUBLIC_KEY = base64.b64encode(
    KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
).decode()


@pytest.fixture
def hooks(serve: Callable[..., Api]) -> Api:
    return serve(sendgrid_webhook_public_key=PUBLIC_KEY)


@pytest.fixture
def acme(hooks: Api) -> Seeded:
    return hooks.tenant("acme")


@pytest.fixture
def client(hooks: Api, acme: Seeded) -> httpx.Client:
    client = hooks.client(acme.token)
    shop(client)
    return client


def signed(body: bytes, *, at: float | None = None, key: Any = KEY) -> dict[str, str]:
    stamp = str(int(time.time() if at is None else at))
    signature = key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
    }


def sent_email(hooks: Api, client: httpx.Client, acme: Seeded) -> tuple[str, str, int, str]:
    """A person with an address, a service email sent to them: (contact id, address,
    delivery id, the email's Message-ID)."""
    address = f"jane.{uuid.uuid4().hex[:10]}@example.com"
    jane = person(client, email=address)
    consent(client, acme, jane["id"], "email", "reminders", "service_necessity")
    name = f"booked-{uuid.uuid4().hex[:8]}"
    template = {"name": name, "topic": "reminders", "channel": "email",
                "subject": "Your booking", "text": "See you at nine."}  # fmt: skip
    assert client.post("/v1/templates", json=template).status_code == 201
    queued = client.post("/v1/messages", json={"contact": jane["id"], "template": name})
    assert queued.status_code == 202, queued.text
    delivery_id = int(queued.json()["id"])
    drain(hooks.container)
    with hooks.container.engine.connect() as conn:
        message_id = conn.execute(
            select(deliveries.c.message_id).where(deliveries.c.id == delivery_id)
        ).scalar_one()
    assert message_id
    return jane["id"], address, delivery_id, message_id


def event(kind: str, address: str, message_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "email": address,
        "timestamp": int(time.time()),
        "smtp-id": f"<{message_id}>",
        "event": kind,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": uuid.uuid4().hex,
        **fields,
    }


def test_a_hard_bounce_suppresses_the_address_once_and_fails_the_delivery(
    hooks: Api, acme: Seeded, client: httpx.Client
) -> None:
    contact, address, delivery_id, message_id = sent_email(hooks, client, acme)
    assert decide(client, contact, "email", "reminders") == []
    reason = "550 5.1.1 The email account that you tried to reach does not exist."
    bounce = event("bounce", address, message_id, type="bounce", status="5.1.1", reason=reason)
    noise = event("delivered", "someone@example.org", "elsewhere@example.org")
    body = json.dumps([bounce, noise]).encode()
    provider = hooks.client()

    answer = provider.post(PATH, content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text

    assert decide(client, contact, "email", "reminders") == ["SUPPRESSED_HARD_BOUNCE"]
    assert client.get(f"/v1/messages/{delivery_id}").json()["status"] == "bounced"
    assert events(hooks, "provider", bounce["sg_event_id"]) == [(bounce["sg_event_id"], "applied")]
    with hooks.container.engine.connect() as conn:
        stored = conn.execute(
            select(inbound_events.c.content_type).where(
                inbound_events.c.event_id == noise["sg_event_id"]
            )
        ).scalar_one()
    assert stored == "application/json"  # each event kept as its own record

    # SendGrid retries: the same batch again applies nothing.
    before = hooks.counts()
    again = provider.post(PATH, content=body, headers=signed(body))
    assert again.status_code == 200
    assert changed(before, hooks.counts()) == {}


def test_a_spam_report_suppresses_and_opens_a_complaint_case(
    hooks: Api, acme: Seeded, client: httpx.Client
) -> None:
    contact, address, delivery_id, message_id = sent_email(hooks, client, acme)
    report = event("spamreport", address, message_id)
    body = json.dumps([report]).encode()
    before = hooks.counts()

    answer = hooks.client().post(PATH, content=body, headers=signed(body))
    assert answer.status_code == 200, answer.text

    assert decide(client, contact, "email", "reminders") == ["SUPPRESSED_COMPLAINT"]
    assert client.get(f"/v1/messages/{delivery_id}").json()["status"] == "complained"
    grew = changed(before, hooks.counts())
    assert grew["complaint_cases"] == 1
    assert grew["suppressions"] == 1


def test_a_report_naming_a_message_we_did_not_send_changes_nothing(
    hooks: Api, acme: Seeded, client: httpx.Client
) -> None:
    contact, address, _, _ = sent_email(hooks, client, acme)
    forged = event("bounce", address, "not-ours@elsewhere.example", type="bounce", status="5.1.1")
    body = json.dumps([forged]).encode()
    before = hooks.counts()
    assert hooks.client().post(PATH, content=body, headers=signed(body)).status_code == 200
    assert changed(before, hooks.counts()) == {"inbound_events": 1}
    assert events(hooks, "provider", forged["sg_event_id"]) == [
        (forged["sg_event_id"], "unattributed")
    ]
    assert decide(client, contact, "email", "reminders") == []


def test_unsigned_stale_or_foreign_signatures_are_refused_and_leave_no_trace(
    hooks: Api, acme: Seeded, client: httpx.Client
) -> None:
    contact, address, _, message_id = sent_email(hooks, client, acme)
    body = json.dumps([event("bounce", address, message_id, status="5.1.1")]).encode()
    other = ec.generate_private_key(ec.SECP256R1())
    before = hooks.counts()
    provider = hooks.client()
    for headers in (
        {"Content-Type": "application/json"},
        signed(body, at=time.time() - 3600),
        signed(body, key=other),
        signed(body + b" "),
    ):
        answer = provider.post(PATH, content=body, headers=headers)
        hooks.problem(answer, 401, "WEBHOOK_SIGNATURE_INVALID")
    assert hooks.counts() == before
    assert decide(client, contact, "email", "reminders") == []


def test_a_signed_body_that_is_no_batch_is_kept_as_rejected(hooks: Api) -> None:
    body = b'{"event": "bounce"}'
    before = hooks.counts()
    answer = hooks.client().post(PATH, content=body, headers=signed(body))
    hooks.problem(answer, 400, "INVALID_INPUT")
    assert changed(before, hooks.counts()) == {"inbound_events": 1}
    with hooks.container.engine.connect() as conn:
        status = conn.execute(
            select(inbound_events.c.status).order_by(inbound_events.c.id.desc()).limit(1)
        ).scalar_one()
    assert status == "rejected"


def test_without_a_key_the_endpoint_is_not_configured(api: Api) -> None:
    body = b"[]"
    answer = api.client().post(PATH, content=body, headers=signed(body))
    api.problem(answer, 404, "WEBHOOK_NOT_CONFIGURED")
