"""Confirmation links over HTTP and in Chromium: requested through the API, the captured email's
link opened, GET changing nothing, POST confirming once, bad links answered alike, CSRF."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import httpx
import pytest
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.helpers import ledger, logged_paths, verdict

from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod
from consentry.domain.model import Category, Channel
from consentry.services import tenancy
from consentry.web.pages.csrf import CSRF_COOKIE

JANE = "jane.roe@example.com"
UA = "Mozilla/5.0 (confirming person)"


def request_consent(api: Api, tenant: Seeded, email: str = JANE) -> uuid.UUID:
    """A double opt-in topic ``news`` and a contact who asked for it through the API."""
    tenancy.create_topic(
        api.container.uow(), tenant.slug, key="news", name="Weekly news",
        category=Category.MARKETING, requires_double_opt_in=True,
    )  # fmt: skip
    client = api.client(tenant.token)
    contact = client.post("/v1/contacts", json={"name": "Jane Roe", "email": email}).json()
    recorded = client.post(
        "/v1/consent",
        json={
            "action": "requested",
            "contact": contact["id"],
            "topic": "news",
            "channel": "email",
            "evidence": {
                "method": "web_form",
                "source": "https://acme.example/join",
                "ip_address": "203.0.113.9",
                "user_agent": "Mozilla/5.0 (signing up)",
                "policy_document_id": str(tenant.disclosure_id),
            },
        },
    )
    assert recorded.status_code == 201, recorded.text
    assert recorded.json()["state"] == "pending"
    assert recorded.json()["confirmation_sent"] is True
    return uuid.UUID(contact["id"])


def captured_link(api: Api, tenant: Seeded) -> str:
    """The confirmation URL in the newest captured email of the tenant."""
    newest = api.container.outbox().list(tenant.id, limit=1)[0]
    raw = api.container.outbox().get(newest.id).raw
    parsed = message_from_bytes(raw, policy=default_policy)
    assert isinstance(parsed, EmailMessage)
    assert parsed["Subject"] == f"Please confirm: Weekly news from {tenant.name}"
    found = re.search(r"https://\S+/c/[A-Za-z0-9_-]+", str(parsed.get_content()))
    assert found is not None
    return found.group(0)


def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _csrf(client: httpx.Client, token: str) -> str:
    page = client.get(f"/c/{token}")
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_get_names_the_business_and_topic_and_changes_nothing(api: Api, acme: Seeded) -> None:
    jane = request_consent(api, acme)
    token = token_of(captured_link(api, acme))
    before = api.counts()
    for _ in range(2):  # a link scanner, then the person
        page = api.client().get(f"/c/{token}")
        assert page.status_code == 200
        assert "Acme Ltd" in page.text
        assert "Weekly news" in page.text
        assert ">Confirm</button>" in page.text
        assert page.headers["cache-control"] == "no-store"
    assert api.counts() == before
    assert verdict(api, acme, jane, "news", Channel.EMAIL) == ("deny", ("CONSENT_PENDING",))


def test_post_confirms_once_with_the_pages_evidence(api: Api, acme: Seeded) -> None:
    jane = request_consent(api, acme)
    token = token_of(captured_link(api, acme))
    client = api.client()
    csrf = _csrf(client, token)
    done = client.post(f"/c/{token}", data={"csrf_token": csrf}, headers={"User-Agent": UA})
    assert done.status_code == 200
    assert "you are subscribed" in done.text
    confirmed = [e for e in ledger(api, acme, jane) if e.action is ConsentAction.CONFIRMED]
    assert len(confirmed) == 1
    event = confirmed[0]
    assert event.basis is ConsentBasis.DOUBLE_OPT_IN
    assert event.evidence.method is ConsentMethod.WEB_FORM
    assert event.evidence.source == "https://localhost:8000/c"  # the page, without the token
    assert event.evidence.ip_address == "127.0.0.1"
    assert event.evidence.user_agent == UA
    assert verdict(api, acme, jane, "news", Channel.EMAIL) == ("allow", ())
    # Used: the same link now gets the answer every bad link gets, and writes nothing.
    before = api.counts()
    again = client.post(f"/c/{token}", data={"csrf_token": csrf})
    assert again.status_code == 404
    assert "This link is not valid or has expired." in again.text
    assert client.get(f"/c/{token}").status_code == 404
    assert api.counts() == before


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def test_every_bad_link_gets_the_same_answer_and_changes_nothing(api: Api, acme: Seeded) -> None:
    request_consent(api, acme)
    token = token_of(captured_link(api, acme))
    unsubscribe_shaped = "A" * 134  # an unsubscribe token's length: another purpose entirely
    bad = [_tampered(token), token[:-1], token + "A", "x" * 600, "not-a-token", unsubscribe_shaped]
    client = api.client()
    before = api.counts()
    pages = set()
    for value in bad:
        page = client.get(f"/c/{value}")
        assert page.status_code == 404
        pages.add(page.text)
    assert len(pages) == 1
    assert api.counts() == before


def test_a_post_without_its_csrf_token_is_refused(api: Api, acme: Seeded) -> None:
    jane = request_consent(api, acme)
    token = token_of(captured_link(api, acme))
    client = api.client()
    csrf = _csrf(client, token)
    assert client.cookies[CSRF_COOKIE]
    before = api.counts()
    api.problem(client.post(f"/c/{token}", data={}), 403, "CSRF_FAILED")
    stranger = api.client()  # the right field, but not this browser's cookie
    api.problem(stranger.post(f"/c/{token}", data={"csrf_token": csrf}), 403, "CSRF_FAILED")
    assert api.counts() == before
    assert verdict(api, acme, jane, "news", Channel.EMAIL) == ("deny", ("CONSENT_PENDING",))


def test_resending_through_the_api_is_rate_limited(api: Api, acme: Seeded) -> None:
    jane = request_consent(api, acme)
    client = api.client(acme.token)
    body = {"contact": str(jane), "topic": "news", "channel": "email"}
    refused = client.post("/v1/consent/confirmation", json=body)
    problem = api.problem(refused, 429, "CONFIRMATION_RESEND_TOO_SOON")
    assert 0 < int(refused.headers["retry-after"]) <= 300
    assert problem["retry_after"] == int(refused.headers["retry-after"])
    other = {"contact": str(jane), "topic": "offers", "channel": "email"}
    api.problem(client.post("/v1/consent/confirmation", json=other), 409, "CONSENT_NOT_PENDING")


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def test_a_person_opens_the_emailed_link_and_confirms(api: Api, acme: Seeded, page: Any) -> None:
    jane = request_consent(api, acme)
    url = captured_link(api, acme)
    assert url.startswith("https://localhost:8000/c/")
    page.goto(f"{api.base_url}/c/{token_of(url)}")
    main = page.locator("main").inner_text()
    assert "Acme Ltd" in main
    assert "Weekly news" in main
    assert verdict(api, acme, jane, "news", Channel.EMAIL)[0] == "deny"  # opening changed nothing
    page.get_by_role("button", name="Confirm").click()
    assert "Acme Ltd will send you Weekly news by email" in page.get_by_role("status").inner_text()
    assert verdict(api, acme, jane, "news", Channel.EMAIL) == ("allow", ())
    [confirmed] = [e for e in ledger(api, acme, jane) if e.action is ConsentAction.CONFIRMED]
    assert "HeadlessChrome" in (confirmed.evidence.user_agent or "")


def test_the_request_log_names_the_route_and_never_the_token(
    api: Api, acme: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    request_consent(api, acme)
    token = token_of(captured_link(api, acme))
    client = api.client()
    with caplog.at_level("INFO", logger="consentry.http"):
        client.post(f"/c/{token}", data={"csrf_token": _csrf(client, token)})
        paths = logged_paths(caplog, 2)
    assert paths.count("/c/{token}") == 2
    assert token not in caplog.text
