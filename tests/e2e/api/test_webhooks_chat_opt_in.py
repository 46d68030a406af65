"""WhatsApp opt-in by click-to-chat: the prefilled message a link opens, sent by the person,
arrives through the signed Cloud API webhook and is recorded as consent with its message id."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from sqlalchemy import func, select
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_webhooks import (  # noqa: F401  (fixtures of the webhook tests)
    acme,
    client,
    decide,
    events,
    hooks,
    inbound_ids,
    mobile,
    person,
    post_whatsapp,
    provider,
    wamid,
    whatsapp_body,
)

from consentry.domain.chat_opt_in import prefilled_text
from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod
from consentry.domain.model import Category
from consentry.persistence.tables import consent_events, contacts
from consentry.services import tenancy
from consentry.services.consent import consent_history

FIXTURE = "webhook_inbound_message.json"


def chat(provider: httpx.Client, number: str, text: str) -> str:  # noqa: F811
    """The person sends ``text`` from ``number``; the webhook's message id."""
    [old_id] = inbound_ids(FIXTURE)
    message_id = wamid()
    body = json.loads(whatsapp_body(FIXTURE, number, ids={old_id: message_id}))
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = text
    answered = post_whatsapp(provider, json.dumps(body).encode())
    assert answered.status_code == 200, answered.text
    return message_id


def rows(api: Api, table: Any, tenant: Seeded) -> int:
    with api.container.engine.connect() as conn:
        query = select(func.count()).select_from(table).where(table.c.tenant_id == tenant.id)
        return int(conn.execute(query).scalar_one())


def test_a_new_number_asking_by_click_to_chat_gets_consent_with_the_message_as_evidence(
    hooks: Api,  # noqa: F811  (the fixtures imported above)
    acme: Seeded,  # noqa: F811
    client: httpx.Client,  # noqa: F811
    provider: httpx.Client,  # noqa: F811
) -> None:
    number = mobile()
    text = prefilled_text(acme.name, "Offers", acme.slug, "offers")
    before = rows(hooks, contacts, acme)

    message_id = chat(provider, number, text)

    assert events(hooks, "whatsapp", message_id) == [(message_id, "applied")]
    assert rows(hooks, contacts, acme) == before + 1
    [entry] = consent_history(hooks.container.uow(), acme.slug, number)
    event = entry.event
    assert (entry.topic_key, event.channel.value, event.action, event.basis) == (
        "offers", "whatsapp", ConsentAction.GRANTED, ConsentBasis.EXPRESS,
    )  # fmt: skip
    assert event.evidence.method is ConsentMethod.KEYWORD
    assert event.evidence.inbound_message_id == message_id
    assert event.evidence.note == text  # names the business and the topic
    found = client.get("/v1/contacts", params={"limit": 200}).json()["items"]
    contact = next(c for c in found if c.get("whatsapp") == number)
    assert decide(client, contact["id"], "whatsapp") == []


def test_a_known_number_keeps_its_contact_and_a_confirmed_topic_is_confirmed_at_once(
    hooks: Api,  # noqa: F811
    acme: Seeded,  # noqa: F811
    client: httpx.Client,  # noqa: F811
    provider: httpx.Client,  # noqa: F811
) -> None:
    tenancy.create_topic(
        hooks.container.uow(), acme.slug, key="news", name="Weekly news",
        category=Category.MARKETING, requires_double_opt_in=True,
    )  # fmt: skip
    number = mobile()
    jane = person(client, whatsapp=number)
    assert "NO_CONSENT" in decide(client, jane["id"], "whatsapp", "news")
    before = rows(hooks, contacts, acme)

    chat(provider, number, prefilled_text(acme.name, "Weekly news", acme.slug, "news"))

    assert rows(hooks, contacts, acme) == before
    [entry] = consent_history(hooks.container.uow(), acme.slug, jane["id"])
    assert (entry.event.action, entry.event.basis) == (
        ConsentAction.CONFIRMED, ConsentBasis.DOUBLE_OPT_IN,
    )  # fmt: skip
    assert decide(client, jane["id"], "whatsapp", "news") == []


