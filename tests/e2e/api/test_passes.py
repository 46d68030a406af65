"""Permission passes over HTTP, end to end: a list and an import asked to reconfirm, some
people keep their consent through the emailed link, one withdraws, the deadline passes, and
exactly the others lapse; the report and the consent history say so.

On PostgreSQL the tests share a database: passes are ended one by one, never "every due pass".
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.policy import default as default_policy
from typing import Any

import httpx
from tests.e2e.api.conftest import Api, Seeded
from tests.e2e.api.test_campaigns import person, shop

from consentry.services import pass_end
from consentry.workers.inprocess import drain

_LINK = re.compile(r"https://\S+/r/([A-Za-z0-9_-]+)")
UA = "Mozilla/5.0 (keeping my subscription)"


def links(api: Api, tenant: Seeded) -> dict[str, str]:
    """Recipient -> reconfirmation token, from the tenant's captured email."""
    found: dict[str, str] = {}
    outbox = api.container.outbox()
    for m in outbox.list(tenant.id, limit=200):
        mail = message_from_bytes(outbox.get(m.id).raw, policy=default_policy)
        text = mail.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        match = _LINK.search(text)
        if match:
            found[m.recipient] = match.group(1)
    return found


def keep(api: Api, token: str) -> httpx.Response:
    """What a person's browser does: open the page, press the button."""
    browser = api.client()
    page = browser.get(f"/r/{token}")
    assert page.status_code == 200, page.text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None
    return browser.post(
        f"/r/{token}", data={"csrf_token": csrf.group(1)}, headers={"User-Agent": UA}
    )


