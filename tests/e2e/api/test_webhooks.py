"""Provider webhooks over HTTP: Twilio SMS and the WhatsApp Cloud API, signed as the providers
sign them, fed with their recorded payloads (tests/fixtures/twilio, tests/fixtures/whatsapp).

The PostgreSQL database is shared by the tests, and the signal pipeline de-duplicates on the
provider's event id and applies keywords to a number platform-wide: every test uses numbers and
message ids of its own, written into the recorded payloads.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
import phonenumbers
import pytest
from sqlalchemy import select
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_campaigns import WEB_FORM

from consentry.bootstrap import INLINE_LOCK_TIMEOUT_MS
from consentry.domain.model import Channel
from consentry.persistence.fences import SqlFences
from consentry.persistence.tables import contacts, deliveries, inbound_events
from consentry.workers.inprocess import drain

FIXTURES = Path(__file__).parents[2] / "fixtures"
PUBLIC_BASE_URL = "https://hooks.consentry.example"
TWILIO_PATH = "/webhooks/twilio/sms"
WHATSAPP_PATH = "/webhooks/whatsapp"
ACCOUNT_SID = "AC3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f"  # the account of the recorded payloads
AUTH_TOKEN = "9c1e5b7a3f0d2c4e6a8b0d2f4e6a8c0b"
APP_SECRET = "e2e-meta-app-secret"
VERIFY_TOKEN = "e2e-verify-token"
HELP_CONTACT = "help@acme.example"
FORM = "application/x-www-form-urlencoded"
TWIML = "text/xml"


@pytest.fixture
def hooks(serve: Callable[..., Api]) -> Api:
    """The app with both providers' webhook credentials configured, behind a public URL."""
    return serve(
        public_base_url=PUBLIC_BASE_URL,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        whatsapp_app_secret=APP_SECRET,
        whatsapp_verify_token=VERIFY_TOKEN,
        sms_help_contact=HELP_CONTACT,
    )


@pytest.fixture
def acme(hooks: Api) -> Seeded:
    return hooks.tenant("acme")


@pytest.fixture
def client(hooks: Api, acme: Seeded) -> httpx.Client:
    return hooks.client(acme.token)


@pytest.fixture
def provider(hooks: Api) -> httpx.Client:
    """What calls the webhooks: no credential of ours."""
    return hooks.client()


# --- numbers and ids of this test only ----------------------------------------------------------


def mobile() -> str:
    """A valid UK mobile number (E.164), random: tests that share a database must not share
    a number, since a keyword applies to it platform-wide."""
    while True:
        number = f"+447400{random.randrange(10**6):06d}"  # noqa: S311  (not a secret)
        if phonenumbers.is_valid_number(phonenumbers.parse(number)):
            return number


def message_sid() -> str:
    return "SM" + uuid.uuid4().hex


# --- Twilio -------------------------------------------------------------------------------------


def twilio_signature(url: str, params: list[tuple[str, str]], token: str = AUTH_TOKEN) -> str:
    """X-Twilio-Signature as Twilio computes it: HMAC-SHA1 keyed with the auth token over the
    full URL followed by every POST parameter sorted by name, name then value; base64."""
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio_form(fixture: str, **changes: str) -> list[tuple[str, str]]:
    """A recorded Twilio form with some parameters replaced (in place, keeping their order)."""
    text = (FIXTURES / "twilio" / fixture).read_text().strip()
    params = [(name, changes.get(name, value)) for name, value in parse_qsl(text)]
    assert set(changes) <= {name for name, _ in params}, changes
    return params


def inbound_sms(fixture: str, sender: str) -> list[tuple[str, str]]:
    """A recorded inbound message from ``sender`` with a message sid of its own."""
    sid = message_sid()
    return twilio_form(fixture, From=sender, MessageSid=sid, SmsSid=sid, SmsMessageSid=sid)


