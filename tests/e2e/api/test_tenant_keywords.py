"""A tenant's own keywords and reply texts: set over the API and the CLI, and read with the
number of a person that tenant knows through the signed Twilio webhook."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_webhooks import (  # noqa: F401  (fixtures of the webhook tests)
    acme,
    client,
    consent,
    decide,
    events,
    hooks,
    message_sid,
    mobile,
    person,
    post_twilio,
    provider,
    twilio_form,
    twiml_messages,
)
from tests.e2e.conftest import Cli

ITALIAN = {
    "it": {
        "opt_out": ["basta"],
        "help": ["aiuto"],
        "opt_out_reply": "$brand: non riceverai altri messaggi.",
        "help_reply": "$brand: aiuto al $support_contact. Rispondi STOP per uscire.",
    },
    "en": {"help_reply": "$brand: ring the shop. Reply STOP to opt out."},
}


def text(provider: httpx.Client, number: str, body: str) -> list[str]:  # noqa: F811
    sid = message_sid()
    form = twilio_form(
        "inbound_message.form", Body=body, From=number, MessageSid=sid, SmsSid=sid,
        SmsMessageSid=sid,
    )  # fmt: skip
    return twiml_messages(post_twilio(provider, form))


def test_a_tenants_words_and_replies_apply_to_the_numbers_it_knows(
    hooks: Api,  # noqa: F811  (the fixtures imported above)
    acme: Seeded,  # noqa: F811
    client: httpx.Client,  # noqa: F811
    provider: httpx.Client,  # noqa: F811
) -> None:
    put = client.put("/v1/keywords", json=ITALIAN)
    assert put.status_code == 200, put.text
    assert client.get("/v1/keywords").json() == ITALIAN
    jane_number, stranger = mobile(), mobile()
    jane = person(client, phone=jane_number)
    consent(client, acme, jane["id"], "sms")

    assert text(provider, jane_number, "HELP") == [
        f"{acme.name}: ring the shop. Reply STOP to opt out."
    ]
    assert text(provider, jane_number, "aiuto") == [
        f"{acme.name}: aiuto al help@acme.example. Rispondi STOP per uscire."
    ]
    # A number no tenant knows is read with the deployment's words: "basta" means nothing.
    assert text(provider, stranger, "basta") == []
    [reply] = text(provider, jane_number, "Basta!")
    assert reply == f"{acme.name}: non riceverai altri messaggi."
    assert "SUPPRESSED_UNSUBSCRIBED" in decide(client, jane["id"], "sms")
    # The carrier-standard words still work for everyone.
    assert text(provider, stranger, "STOP") != []


def test_bad_keyword_configurations_are_refused_and_clearing_goes_back(
    hooks: Api,  # noqa: F811
    acme: Seeded,  # noqa: F811
    client: httpx.Client,  # noqa: F811
) -> None:
    hooks.problem(
        client.put("/v1/keywords", json={"it": {"opt_in": ["inizio"]}}), 422, "INVALID_INPUT"
    )
    hooks.problem(client.put("/v1/keywords", json={"en": {"colour": ["x"]}}), 422, "INVALID_INPUT")
    hooks.problem(
        client.put("/v1/keywords", json={"en": {"opt_out": "halt"}}), 422, "INVALID_INPUT"
    )
    assert client.get("/v1/keywords").json() == {}
    reader = hooks.client(hooks.issue_key(acme.slug, name="reader").token)
    hooks.problem(reader.put("/v1/keywords", json=ITALIAN), 403, "FORBIDDEN")

    assert client.put("/v1/keywords", json=ITALIAN).status_code == 200
    assert client.delete("/v1/keywords").status_code == 204
    assert client.get("/v1/keywords").json() == {}


def test_the_cli_sets_shows_and_clears_a_tenants_keywords(seeded: Cli, tmp_path: Path) -> None:
    path = tmp_path / "keywords.json"
    path.write_text(json.dumps(ITALIAN))
    assert "keywords of" in seeded.ok("keywords", "set", str(path), "-t", seeded.tenant)
    assert json.loads(seeded.ok("keywords", "show", "-t", seeded.tenant)) == ITALIAN
    assert "keywords cleared" in seeded.ok("keywords", "clear", "-t", seeded.tenant)
    assert json.loads(seeded.ok("keywords", "show", "-t", seeded.tenant)) == {}
    path.write_text(json.dumps({"xx": {"help": ["x"]}}))
    refused = seeded.run("keywords", "set", str(path), "-t", seeded.tenant)
    assert refused.exit_code != 0
    assert "needs opt_out words" in refused.output
