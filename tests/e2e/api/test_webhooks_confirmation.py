"""SMS double opt-in end to end: requested through the API, the YES reply through Twilio's signed
webhook, the confirmation in the ledger and the disclosures in the TwiML answer."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

import httpx
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_webhooks import (  # noqa: F401  (fixtures of the webhook tests)
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    WEB_FORM,
    acme,
    client,
    hooks,
    message_sid,
    mobile,
    person,
    post_twilio,
    provider,
    twilio_form,
    twiml_messages,
)
from tests.e2e.conftest import CLEAN_ENV
from typer.testing import CliRunner

from consentry.cli.app import app
from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod
from consentry.domain.model import Category
from consentry.services import tenancy
from consentry.services.consent import consent_history


def test_a_yes_reply_confirms_the_pending_sms_consent(
    hooks: Api,  # noqa: F811  (the fixtures imported above)
    acme: Seeded,  # noqa: F811
    client: httpx.Client,  # noqa: F811
    provider: httpx.Client,  # noqa: F811
) -> None:
    tenancy.create_topic(
        hooks.container.uow(), acme.slug, key="alerts", name="Service alerts",
        category=Category.MARKETING, requires_double_opt_in=True,
    )  # fmt: skip
    number = mobile()
    jane = person(client, phone=number)
    body = {
        "action": "requested",
        "contact": jane["id"],
        "topic": "alerts",
        "channel": "sms",
        "evidence": WEB_FORM | {"policy_document_id": str(acme.disclosure_id)},
    }
    recorded = client.post("/v1/consent", json=body)
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["confirmation_sent"] is True
    outbox = hooks.container.outbox()
    request = outbox.get(outbox.list(acme.id, limit=1)[0].id).raw.decode()
    for part in ("Acme+Ltd", "Service+alerts", "Msg%26data+rates+may+apply", "YES", "STOP"):
        assert part in request, request

    sid = message_sid()
    yes = twilio_form(
        "inbound_message.form", From=number, Body="YES", MessageSid=sid, SmsSid=sid,
        SmsMessageSid=sid,
    )  # fmt: skip
    [reply] = twiml_messages(post_twilio(provider, yes))
    assert reply.startswith("Acme Ltd Service alerts:")
    assert "Msg&data rates may apply" in reply
    assert "STOP" in reply
    assert "HELP" in reply

    with hooks.container.uow() as uow:
        events = uow.ledger.history(acme.id, uuid.UUID(jane["id"]))
    last = events[-1]
    assert [e.action for e in events] == [ConsentAction.REQUESTED, ConsentAction.CONFIRMED]
    assert last.basis is ConsentBasis.DOUBLE_OPT_IN
    assert last.evidence.method is ConsentMethod.KEYWORD
    assert last.evidence.inbound_message_id == sid
    decided = client.post(
        "/v1/decisions", json={"contact": jane["id"], "topic": "alerts", "channel": "sms"}
    ).json()
    assert "CONSENT_PENDING" not in decided["reasons"]


def test_a_form_subscription_by_sms_is_confirmed_by_the_yes_reply(
    serve: Callable[..., Api],
) -> None:
    """The whole way for SMS: the hosted form, the YES text, and both steps with their own
    evidence in the history ``consentry consent history`` shows."""
    api = serve(
        public_base_url=PUBLIC_BASE_URL, twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN, form_min_seconds=0,
    )  # fmt: skip
    shop = api.tenant("acme")
    owner = api.client(shop.token)
    made = owner.post(
        "/v1/forms",
        json={"key": "join", "title": "Texts from Acme",
              "choices": [{"topic": "offers", "channel": "sms"}],
              "privacy_url": "https://acme.example/privacy"},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    browser, number = api.client(), mobile()
    page = browser.get(f"/f/{shop.slug}/join")
    token = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert token is not None
    form = {"form_token": token.group(1), "choice": "offers:sms", "phone": number,
            "adult": "yes", "website": ""}  # fmt: skip
    done = browser.post(f"/f/{shop.slug}/join", data=form, headers={"User-Agent": "Phone/1.0"})
    assert done.status_code == 200, done.text
    assert "reply YES" in done.text

    sid = message_sid()
    yes = twilio_form(
        "inbound_message.form", From=number, Body="yes", MessageSid=sid, SmsSid=sid,
        SmsMessageSid=sid,
    )  # fmt: skip
    [reply] = twiml_messages(post_twilio(api.client(), yes))

    assert reply.startswith(f"{shop.name} Offers:"), reply  # the disclosures again
    entries = consent_history(api.container.uow(), shop.slug, number)
    requested, confirmed = (e.event for e in entries)
    assert (requested.action, requested.evidence.method) == (
        ConsentAction.REQUESTED, ConsentMethod.WEB_FORM,
    )  # fmt: skip
    assert requested.evidence.actor == "form:join"
    assert requested.evidence.user_agent == "Phone/1.0"
    assert "ticked=offers:sms" in (requested.evidence.note or "")
    assert (confirmed.action, confirmed.basis) == (
        ConsentAction.CONFIRMED, ConsentBasis.DOUBLE_OPT_IN,
    )  # fmt: skip
    assert (confirmed.evidence.method, confirmed.evidence.inbound_message_id) == (
        ConsentMethod.KEYWORD, sid,
    )  # fmt: skip
    # And as the command line shows it.
    settings = api.container.settings
    where = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        where += ["--database-url", settings.database_url]
    shown = CliRunner().invoke(
        app, [*where, "consent", "history", "-t", shop.slug, "-c", number], env=CLEAN_ENV
    )
    assert shown.exit_code == 0, shown.output
    out = shown.stdout
    assert out.index(" requested ") < out.index(" confirmed ")
    for part in ("actor=form:join", "ticked=offers:sms;", "keyword", sid):
        assert part in out, out
