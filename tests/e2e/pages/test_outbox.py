"""The captured outbox page: who sees what, paging, and an email shown exactly and escaped."""

from __future__ import annotations

import re

from sqlalchemy import delete
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.helpers import capture_email, capture_sms, operator, session_token

from consentry.domain.access import Scope
from consentry.persistence.tables import captured_messages
from consentry.web.deps import SESSION_COOKIE

HOSTILE_SUBJECT = "Spring sale <script>alert(1)</script>"


def test_without_a_credential_the_browser_is_sent_to_sign_in(api: Api) -> None:
    response = api.client().get("/outbox?before=9", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Foutbox%3Fbefore%3D9"
    page = api.client().get(response.headers["location"])
    assert page.status_code == 200
    assert 'name="csrf_token"' in page.text
    assert '<label for="email">' in page.text


def test_a_tenant_key_lists_only_its_own_messages_newest_first(api: Api, acme: Seeded) -> None:
    bravo = api.tenant("bravo")
    first = capture_email(api, acme, to="a1@example.com", subject="First", body="one", delivery=11)
    capture_sms(api, bravo, to="+447400000001", body="Bravo text", delivery=12)
    second = capture_sms(api, acme, to="+447400000002", body="Your car is ready", delivery=13)
    page = api.client(acme.token).get("/outbox")
    assert page.status_code == 200
    assert page.text.index(f'href="/outbox/{second}"') < page.text.index(f'href="/outbox/{first}"')
    assert "Your car is ready" in page.text
    assert "a1@example.com" in page.text
    assert acme.name in page.text
    assert "Bravo text" not in page.text
    assert bravo.name not in page.text


def test_another_tenants_message_is_not_found_like_a_missing_one(api: Api, acme: Seeded) -> None:
    bravo = api.tenant("bravo")
    theirs = capture_email(api, bravo, to="b@example.com", subject="Secret", body="x", delivery=1)
    client = api.client(acme.token)
    foreign = client.get(f"/outbox/{theirs}")
    missing = client.get(f"/outbox/{theirs + 1000}")
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json()["code"] == missing.json()["code"] == "CAPTURED_MESSAGE_NOT_FOUND"
    assert "Secret" not in foreign.text
    assert "b@example.com" not in foreign.text
    # A browser gets the same refusal as a page.
    html = client.get(f"/outbox/{theirs}", headers={"Accept": "text/html"})
    assert html.status_code == 404
    assert html.headers["content-type"].startswith("text/html")
    assert "CAPTURED_MESSAGE_NOT_FOUND" in html.text
    assert html.headers["content-security-policy"].startswith("default-src 'self'")
    assert html.headers["cache-control"] == "no-store"
    assert "content-security-policy" not in client.get("/v1/topics").headers  # pages only


def test_a_key_without_messages_read_is_refused(api: Api, acme: Seeded) -> None:
    capture_email(api, acme, to="a@example.com", subject="Hi", body="x", delivery=1)
    issued = api.issue_key(acme.slug, scopes=frozenset({Scope.CONTACTS_READ}))
    response = api.client(issued.token).get("/outbox")
    api.problem(response, 403, "FORBIDDEN", field="scope")


def test_a_platform_operator_sees_every_tenant(api: Api, acme: Seeded) -> None:
    # On PostgreSQL the tests share a database, and other tests' messages are sealed under
    # their own servers' keys: this one starts from an empty outbox.
    with api.container.engine.begin() as conn:
        conn.execute(delete(captured_messages))
    bravo = api.tenant("bravo")
    capture_email(api, acme, to="a@example.com", subject="Acme news", body="x", delivery=1)
    capture_email(api, bravo, to="b@example.com", subject="Bravo news", body="x", delivery=2)
    email, _ = operator(api)
    client = api.client(cookies={SESSION_COOKIE: session_token(api, email)})
    page = client.get("/outbox")
    assert page.status_code == 200
    assert "Acme news" in page.text
    assert "Bravo news" in page.text
    assert acme.name in page.text
    assert bravo.name in page.text


def test_pages_of_fifty_with_a_link_to_older_messages(api: Api, acme: Seeded) -> None:
    ids = [
        capture_sms(api, acme, to="+447400000009", body=f"message {n}", delivery=n)
        for n in range(1, 56)
    ]
    client = api.client(acme.token)
    first = client.get("/outbox")
    shown = [int(i) for i in re.findall(r'href="/outbox/(\d+)"', first.text)]
    assert shown == sorted(ids, reverse=True)[:50]
    older = re.search(r'href="/outbox\?before=(\d+)"', first.text)
    assert older is not None
    second = client.get(f"/outbox?before={older.group(1)}")
    rest = [int(i) for i in re.findall(r'href="/outbox/(\d+)"', second.text)]
    assert rest == sorted(ids, reverse=True)[50:]
    assert "before=" not in second.text.split("Newest messages")[1]


def test_an_email_is_shown_with_headers_body_and_escaped_source(api: Api, acme: Seeded) -> None:
    captured = capture_email(
        api, acme, to="jane@example.com", subject=HOSTILE_SUBJECT, body="<b>Hello</b> Jane",
        delivery=7,
    )  # fmt: skip
    page = api.client(acme.token).get(f"/outbox/{captured}")
    assert page.status_code == 200
    assert "<script>" not in page.text
    assert "Spring sale &lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "&lt;b&gt;Hello&lt;/b&gt; Jane" in page.text
    raw = re.search(r'<pre id="raw">(.*?)</pre>', page.text, re.S)
    assert raw is not None
    assert "Subject: Spring sale &lt;script&gt;" in raw.group(1)
    assert "To: jane@example.com" in raw.group(1)
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["referrer-policy"] == "no-referrer"
    reads = [e for e in api.audit(acme.id) if e.action == "outbox.read"]
    assert [e.object_id for e in reads] == [str(captured)]


def test_an_sms_is_shown_as_its_text(api: Api, acme: Seeded) -> None:
    captured = capture_sms(
        api, acme, to="+447400000003", body="Your MOT is due & booked", delivery=3
    )
    page = api.client(acme.token).get(f"/outbox/{captured}")
    body = re.search(r'<pre id="body">(.*?)</pre>', page.text, re.S)
    assert body is not None
    assert body.group(1) == "Your MOT is due &amp; booked"