def post_twilio(
    provider: httpx.Client,
    params: list[tuple[str, str]],
    *,
    signature: str | None = None,
    sign: bool = True,
) -> httpx.Response:
    """POST the form as Twilio does, signed for the public URL Twilio was given."""
    headers = {"Content-Type": FORM}
    if sign:
        if signature is None:
            signature = twilio_signature(PUBLIC_BASE_URL + TWILIO_PATH, params)
        headers["X-Twilio-Signature"] = signature
    return provider.post(TWILIO_PATH, content=urlencode(params).encode(), headers=headers)


def twiml_messages(response: httpx.Response) -> list[str]:
    """The <Message> texts of a TwiML answer (asserting it is one)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(TWIML), response.headers
    root = ET.fromstring(response.content)  # noqa: S314  (our own server's answer)
    assert root.tag == "Response"
    assert all(child.tag == "Message" for child in root), response.text
    return [child.text or "" for child in root]


# --- WhatsApp -----------------------------------------------------------------------------------


def whatsapp_body(fixture: str, sender: str, *, ids: dict[str, str] | None = None) -> bytes:
    """A recorded webhook with the person's number and the message ids made this test's own."""
    text = (FIXTURES / "whatsapp" / fixture).read_text()
    text = text.replace("16505551234", sender.removeprefix("+"))
    for old, new in (ids or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    return text.encode()


def wamid() -> str:
    return "wamid." + base64.b64encode(uuid.uuid4().bytes * 2).decode()


def meta_signature(body: bytes, secret: str = APP_SECRET) -> str:
    """X-Hub-Signature-256 as Meta computes it: the hex HMAC-SHA256 of the raw body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_whatsapp(
    provider: httpx.Client, body: bytes, *, signature: str | None = None, sign: bool = True
) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if sign:
        headers["X-Hub-Signature-256"] = meta_signature(body) if signature is None else signature
    return provider.post(WHATSAPP_PATH, content=body, headers=headers)


def inbound_ids(fixture: str) -> list[str]:
    """The message ids (wamids) of a recorded webhook's ``messages``."""
    envelope = json.loads((FIXTURES / "whatsapp" / fixture).read_text())
    return [
        message["id"]
        for entry in envelope["entry"]
        for change in entry["changes"]
        for message in change["value"].get("messages", [])
    ]


# --- through the API and the database -----------------------------------------------------------


def person(client: httpx.Client, **fields: str) -> dict[str, Any]:
    created = client.post("/v1/contacts", json={"name": "Jane Roe"} | fields)
    assert created.status_code == 201, created.text
    contact: dict[str, Any] = created.json()
    return contact


def consent(
    client: httpx.Client,
    acme: Seeded,
    contact: str,
    channel: str,
    topic: str = "offers",
    basis: str = "express",
) -> None:
    """Express consent given on a web form showing the published disclosure, or a service
    basis that needs no evidence beyond the API call."""
    evidence = (
        WEB_FORM | {"policy_document_id": str(acme.disclosure_id)}
        if basis == "express"
        else {"method": "api"}
    )
    body = {
        "contact": contact,
        "topic": topic,
        "channel": channel,
        "basis": basis,
        "evidence": evidence,
    }
    recorded = client.post("/v1/consent", json=body)
    assert recorded.status_code == 201, recorded.text


def decide(client: httpx.Client, contact: str, channel: str, topic: str = "offers") -> list[str]:
    """The gate's reasons for a message (empty: allowed)."""
    answer = client.post(
        "/v1/decisions", json={"contact": contact, "topic": topic, "channel": channel}
    )
    assert answer.status_code == 200, answer.text
    decision = answer.json()
    assert (decision["verdict"] == "allow") == (decision["reasons"] == []), decision
    reasons: list[str] = decision["reasons"]
    return reasons


