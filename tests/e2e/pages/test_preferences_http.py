"""The preference centre and its entry page over plain HTTP: refusals and rate limits."""

from __future__ import annotations

import re
import time

import httpx
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.helpers import consenting_contact, link_token, verdict

from consentry.domain.model import Channel, TenantStatus
from consentry.services.clock import utcnow
from consentry.services.preference_links import preference_link_message


def _csrf(client: httpx.Client, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


def test_a_change_without_the_csrf_token_is_refused_and_nothing_applied(
    api: Api, acme: Seeded
) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    client = api.client()
    client.get(f"/p/{token}")  # the browser holds its cookie, the attacker's form has no token
    before = api.counts()
    refused = client.post(f"/p/{token}", data={"stop_all": "on"})
    api.problem(refused, 403, "CSRF_FAILED")
    assert api.counts() == before
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"


def test_unticking_every_box_withdraws_and_get_changes_nothing(api: Api, acme: Seeded) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    client = api.client()
    before = api.counts()
    csrf = _csrf(client, f"/p/{token}")
    assert api.counts() == before
    saved = client.post(f"/p/{token}", data={"csrf_token": csrf})
    assert saved.status_code == 200
    assert "Your choices are saved." in saved.text
    assert verdict(api, acme, jane, "offers", Channel.EMAIL) == ("deny", ("CONSENT_WITHDRAWN",))


def test_the_entry_answers_alike_and_is_rate_limited(api: Api, acme: Seeded) -> None:
    consenting_contact(api, acme, email="jane@example.com")
    client = api.client()
    path = f"/preferences/{acme.slug}"
    csrf = _csrf(client, path)
    known = client.post(path, data={"address": "jane@example.com", "csrf_token": csrf})
    unknown = client.post(path, data={"address": "who@example.com", "csrf_token": csrf})
    garbage = client.post(path, data={"address": "not an address", "csrf_token": csrf})
    assert known.status_code == unknown.status_code == garbage.status_code == 200
    assert known.content == unknown.content == garbage.content
    api.problem(client.post(path, data={"address": "x@example.com"}), 403, "CSRF_FAILED")
    statuses = [
        client.post(path, data={"address": f"p{n}@example.com", "csrf_token": csrf}).status_code
        for n in range(4)
    ]
    assert statuses == [200, 200, 429, 429]  # five per client address, then wait


def test_an_unknown_tenant_has_no_entry_page(api: Api) -> None:
    response = api.client().get("/preferences/no-such-business")
    api.problem(response, 404, "TENANT_NOT_FOUND")


def _outbox_count(api: Api, acme: Seeded, at_least: int = 0) -> int:
    """Messages captured for acme, waiting up to 5 s for ``at_least`` (links go after the
    page has answered)."""
    deadline = time.monotonic() + 5
    while True:
        count = len(api.container.outbox().list(acme.id, 100))
        if count >= at_least or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_a_suspended_business_sends_no_preference_link(api: Api, acme: Seeded) -> None:
    consenting_contact(api, acme, email="jane@example.com")
    client = api.client()
    path = f"/preferences/{acme.slug}"
    ask = {"address": "jane@example.com", "csrf_token": _csrf(client, path)}
    before = _outbox_count(api, acme)
    assert client.post(path, data=ask).status_code == 200
    assert _outbox_count(api, acme, at_least=before + 1) == before + 1  # active: a link goes
    with api.container.uow() as uow:
        uow.tenants.set_status(acme.id, TenantStatus.SUSPENDED.value, utcnow())
        uow.commit()
    message = preference_link_message(
        api.container.uow(), api.container.unsubscribe_tokens(), acme.slug, "jane@example.com",
        public_base_url="https://consentry.example", sms_sender="+15005550006",
    )  # fmt: skip
    assert message is None
    answered = client.post(path, data=ask)
    assert answered.status_code == 200  # the page answers alike, and nothing goes out
    time.sleep(0.5)
    assert _outbox_count(api, acme) == before + 1
