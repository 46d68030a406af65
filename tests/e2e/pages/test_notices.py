"""Acceptance links of policy notices over HTTP and in Chromium: the emailed link opened, GET
changing nothing, POST accepting once with the page's evidence, bad and foreign links answered
alike, CSRF."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.api.test_campaigns import person, shop
from tests.e2e.api.test_notices import notice_links, notify, publish
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.helpers import ledger

from consentry.domain.consent import ConsentAction, ConsentMethod
from consentry.workers.inprocess import send_notices

UA = "Mozilla/5.0 (accepting it)"


def told(api: Api, acme: Seeded) -> tuple[uuid.UUID, str, str]:
    """A customer who said yes on version 1, told of version 2 with a link to accept it:
    (contact id, version 2's id, token)."""
    client = api.client(acme.token)
    shop(client)
    contact = person(client, acme, 1, consent=True)
    v2 = publish(client, body="Offers, and now a monthly survey.")
    created = notify(client, v2["id"], ask_acceptance=True)
    assert created.status_code == 202, created.text
    send_notices(api.container)
    return uuid.UUID(contact["id"]), v2["id"], notice_links(api, acme)[contact["email"]]


def acceptances(api: Api, acme: Seeded, contact: uuid.UUID) -> list[Any]:
    return [
        e
        for e in ledger(api, acme, contact)
        if e.action is ConsentAction.GRANTED and (e.evidence.actor or "").startswith("policy")
    ]


def _csrf(client: httpx.Client, token: str) -> str:
    page = client.get(f"/n/{token}")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_get_shows_business_version_and_words_and_changes_nothing(api: Api, acme: Seeded) -> None:
    _contact, _v2, token = told(api, acme)
    before = api.counts()
    for _ in range(2):  # a link scanner, then the person
        page = api.client().get(f"/n/{token}")
        assert page.status_code == 200
        assert "Acme Ltd has changed its Offers consent" in page.text
        assert "Version 2" in page.text
        assert "Offers, and now a monthly survey." in page.text
        assert ">I accept</button>" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
    assert api.counts() == before


def test_post_accepts_once_and_bad_links_get_one_answer(api: Api, acme: Seeded) -> None:
    contact, v2, token = told(api, acme)
    client = api.client()
    csrf = _csrf(client, token)
    before = api.counts()
    api.problem(client.post(f"/n/{token}", data={}), 403, "CSRF_FAILED")
    api.problem(client.post(f"/n/{token}", data={"csrf_token": "forged"}), 403, "CSRF_FAILED")
    assert api.counts() == before
    done = client.post(f"/n/{token}", data={"csrf_token": csrf}, headers={"User-Agent": UA})
    assert done.status_code == 200
    assert "accepted version 2 of its Offers consent" in done.text
    [accepted] = acceptances(api, acme, contact)
    assert str(accepted.evidence.policy_document_id) == v2
    assert accepted.evidence.method is ConsentMethod.WEB_FORM
    assert accepted.evidence.source == "https://localhost:8000/n"
    assert accepted.evidence.ip_address == "127.0.0.1"
    assert accepted.evidence.user_agent == UA
    owner = api.client(acme.token)
    [notice] = owner.get(f"/v1/policies/{v2}/notices").json()
    assert notice["report"]["accepted"] == 1

    before = api.counts()
    again = client.post(f"/n/{token}", data={"csrf_token": csrf})
    assert again.status_code == 404
    assert "This link is not valid or has expired." in again.text
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    bad = (token, tampered, token[:-1], "not-a-token", "A" * len(token))
    pages = {client.get(f"/n/{value}").text for value in bad}
    assert len(pages) == 1
    assert api.counts() == before


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def test_a_person_opens_the_emailed_link_and_accepts_the_new_version(
    api: Api, acme: Seeded, page: Any
) -> None:
    contact, v2, token = told(api, acme)
    page.goto(f"{api.base_url}/n/{token}")
    main = page.locator("main").inner_text()
    assert "Acme Ltd has changed its Offers consent" in main
    assert "Offers, and now a monthly survey." in main
    assert acceptances(api, acme, contact) == []  # opening changed nothing
    page.get_by_role("button", name="I accept").click()
    status = page.get_by_role("status").inner_text()
    assert "Acme Ltd has recorded that you accepted version 2 of its Offers consent" in status
    [accepted] = acceptances(api, acme, contact)
    assert str(accepted.evidence.policy_document_id) == v2
    assert "HeadlessChrome" in (accepted.evidence.user_agent or "")
