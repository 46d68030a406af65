"""Unsubscribe links over plain HTTP: RFC 8058 one-click, idempotency, bad tokens, CSRF."""

from __future__ import annotations

import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.e2e.api.conftest import chain_held
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.helpers import (
    consenting_contact,
    ledger,
    link_token,
    logged_paths,
    suppressions,
    verdict,
)

from consentry.bootstrap import INLINE_LOCK_TIMEOUT_MS
from consentry.domain.consent import ConsentAction, ConsentMethod
from consentry.domain.model import Channel
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from consentry.web.pages.csrf import CSRF_COOKIE

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
UA = "Mozilla/5.0 (Mail provider one-click)"


def withdrawals(api: Api, tenant: Seeded, contact_id: uuid.UUID) -> list[str]:
    events = ledger(api, tenant, contact_id)
    return [f"{e.channel.value}" for e in events if e.action is ConsentAction.WITHDRAWN]


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_post_withdraws_at_once_and_answers_200(
    api: Api, acme: Seeded, encoding: str
) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"
    client = api.client()
    if encoding == "urlencoded":
        response = client.post(f"/u/{token}", data=ONE_CLICK, headers={"User-Agent": UA})
    else:
        response = client.post(
            f"/u/{token}",
            files={"List-Unsubscribe": (None, "One-Click")},
            headers={"User-Agent": UA},
        )
    assert response.status_code == 200
    assert not response.is_redirect
    assert "set-cookie" not in response.headers
    assert verdict(api, acme, jane, "offers", Channel.EMAIL) == ("deny", ("CONSENT_WITHDRAWN",))
    withdrawn = [e for e in ledger(api, acme, jane) if e.action is ConsentAction.WITHDRAWN]
    assert len(withdrawn) == 1
    evidence = withdrawn[0].evidence
    assert evidence.method is ConsentMethod.WEB_FORM
    assert evidence.actor == "signal:one_click"
    assert evidence.user_agent == UA
    assert evidence.ip_address == "127.0.0.1"
    assert evidence.source == "https://localhost:8000/u"  # the page, without the token
    # Only the topic: service messages and the tenant's suppressions are untouched.
    assert suppressions(api, acme) == []


def test_one_click_twice_appends_one_ledger_event(api: Api, acme: Seeded) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    client = api.client()
    assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert client.post(f"/u/{token}", data=ONE_CLICK).status_code == 200
    assert withdrawals(api, acme, jane) == ["email"]


def test_get_changes_nothing(api: Api, acme: Seeded) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    before = api.counts()
    page = api.client().get(f"/u/{token}")
    assert page.status_code == 200
    assert "Acme Ltd" in page.text
    assert "Unsubscribe from Offers" in page.text
    assert "Unsubscribe from all marketing" in page.text
    assert f'href="/p/{token}"' in page.text
    assert api.counts() == before
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"


def _tampered(token: str) -> str:
    middle = len(token) // 2
    return token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]


def test_every_bad_token_gets_the_same_answer_and_changes_nothing(api: Api, acme: Seeded) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    bravo = api.tenant("bravo")
    other_key = link_token(api, bravo, consenting_contact(api, bravo, email="bob@example.com"))
    bad = [_tampered(token), token[:-1], "x" * 600, "not-a-token", token + "A", other_key[::-1]]
    client = api.client()
    before = api.counts()
    pages, answers = set(), set()
    for value in bad:
        page = client.get(f"/u/{value}")
        assert page.status_code == 404
        pages.add(page.text)
        answer = client.post(f"/u/{value}", data=ONE_CLICK)
        api.problem(answer, 404, "TOKEN_INVALID")
        answers.add(answer.content)
    assert len(pages) == 1
    assert len(answers) == 1
    assert api.counts() == before


