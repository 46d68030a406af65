"""The pages in headless Chromium: what a person and an operator actually do, keyboard included."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Any

import pytest
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.helpers import (
    capture_email,
    consenting_contact,
    ledger,
    link_token,
    operator,
    suppressions,
    verdict,
)

from consentry.domain.consent import ConsentAction, ConsentBasis
from consentry.domain.model import Channel
from consentry.domain.suppression import SuppressionReason

JANE = "jane.roe@example.com"
PHONE = "+447400123456"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    dialogs: list[str] = []
    opened.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    opened.dialogs = dialogs
    yield opened
    context.close()


def test_operator_signs_in_and_reads_a_captured_email(api: Api, acme: Seeded, page: Any) -> None:
    email, password = operator(api, tenant=acme)
    captured = capture_email(
        api, acme, to=JANE, subject="Sale <script>alert(1)</script>", body="Hello Jane", delivery=5
    )
    page.goto(f"{api.base_url}/outbox")
    assert page.url.startswith(f"{api.base_url}/login?next=")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{api.base_url}/outbox")
    row = page.get_by_role("row").filter(has_text=JANE)
    assert acme.name in row.inner_text()
    row.get_by_role("link").click()
    page.wait_for_url(f"{api.base_url}/outbox/{captured}")
    assert page.get_by_role("heading", level=1).inner_text() == "Sale <script>alert(1)</script>"
    assert "Subject: Sale <script>alert(1)</script>" in page.locator("#raw").inner_text()
    assert page.locator("#body").inner_text().strip() == "Hello Jane"
    assert page.dialogs == []  # the subject was shown, never run


def test_unsubscribe_button_confirms_and_the_gate_denies(api: Api, acme: Seeded, page: Any) -> None:
    jane = consenting_contact(api, acme, email=JANE)
    page.goto(f"{api.base_url}/u/{link_token(api, acme, jane)}")
    assert "Acme Ltd" in page.locator("main").inner_text()
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"  # GET changed nothing
    page.get_by_role("button", name="Unsubscribe from Offers").click()
    assert "no more Offers by email" in page.get_by_role("status").inner_text()
    assert verdict(api, acme, jane, "offers", Channel.EMAIL) == ("deny", ("CONSENT_WITHDRAWN",))
    withdrawn = [e for e in ledger(api, acme, jane) if e.action is ConsentAction.WITHDRAWN]
    assert [e.evidence.actor for e in withdrawn] == ["signal:unsubscribe_page"]
    assert "HeadlessChrome" in (withdrawn[0].evidence.user_agent or "")


def test_keyboard_alone_reaches_every_control(api: Api, acme: Seeded, page: Any) -> None:
    jane = consenting_contact(api, acme, email=JANE)
    token = link_token(api, acme, jane)
    page.goto(f"{api.base_url}/u/{token}")
    reached = []
    for _ in range(5):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert reached[:4] == [
        "Skip to content",
        "Unsubscribe from Offers",
        "Unsubscribe from all marketing",
        "preference centre",
    ]
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")  # back on "Unsubscribe from all marketing"
    page.keyboard.press("Enter")
    assert "no more marketing by email" in page.get_by_role("status").inner_text()
    # The preference centre: every box has a label, Space ticks it, Enter on the button saves.
    page.goto(f"{api.base_url}/p/{token}")
    boxes = page.locator("input[type=checkbox]")
    for i in range(boxes.count()):
        box_id = boxes.nth(i).get_attribute("id")
        assert page.locator(f"label[for='{box_id}']").count() == 1
    page.keyboard.press("Tab")  # skip link
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "want-offers-email"
    page.keyboard.press("Space")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "stop_all"
    assert page.evaluate("document.activeElement.checked")  # on since the button above
    page.keyboard.press("Space")  # a ticked topic needs the switch off: "stop all" wins
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Save my choices"
    page.keyboard.press("Enter")
    assert page.get_by_role("status").inner_text() == "Your choices are saved."
    assert page.get_by_label("Offers by email").is_checked()
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"


def test_preference_centre_switches_a_topic_and_stops_all(
    api: Api, acme: Seeded, page: Any
) -> None:
    jane = consenting_contact(api, acme, email=JANE, phone=PHONE)
    page.goto(f"{api.base_url}/p/{link_token(api, acme, jane)}")
    assert page.get_by_label("Offers by email").is_checked()
    assert page.get_by_label("Offers by sms").is_checked()
    assert "Reminders by email" in page.locator("#service").inner_text()
    assert "Reply STOP" in page.locator("#disclosure").inner_text()
    page.get_by_label("Offers by sms").uncheck()
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_role("status").inner_text() == "Your choices are saved."
    assert page.locator("#state-offers-sms").inner_text() == "(unsubscribed)"
    assert verdict(api, acme, jane, "offers", Channel.SMS) == ("deny", ("CONSENT_WITHDRAWN",))
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"
    # Back on: a new affirmative act citing the disclosure shown on the page.
    page.get_by_label("Offers by sms").check()
    page.get_by_role("button", name="Save my choices").click()
    assert verdict(api, acme, jane, "offers", Channel.SMS)[0] == "allow"
    regrant = ledger(api, acme, jane)[-1]
    assert regrant.action is ConsentAction.GRANTED
    assert regrant.basis is ConsentBasis.EXPRESS  # the link went to the email address
    assert regrant.evidence.policy_document_id == acme.disclosure_id
    # Stop all marketing: every channel, with a block on each.
    page.get_by_label(re.compile("Stop all marketing")).check()
    page.get_by_role("button", name="Save my choices").click()
    assert page.get_by_label(re.compile("Stop all marketing")).is_checked()
    assert not page.get_by_label("Offers by email").is_checked()
    for channel in (Channel.EMAIL, Channel.SMS):
        assert verdict(api, acme, jane, "offers", channel)[0] == "deny"
    blocks = suppressions(api, acme)
    assert sorted(b.channel.value for b in blocks) == ["email", "sms"]
    assert {b.reason for b in blocks} == {SuppressionReason.UNSUBSCRIBED}
    # Re-subscribing to one topic by email lifts the block on email only.
    page.get_by_label(re.compile("Stop all marketing")).uncheck()
    page.get_by_label("Offers by email").check()
    page.get_by_role("button", name="Save my choices").click()
    assert verdict(api, acme, jane, "offers", Channel.EMAIL)[0] == "allow"
    assert verdict(api, acme, jane, "offers", Channel.SMS)[0] == "deny"
    assert suppressions(api, acme) == []


def _outbox_to(api: Api, tenant: Seeded, address: str, timeout: float = 10.0) -> list[bytes]:
    deadline = time.monotonic() + timeout
    while True:
        found = [
            api.container.outbox().get(m.id).raw
            for m in api.container.outbox().list(tenant.id, 100)
            if m.recipient == address
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_token_less_entry_never_tells_whether_an_address_is_known(
    api: Api, acme: Seeded, page: Any
) -> None:
    consenting_contact(api, acme, email=JANE)
    stranger = f"nobody-{uuid.uuid4().hex[:6]}@example.com"
    answers = []
    for address in (stranger, JANE):
        page.goto(f"{api.base_url}/preferences/{acme.slug}")
        page.get_by_label("Email address or mobile number").fill(address)
        page.get_by_role("button", name="Send me a link").click()
        answers.append((page.title(), page.locator("main").inner_text()))
    assert answers[0] == answers[1]
    assert "If we know this address, we have sent a link to it." in answers[0][1]
    [sent] = _outbox_to(api, acme, JANE)
    assert _outbox_to(api, acme, stranger, timeout=0.5) == []
    mail = message_from_bytes(sent, policy=default_policy)
    assert isinstance(mail, EmailMessage)
    assert mail["Subject"] == f"Your preference centre link for {acme.name}"
    body = mail.get_body(preferencelist=("plain",))
    assert isinstance(body, EmailMessage)
    link = re.search(r"https://\S+/p/([A-Za-z0-9_-]+)", body.get_content())
    assert link is not None
    page.goto(f"{api.base_url}/p/{link.group(1)}")
    assert page.get_by_label("Offers by email").is_checked()
