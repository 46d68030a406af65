"""Reconfirmation links of a permission pass over HTTP and in Chromium: the emailed link
opened, GET changing nothing, POST renewing once with the page's evidence, bad and foreign
links answered alike, CSRF."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from tests.e2e.api.test_campaigns import person, shop
from tests.e2e.api.test_passes import links
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.helpers import ledger

from consentry.domain.consent import ConsentAction, ConsentMethod
from consentry.workers.inprocess import drain

UA = "Mozilla/5.0 (keeping it)"


def asked(api: Api, acme: Seeded) -> tuple[uuid.UUID, str]:
    """A customer who said yes to offers, asked to reconfirm: (contact id, token)."""
    client = api.client(acme.token)
    shop(client)
    contact = person(client, acme, 1, consent=True)
    listed = {"name": f"list-{uuid.uuid4().hex[:6]}", "contacts": [contact["id"]]}
    assert client.post("/v1/lists", json=listed).status_code == 201
    deadline = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    body = {"topic": "offers", "channel": "email", "list": listed["name"], "deadline": deadline}
    created = client.post("/v1/permission-passes", json=body)
    assert created.status_code == 201, created.text
    drain(api.container, uuid.UUID(created.json()["campaign_id"]))
    return uuid.UUID(contact["id"]), links(api, acme)[contact["email"]]


def renewals(api: Api, acme: Seeded, contact: uuid.UUID) -> list[Any]:
    return [
        e
        for e in ledger(api, acme, contact)
        if e.action is ConsentAction.GRANTED and (e.evidence.actor or "").startswith("permission")
    ]


def _csrf(client: httpx.Client, token: str) -> str:
    page = client.get(f"/r/{token}")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_get_shows_business_topic_deadline_and_words_and_changes_nothing(
    api: Api, acme: Seeded
) -> None:
    _contact, token = asked(api, acme)
    before = api.counts()
    for _ in range(2):  # a link scanner, then the person
        page = api.client().get(f"/r/{token}")
        assert page.status_code == 200
        assert "Acme Ltd" in page.text
        assert "Offers" in page.text
        assert "Yes, send me offers by email and text." in page.text  # the disclosure
        assert ">Keep me subscribed</button>" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
    assert api.counts() == before


def test_post_renews_once_and_bad_links_get_one_answer(api: Api, acme: Seeded) -> None:
    contact, token = asked(api, acme)
    client = api.client()
    csrf = _csrf(client, token)
    before = api.counts()
    api.problem(client.post(f"/r/{token}", data={}), 403, "CSRF_FAILED")
    assert api.counts() == before
    done = client.post(f"/r/{token}", data={"csrf_token": csrf}, headers={"User-Agent": UA})
    assert done.status_code == 200
    [renewal] = renewals(api, acme, contact)
    assert renewal.evidence.method is ConsentMethod.WEB_FORM
    assert renewal.evidence.source == "https://localhost:8000/r"
    assert renewal.evidence.ip_address == "127.0.0.1"
    assert renewal.evidence.user_agent == UA
    before = api.counts()
    again = client.post(f"/r/{token}", data={"csrf_token": csrf})
    assert again.status_code == 404
    assert "This link is not valid or has expired." in again.text
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]
    confirmation_shaped = "A" * 156
    bad = (token, tampered, token[:-1], "not-a-token", confirmation_shaped)
    pages = {client.get(f"/r/{value}").text for value in bad}
    assert len(pages) == 1
    assert api.counts() == before


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def test_a_person_opens_the_emailed_link_and_keeps_the_subscription(
    api: Api, acme: Seeded, page: Any
) -> None:
    contact, token = asked(api, acme)
    page.goto(f"{api.base_url}/r/{token}")
    main = page.locator("main").inner_text()
    assert "Do you still want Offers?" in main
    assert "Acme Ltd" in main
    assert renewals(api, acme, contact) == []  # opening changed nothing
    page.get_by_role("button", name="Keep me subscribed").click()
    status = page.get_by_role("status").inner_text()
    assert "Acme Ltd will keep sending you Offers by email" in status
    [renewal] = renewals(api, acme, contact)
    assert "HeadlessChrome" in (renewal.evidence.user_agent or "")