def _page_form(client: httpx.Client, token: str) -> str:
    page = client.get(f"/u/{token}")
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def test_a_form_post_without_its_csrf_token_is_refused(api: Api, acme: Seeded) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    client = api.client()
    csrf = _page_form(client, token)
    nonce = client.cookies[CSRF_COOKIE]
    before = api.counts()
    no_field = client.post(f"/u/{token}", data={"what": "all_marketing"})
    api.problem(no_field, 403, "CSRF_FAILED")
    stranger = api.client()  # the right field, but not this browser's cookie
    wrong_cookie = stranger.post(f"/u/{token}", data={"what": "topic", "csrf_token": csrf})
    api.problem(wrong_cookie, 403, "CSRF_FAILED")
    other_path = link_token(api, acme, jane)  # a token for another form does not fit this one
    misplaced = client.post(f"/u/{other_path}", data={"what": "topic", "csrf_token": csrf})
    api.problem(misplaced, 403, "CSRF_FAILED")
    assert api.counts() == before
    assert nonce


def test_the_page_buttons_unsubscribe_from_everything_marketing(api: Api, acme: Seeded) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com", phone="+447400123456")
    token = link_token(api, acme, jane)
    client = api.client()
    csrf = _page_form(client, token)
    done = client.post(f"/u/{token}", data={"what": "all_marketing", "csrf_token": csrf})
    assert done.status_code == 200
    assert "no more marketing by email" in done.text
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "deny"
    # Only the link's channel: the text messages Jane agreed to still go.
    assert verdict(api, acme, jane, "offers", Channel.SMS)[0] == "allow"
    assert verdict(api, acme, jane, "reminders", Channel.EMAIL)[1] != ("SUPPRESSED_UNSUBSCRIBED",)
    [block] = suppressions(api, acme)
    assert (block.reason, block.scope, block.channel) == (
        SuppressionReason.UNSUBSCRIBED,
        SuppressionScope.MARKETING,
        Channel.EMAIL,
    )
    events = len(ledger(api, acme, jane))
    again = client.post(f"/u/{token}", data={"what": "all_marketing", "csrf_token": csrf})
    assert again.status_code == 200
    assert len(ledger(api, acme, jane)) == events
    assert len(suppressions(api, acme)) == 1


def test_the_request_log_names_the_route_and_never_the_token(
    api: Api, acme: Seeded, caplog: pytest.LogCaptureFixture
) -> None:
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    with caplog.at_level("INFO", logger="consentry.http"):
        assert api.client().get(f"/u/{token}").status_code == 200
        assert api.client().post(f"/u/{token}", data=ONE_CLICK).status_code == 200
        paths = logged_paths(caplog, 2)
    assert paths.count("/u/{token}") == 2
    assert token not in caplog.text


@pytest.mark.postgres
@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
def test_one_click_behind_a_held_ledger_chain_is_applied_once_when_it_is_free(
    api: Api, acme: Seeded
) -> None:
    """On PostgreSQL a one-click runs on the event loop; while another transaction holds the
    tenant's ledger chain (an import does, batch by batch) it gives the wait up, rolls back and
    runs again on a worker thread: the person is unsubscribed once, as soon as the chain is
    free, and the loop answers other requests meanwhile."""
    jane = consenting_contact(api, acme, email="jane@example.com")
    token = link_token(api, acme, jane)
    with ThreadPoolExecutor(1) as pool:
        with chain_held(api, acme.id):
            pending = pool.submit(api.client().post, f"/u/{token}", data=ONE_CLICK)
            time.sleep(INLINE_LOCK_TIMEOUT_MS / 1000 * 4)
            started = time.monotonic()
            assert api.client().get(f"/u/{token}").status_code == 200  # the page, meanwhile
            assert time.monotonic() - started < 1.0
            time.sleep(1.0)
            assert not pending.done()
            assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"
        response = pending.result(timeout=30)
    assert response.status_code == 200, response.text
    assert withdrawals(api, acme, jane) == ["email"]
    assert verdict(api, acme, jane, "offers", Channel.EMAIL) == ("deny", ("CONSENT_WITHDRAWN",))