def deadline(days: int = 14) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def history(client: httpx.Client, contact: dict[str, Any]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = client.get(f"/v1/contacts/{contact['id']}/consent").json()
    return events


def test_a_list_is_asked_some_keep_one_withdraws_and_exactly_the_rest_lapse(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    shop(client)
    people = [person(client, acme, n, consent=True) for n in range(5)]
    keeps, keeps_too, silent, quiet, withdraws = people
    never = person(client, acme, 9, consent=False)  # listed, never said yes: not asked
    listed = client.post(
        "/v1/lists", json={"name": "customers", "contacts": [p["id"] for p in [*people, never]]}
    )
    assert listed.status_code == 201, listed.text

    body = {"topic": "offers", "channel": "email", "list": "customers", "deadline": deadline()}
    retry = {"Idempotency-Key": "spring-pass"}
    created = client.post("/v1/permission-passes", json=body, headers=retry)
    assert created.status_code == 201, created.text
    made = created.json()
    assert made["status"] == "running"
    assert made["report"]["targeted"] == 5
    assert made["report"]["waiting"] == 5
    before = api.counts()
    again = client.post("/v1/permission-passes", json=body, headers=retry)
    assert again.json()["id"] == made["id"]  # a retried request gets the first answer
    assert api.counts() == before
    pass_id = made["id"]

    drain(api.container, uuid.UUID(made["campaign_id"]))
    tokens = links(api, acme)
    assert sorted(tokens) == sorted(p["email"] for p in people)

    for p in (keeps, keeps_too):
        done = keep(api, tokens[p["email"]])
        assert done.status_code == 200
        assert "you stay subscribed" in done.text
    withdrawal = {
        "contact": withdraws["id"], "topic": "offers", "channel": "email",
        "action": "withdrawn", "evidence": {"method": "api"},
    }  # fmt: skip
    assert client.post("/v1/consent", json=withdrawal).status_code == 201

    running = client.get(f"/v1/permission-passes/{pass_id}").json()["report"]
    assert (running["renewed"], running["other"], running["awaiting"]) == (2, 1, 2)

    end_at = datetime.fromisoformat(made["deadline"]) + timedelta(minutes=1)
    assert pass_end.end_pass(api.container.uow(), acme.slug, uuid.UUID(pass_id), now=end_at) == 2

    ended = client.get(f"/v1/permission-passes/{pass_id}").json()
    assert ended["status"] == "ended"
    report = ended["report"]
    assert report == {
        "targeted": 5, "sent": 5, "waiting": 0, "failed": 0, "cancelled": 0, "refused": {},
        "renewed": 2, "lapsed": 2, "other": 1, "awaiting": 0,
    }  # fmt: skip
    assert [p["id"] for p in client.get("/v1/permission-passes").json()] == [pass_id]

    last = {p["email"]: history(client, p)[-1] for p in people}
    assert last[keeps["email"]]["action"] == "granted"
    assert last[keeps["email"]]["user_agent"] == UA
    assert last[keeps["email"]]["source"].endswith("/r")  # the page, not the token
    assert last[keeps["email"]]["actor"] == f"permission_pass:{pass_id}"
    assert last[keeps["email"]]["method"] == "web_form"
    assert last[keeps["email"]]["policy_document_id"] == made["disclosure_id"]
    assert last[keeps_too["email"]]["action"] == "granted"
    assert last[silent["email"]]["action"] == "lapsed"
    assert last[quiet["email"]]["action"] == "lapsed"
    assert last[withdraws["email"]]["action"] == "withdrawn"  # untouched by the pass
    assert history(client, never) == []

    decision = client.post(
        "/v1/decisions", json={"contact": silent["id"], "topic": "offers", "channel": "email"}
    ).json()
    assert decision["verdict"] == "deny"
    assert "CONSENT_LAPSED" in decision["reasons"]


def test_an_import_batch_is_asked(api: Api, acme: Seeded, client: httpx.Client) -> None:
    shop(client)
    body = {
        "topic": "offers", "channel": "email", "source": "Sign-up box on the shop's website",
        "opt_in_method": "web_form", "collected_from": "2026-01-01",
        "collected_to": "2026-03-31", "disclosure_id": str(acme.disclosure_id), "attest": True,
        "csv": "email\nfirst@example.com\nsecond@example.com\n",
    }  # fmt: skip
    started = client.post("/v1/imports", json=body).json()
    wait_until = time.monotonic() + 30
    while client.get(f"/v1/imports/{started['id']}").json()["status"] in {"queued", "running"}:
        assert time.monotonic() < wait_until
        time.sleep(0.05)
    person(client, acme, 1, consent=True)  # said yes on the website, not in the import
    created = client.post(
        "/v1/permission-passes",
        json={"topic": "offers", "channel": "email", "import_id": started["id"],
              "deadline": deadline(), "name": "Imported list check"},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["report"]["targeted"] == 2
    assert created.json()["source"] == "import"
    drain(api.container, uuid.UUID(created.json()["campaign_id"]))
    assert sorted(links(api, acme)) == ["first@example.com", "second@example.com"]


def test_bad_requests_get_stable_codes_and_write_nothing(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    shop(client)
    person(client, acme, 1, consent=True)
    assert client.post("/v1/lists", json={"name": "one", "contacts": []}).status_code == 201
    base = {"topic": "offers", "channel": "email", "list": "one", "deadline": deadline()}
    before = api.counts()
    cases = [
        (base | {"deadline": deadline(-1)}, 422, "PASS_DEADLINE_INVALID"),
        (base | {"deadline": deadline(120)}, 422, "PASS_DEADLINE_INVALID"),
        (base | {"list": "nope"}, 404, "LIST_NOT_FOUND"),
        (base | {"topic": "nope"}, 404, "TOPIC_NOT_FOUND"),
        (base | {"import_id": str(uuid.uuid4())}, 422, "PASS_SOURCE_INVALID"),
        ({k: v for k, v in base.items() if k != "list"} | {"import_id": str(uuid.uuid4())},
         404, "IMPORT_NOT_FOUND"),
        (base | {"text": "No link in here."}, 422, "PASS_MESSAGE_INVALID"),
        (base | {"channel": "whatsapp"}, 422, "INVALID_VALUE"),
        (base | {"disclosure_id": str(uuid.uuid4())}, 404, "POLICY_DOCUMENT_NOT_FOUND"),
    ]  # fmt: skip
    for body, status, code in cases:
        api.problem(client.post("/v1/permission-passes", json=body), status, code)
    api.problem(client.get(f"/v1/permission-passes/{uuid.uuid4()}"), 404, "PASS_NOT_FOUND")
    assert api.counts() == before
    reader = api.client(api.issue_key(acme.slug, scopes=frozenset()).token)
    api.problem(reader.post("/v1/permission-passes", json=base), 403, "FORBIDDEN")