def suppressions(client: httpx.Client, *, include_lifted: bool = False) -> dict[str, Any]:
    """The suppressions binding the tenant, by id."""
    listed = client.get("/v1/suppressions", params={"include_lifted": str(include_lifted).lower()})
    assert listed.status_code == 200, listed.text
    return {s["id"]: s for s in listed.json()}


def events(api: Api, source: str, *event_ids: str) -> list[tuple[str, str]]:
    """(event id, status) of the inbound events recorded under these ids, in order received."""
    with api.container.engine.connect() as conn:
        rows = conn.execute(
            select(inbound_events.c.event_id, inbound_events.c.status)
            .where(inbound_events.c.source == source, inbound_events.c.event_id.in_(event_ids))
            .order_by(inbound_events.c.id)
        ).all()
    return [(r.event_id, r.status) for r in rows]


def latest_event(api: Api) -> tuple[str, str, str]:
    """(source, status, outcome) of the last inbound event recorded."""
    with api.container.engine.connect() as conn:
        row = conn.execute(
            select(inbound_events.c.source, inbound_events.c.status, inbound_events.c.outcome)
            .order_by(inbound_events.c.id.desc())
            .limit(1)
        ).one()
    return row.source, row.status, row.outcome


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """Tables whose row count moved, and by how much."""
    return {t: after[t] - before[t] for t in after if after[t] != before[t]}


def sent_through_the_provider(
    api: Api, client: httpx.Client, template: dict[str, Any], contact: str, provider_id: str
) -> int:
    """Send ``template`` to ``contact`` and let it leave, with the provider's message id that a
    real send would have recorded (the capture channel records its own); the delivery id."""
    assert client.post("/v1/templates", json=template).status_code == 201
    queued = client.post("/v1/messages", json={"contact": contact, "template": template["name"]})
    assert queued.status_code == 202, queued.text
    delivery_id = int(queued.json()["id"])
    drain(api.container)
    assert client.get(f"/v1/messages/{delivery_id}").json()["status"] == "sent"
    with api.container.engine.begin() as conn:
        conn.execute(
            deliveries.update()
            .where(deliveries.c.id == delivery_id)
            .values(provider_message_id=provider_id)
        )
    return delivery_id


# --- Twilio SMS ---------------------------------------------------------------------------------


def test_a_signed_stop_is_confirmed_once_and_the_gate_then_refuses_sms(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms")
    assert decide(client, jane["id"], "sms") == []
    before = suppressions(client)

    stop = inbound_sms("inbound_message.form", number)
    replies = twiml_messages(post_twilio(provider, stop))

    assert len(replies) == 1
    assert acme.name in replies[0]  # the only tenant that knows the number answers
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "sms")
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "sms", "reminders")
    assert decide(client, jane["id"], "email") == ["ADDRESS_MISSING"]  # other channels untouched
    added = [s for i, s in suppressions(client).items() if i not in before]
    assert [(s["channel"], s["reason"], s["scope"], s["platform_wide"]) for s in added] == [
        ("sms", "unsubscribed", "all", True)
    ]

    # Twilio retries when it does not hear back in time: the same request, byte for byte.
    counts = hooks.counts()
    assert twiml_messages(post_twilio(provider, stop)) == []
    assert hooks.counts() == counts
    sid = dict(stop)["MessageSid"]
    assert events(hooks, "twilio", sid) == [(sid, "applied")]
    assert len(suppressions(client)) == len(before) + 1


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_a_stop_during_a_dispatch_to_the_number_waits_on_a_thread_and_applies_once(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    """On PostgreSQL a webhook is applied on the event loop. A STOP for a number a dispatch is
    sending to (the dispatch holds the number's fence) gives that wait up after 50 ms, rolls
    back and runs again on a worker thread: the loop answers other requests meanwhile, and the
    STOP applies once, as soon as the dispatch lets go."""
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms")
    with hooks.container.uow() as uow:
        point_key = uow.contacts.point_key(uow.contacts.get(acme.id, uuid.UUID(jane["id"])),
                                           Channel.SMS)  # fmt: skip
    assert point_key is not None
    stop = inbound_sms("inbound_message.form", number)
    with ThreadPoolExecutor(1) as pool:
        with hooks.container.engine.connect() as dispatch, dispatch.begin():
            SqlFences(dispatch).shared([point_key])  # a dispatch's final check, in flight
            pending = pool.submit(post_twilio, hooks.client(), stop)
            time.sleep(INLINE_LOCK_TIMEOUT_MS / 1000 * 4)
            started = time.monotonic()
            assert decide(client, jane["id"], "sms") == []  # answered, and not stopped yet
            assert time.monotonic() - started < 1.0
            time.sleep(1.0)
            assert not pending.done()
        replies = twiml_messages(pending.result(timeout=30))
    assert len(replies) == 1
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "sms")
    sid = dict(stop)["MessageSid"]
    assert events(hooks, "twilio", sid) == [(sid, "applied")]