def test_references_to_no_business_or_topic_and_refusals_record_nothing(
    hooks: Api,  # noqa: F811
    acme: Seeded,  # noqa: F811
    provider: httpx.Client,  # noqa: F811
) -> None:
    number = mobile()
    before = (rows(hooks, contacts, acme), rows(hooks, consent_events, acme))

    unknown_topic = chat(provider, number, f"Yes please. Ref: {acme.slug}/no-such-topic")
    unknown_tenant = chat(provider, number, "Yes please. Ref: no-such-business/offers")
    umbrella = chat(provider, number, f"Everything please. Ref: {acme.slug}/all-marketing")
    refusal = chat(provider, number, f"stop sending me this ref: {acme.slug}/offers")

    assert (rows(hooks, contacts, acme), rows(hooks, consent_events, acme)) == before
    for message_id in (unknown_topic, unknown_tenant, umbrella):
        # Kept and settled; a number we do not know has no service window to open either.
        assert events(hooks, "whatsapp", message_id) == [(message_id, "ignored")]
    assert events(hooks, "whatsapp", refusal) == [(refusal, "review")]


def test_the_form_page_offers_a_click_to_chat_link_for_whatsapp_boxes(
    serve: Any,
    provider: httpx.Client,  # noqa: F811
) -> None:
    api = serve(whatsapp_business_number="+44 7911 123456")
    tenant = api.tenant("chat")
    owner = api.client(tenant.token)
    made = owner.post(
        "/v1/forms",
        json={
            "key": "join",
            "title": "Join",
            "choices": [{"topic": "offers", "channel": "whatsapp"}],
            "privacy_url": "https://chat.example/privacy",
        },
    )
    assert made.status_code == 201, made.text

    page = api.client().get(f"/f/{tenant.slug}/join")

    assert page.status_code == 200
    assert (
        'href="https://wa.me/447911123456?text=Yes%2C%20send%20me%20Offers%20from%20' in page.text
    )
    assert f"Ref%3A%20{tenant.slug}%2Foffers" in page.text


def _whatsapp_sent(api: Api, tenant: Seeded, number: str, count: int) -> list[str]:
    """The texts captured to ``number`` once ``count`` have arrived (they go after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            json.loads(api.container.outbox().get(m.id).raw)["text"]["body"]
            for m in api.container.outbox().list(tenant.id, limit=50)
            if m.channel.value == "whatsapp" and m.recipient == number
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_whatsapp_keywords_and_opt_ins_are_answered_on_whatsapp_by_the_business(
    hooks: Api,  # noqa: F811
    acme: Seeded,  # noqa: F811
    client: httpx.Client,  # noqa: F811
    provider: httpx.Client,  # noqa: F811
) -> None:
    number = mobile()
    chat(provider, number, prefilled_text(acme.name, "Offers", acme.slug, "offers"))
    [welcome] = _whatsapp_sent(hooks, acme, number, 1)
    assert welcome == (
        f"{acme.name}: you are subscribed to Offers on WhatsApp. Reply STOP to opt out."
    )

    chat(provider, number, "STOP")
    chat(provider, number, "STOP")  # one confirmation, however often it is said

    texts = _whatsapp_sent(hooks, acme, number, 3)
    assert len(texts) == 2, texts
    assert texts[0].startswith(f"{acme.name}: You are unsubscribed"), texts


def test_a_number_known_for_sms_gets_one_whatsapp_contact_however_often_it_asks(
    hooks: Api,  # noqa: F811
    acme: Seeded,  # noqa: F811
    client: httpx.Client,  # noqa: F811
    provider: httpx.Client,  # noqa: F811
) -> None:
    number = mobile()
    person(client, phone=number)  # known for text messages only
    before = rows(hooks, contacts, acme)
    text = prefilled_text(acme.name, "Offers", acme.slug, "offers")

    chat(provider, number, text)
    chat(provider, number, text)

    assert rows(hooks, contacts, acme) == before + 1  # one contact for the WhatsApp number
    found = client.get("/v1/contacts", params={"limit": 200}).json()["items"]
    [on_whatsapp] = [c for c in found if c.get("whatsapp") == number]
    events = [e.event for e in consent_history(hooks.container.uow(), acme.slug,
                                                on_whatsapp["id"])]  # fmt: skip
    assert [e.action for e in events] == [ConsentAction.GRANTED, ConsentAction.GRANTED]