def test_keywords_are_answered_in_their_own_language(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms")
    stop = twilio_form("inbound_message.form", Body="BAJA")
    sid = message_sid()
    stop = [(k, {"From": number, "MessageSid": sid, "SmsSid": sid, "SmsMessageSid": sid}.get(k, v))
            for k, v in stop]  # fmt: skip

    [reply] = twiml_messages(post_twilio(provider, stop))

    assert reply.startswith(f"{acme.name}: Se ha dado de baja"), reply
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "sms")
    help_ = twilio_form("inbound_message.form", Body="AIDE", From=number, MessageSid=message_sid())
    [answer] = twiml_messages(post_twilio(provider, help_))
    assert answer.startswith(f"{acme.name} : aide au "), answer


def test_the_signature_of_the_local_url_is_accepted_too(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    # Without a proxy in front, Twilio calls (and signs) the server's own address.
    number = mobile()
    person(client, phone=number)
    stop = inbound_sms("inbound_optout_stop_please.form", number)
    signature = twilio_signature(hooks.base_url + TWILIO_PATH, stop)
    [reply] = twiml_messages(post_twilio(provider, stop, signature=signature))
    assert acme.name in reply


def test_help_answers_with_the_support_contact_and_changes_nothing(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms")
    before = hooks.counts()

    [reply] = twiml_messages(post_twilio(provider, inbound_sms("inbound_help.form", number)))

    assert HELP_CONTACT in reply
    assert acme.name in reply
    # Kept, and linked to the sender's number (for erasure); nothing else.
    assert changed(before, hooks.counts()) == {"inbound_events": 1, "inbound_event_points": 1}
    assert decide(client, jane["id"], "sms") == []


def test_start_after_stop_lifts_the_keyword_suppression(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms")
    before = suppressions(client)
    [stopped] = twiml_messages(
        post_twilio(provider, inbound_sms("inbound_optout_stop_please.form", number))
    )
    [keyword_block] = [s for i, s in suppressions(client).items() if i not in before]
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "sms")

    # Body "subscribe", which Twilio's Advanced Opt-Out read as START.
    start = inbound_sms("inbound_advanced_optout_start.form", number)
    [started] = twiml_messages(post_twilio(provider, start))

    assert acme.name in started
    assert started != stopped
    assert keyword_block["id"] not in suppressions(client)
    lifted = suppressions(client, include_lifted=True)[keyword_block["id"]]
    assert lifted["lifted_at"] is not None
    # The consent given before the STOP stands again.
    assert decide(client, jane["id"], "sms") == []
    # A second START has nothing to lift and says nothing.
    again = inbound_sms("inbound_advanced_optout_start.form", number)
    assert twiml_messages(post_twilio(provider, again)) == []


def test_unsigned_and_wrongly_signed_requests_are_refused_and_leave_no_trace(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms")
    stop = inbound_sms("inbound_message.form", number)
    public = PUBLIC_BASE_URL + TWILIO_PATH
    tampered = [(n, "START" if n == "Body" else v) for n, v in stop]
    before = hooks.counts()

    for response in (
        post_twilio(provider, stop, sign=False),
        post_twilio(provider, stop, signature=""),
        post_twilio(provider, stop, signature=twilio_signature(public, stop, token="f" * 32)),
        post_twilio(provider, stop, signature=twilio_signature(public + "?x=1", stop)),
        post_twilio(provider, tampered, signature=twilio_signature(public, stop)),
        post_twilio(provider, stop, signature=twilio_signature(public, stop).lower()),
    ):
        hooks.problem(response, 401, "WEBHOOK_SIGNATURE_INVALID")

    assert hooks.counts() == before
    assert decide(client, jane["id"], "sms") == []


def test_a_status_callback_reporting_an_opt_out_fails_the_delivery_and_suppresses(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms", "reminders", "service_necessity")
    sid = message_sid()
    reminder = {"name": "booked", "topic": "reminders", "channel": "sms", "text": "See you soon."}
    delivery_id = sent_through_the_provider(hooks, client, reminder, jane["id"], sid)
    before = suppressions(client)

    callback = twilio_form(
        "status_callback_failed_21610.form", MessageSid=sid, SmsSid=sid, To=number
    )
    assert twiml_messages(post_twilio(provider, callback)) == []

    failed = client.get(f"/v1/messages/{delivery_id}").json()
    assert (failed["status"], failed["error_code"]) == ("failed", "21610")
    added = [s for i, s in suppressions(client).items() if i not in before]
    assert [(s["channel"], s["reason"], s["platform_wide"]) for s in added] == [
        ("sms", "provider", False)
    ]
    assert events(hooks, "twilio", f"{sid}:failed") == [(f"{sid}:failed", "applied")]

    # A report about a message that is not ours is accepted and changes nothing.
    stranger = message_sid()
    counts = hooks.counts()
    other = twilio_form("status_callback_delivered.form", MessageSid=stranger, SmsSid=stranger)
    assert twiml_messages(post_twilio(provider, other)) == []
    assert changed(counts, hooks.counts()) == {"inbound_events": 1}
    assert events(hooks, "twilio", f"{stranger}:delivered") == [
        (f"{stranger}:delivered", "unattributed")
    ]


def test_an_authentic_body_that_does_not_parse_is_kept_and_applies_nothing(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, phone=number)
    consent(client, acme, jane["id"], "sms")
    # Signed with the right token, but no message sid: not a message Twilio would send.
    nameless = [
        (n, v)
        for n, v in inbound_sms("inbound_message.form", number)
        if n not in ("MessageSid", "SmsSid", "SmsMessageSid")
    ]
    # A status callback whose ErrorCode is not a number.
    garbled = twilio_form("status_callback_failed_21610.form", ErrorCode="21610; DROP")
    before = hooks.counts()

    for params in (nameless, garbled):
        hooks.problem(post_twilio(provider, params), 400, "INVALID_INPUT")
        source, status, outcome = latest_event(hooks)
        assert (source, status) == ("twilio", "rejected")
        assert outcome

    assert changed(before, hooks.counts()) == {"inbound_events": 2}
    assert decide(client, jane["id"], "sms") == []


def test_webhooks_that_are_not_configured_are_not_there(
    serve: Callable[..., Api],
) -> None:
    plain = serve()
    provider = plain.client()
    stop = inbound_sms("inbound_message.form", mobile())
    before = plain.counts()
    plain.problem(post_twilio(provider, stop), 404, "WEBHOOK_NOT_CONFIGURED")
    body = whatsapp_body("webhook_inbound_message.json", mobile())
    plain.problem(post_whatsapp(provider, body), 404, "WEBHOOK_NOT_CONFIGURED")
    handshake = {"hub.mode": "subscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}
    plain.problem(provider.get(WHATSAPP_PATH, params=handshake), 404, "WEBHOOK_NOT_CONFIGURED")
    assert plain.counts() == before


# --- WhatsApp Cloud API -------------------------------------------------------------------------


def test_the_subscription_handshake_echoes_the_challenge_for_the_right_token(
    hooks: Api, provider: httpx.Client
) -> None:
    params = {
        "hub.mode": "subscribe",
        "hub.verify_token": VERIFY_TOKEN,
        "hub.challenge": "1158201444",
    }
    echoed = provider.get(WHATSAPP_PATH, params=params)
    assert echoed.status_code == 200, echoed.text
    assert echoed.headers["content-type"].startswith("text/plain")
    assert echoed.text == "1158201444"

    for wrong in (
        {"hub.verify_token": "guess"},
        {"hub.verify_token": ""},
        {"hub.mode": "unsubscribe"},
    ):
        hooks.problem(
            provider.get(WHATSAPP_PATH, params=params | wrong), 403, "WEBHOOK_VERIFY_TOKEN_INVALID"
        )


def test_a_signed_stop_text_suppresses_whatsapp_and_opens_the_service_window(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, whatsapp=number)
    consent(client, acme, jane["id"], "whatsapp")
    assert decide(client, jane["id"], "whatsapp") == []
    before = suppressions(client)
    [old_id] = inbound_ids("webhook_inbound_message.json")
    message_id = wamid()
    body = whatsapp_body("webhook_inbound_message.json", number, ids={old_id: message_id})

    answered = post_whatsapp(provider, body)

    assert answered.status_code == 200, answered.text
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "whatsapp")
    added = [s for i, s in suppressions(client).items() if i not in before]
    assert [(s["channel"], s["reason"], s["scope"], s["platform_wide"]) for s in added] == [
        ("whatsapp", "unsubscribed", "all", True)
    ]
    assert events(hooks, "whatsapp", message_id) == [(message_id, "applied")]
    with hooks.container.engine.connect() as conn:
        window = conn.execute(
            select(contacts.c.whatsapp_last_inbound_at).where(
                contacts.c.id == uuid.UUID(jane["id"])
            )
        ).scalar_one()
    assert window is not None
    assert int(window.timestamp()) == 1736847120  # the message's own time, not its arrival

    # Meta redelivers until it gets a 200: a replay applies nothing.
    counts = hooks.counts()
    assert post_whatsapp(provider, body).status_code == 200
    assert hooks.counts() == counts


def test_a_stop_promotions_button_stops_marketing_only(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, whatsapp=number)
    consent(client, acme, jane["id"], "whatsapp")
    consent(client, acme, jane["id"], "whatsapp", "reminders")
    before = suppressions(client)
    [old_id] = inbound_ids("webhook_inbound_button_stop_promotions.json")
    body = whatsapp_body(
        "webhook_inbound_button_stop_promotions.json", number, ids={old_id: wamid()}
    )

    assert post_whatsapp(provider, body).status_code == 200

    added = [s for i, s in suppressions(client).items() if i not in before]
    assert [(s["channel"], s["reason"], s["scope"]) for s in added] == [
        ("whatsapp", "unsubscribed", "marketing")
    ]
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "whatsapp")
    assert decide(client, jane["id"], "whatsapp", "reminders") == []


def test_delivery_statuses_are_accepted_and_move_our_message_on(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, whatsapp=number)
    consent(client, acme, jane["id"], "whatsapp", "reminders")
    ours, stranger = wamid(), wamid()
    reminder = {
        "name": "visit",
        "topic": "reminders",
        "channel": "whatsapp",
        "whatsapp_template": "appointment_reminder",
    }
    delivery_id = sent_through_the_provider(hooks, client, reminder, jane["id"], ours)
    # Two entries: sent and delivered for our message, read for someone else's.
    body = whatsapp_body(
        "webhook_statuses.json",
        number,
        ids={
            "wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI3QkYzQzg5MDRFNTg2RTFBQjQA": ours,
            "wamid.HBgLMTY1MDU1NTk4NzYVAgARGBJEQzFBMjM0NTY3ODlBQkNERUYA": stranger,
        },
    )

    assert post_whatsapp(provider, body).status_code == 200

    assert client.get(f"/v1/messages/{delivery_id}").json()["status"] == "delivered"
    assert events(hooks, "whatsapp", f"{ours}:sent", f"{ours}:delivered", f"{stranger}:read") == [
        (f"{ours}:sent", "ignored"),
        (f"{ours}:delivered", "applied"),
        (f"{stranger}:read", "unattributed"),
    ]
    counts = hooks.counts()
    assert post_whatsapp(provider, body).status_code == 200
    assert hooks.counts() == counts


def test_unsigned_and_wrongly_signed_whatsapp_webhooks_are_refused(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    person(client, whatsapp=number)
    body = whatsapp_body("webhook_inbound_message.json", number)
    before = hooks.counts()
    for response in (
        post_whatsapp(provider, body, sign=False),
        post_whatsapp(provider, body, signature=meta_signature(body, "another app")),
        post_whatsapp(provider, body, signature=meta_signature(body + b" ")),
        post_whatsapp(provider, body, signature=meta_signature(body).removeprefix("sha256=")),
        post_whatsapp(provider, body, signature="sha1=" + hashlib.sha1(body).hexdigest()),  # noqa: S324
    ):
        hooks.problem(response, 401, "WEBHOOK_SIGNATURE_INVALID")
    assert hooks.counts() == before


def test_an_authentic_whatsapp_body_that_does_not_parse_is_kept_as_rejected(
    hooks: Api, provider: httpx.Client
) -> None:
    before = hooks.counts()
    for body in (b"{not json", b'{"entry": {"changes": []}}', b"[]"):
        hooks.problem(post_whatsapp(provider, body), 400, "INVALID_INPUT")
        assert latest_event(hooks)[:2] == ("whatsapp", "rejected")
    assert changed(before, hooks.counts()) == {"inbound_events": 3}


def test_oversized_webhooks_are_refused(hooks: Api, provider: httpx.Client) -> None:
    before = hooks.counts()
    # Under the API's body limit, over what any provider webhook is.
    padding = b" " * (300 * 1024)
    body = whatsapp_body("webhook_inbound_message.json", mobile()).replace(b"{", b"{" + padding, 1)
    assert len(body) > 256 * 1024
    hooks.problem(post_whatsapp(provider, body), 413, "BODY_TOO_LARGE")
    stop = [*inbound_sms("inbound_message.form", mobile()), ("Padding", "x" * 300 * 1024)]
    hooks.problem(post_twilio(provider, stop), 413, "BODY_TOO_LARGE")
    assert hooks.counts() == before


def test_a_webhook_that_does_not_parse_applies_none_of_what_it_carries(
    hooks: Api, acme: Seeded, client: httpx.Client, provider: httpx.Client
) -> None:
    number = mobile()
    jane = person(client, whatsapp=number)
    consent(client, acme, jane["id"], "whatsapp")
    [old_id] = inbound_ids("webhook_inbound_message.json")
    envelope = json.loads(
        whatsapp_body("webhook_inbound_message.json", number, ids={old_id: wamid()})
    )
    # A STOP, and beside it a status without its timestamp: the body as a whole is not one
    # Meta sends, so nothing in it is taken as said.
    envelope["entry"][0]["changes"][0]["value"]["statuses"] = [{"id": wamid(), "status": "read"}]
    body = json.dumps(envelope).encode()
    before = hooks.counts()

    hooks.problem(post_whatsapp(provider, body), 400, "INVALID_INPUT")

    assert changed(before, hooks.counts()) == {"inbound_events": 1}
    assert latest_event(hooks)[:2] == ("whatsapp", "rejected")
    assert decide(client, jane["id"], "whatsapp") == []
