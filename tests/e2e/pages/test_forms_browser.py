"""A subscription form in headless Chromium: a person fills the hosted page in, confirms from the
email, and ``consentry consent history`` shows both steps with their evidence.

The browser uses the public address (``https://localhost:8000``, the default public_base_url)
that forms, links and evidence name; the page's requests to it are handed to the test server,
as a reverse proxy would.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tests.e2e.api.conftest import DISCLOSURE
from tests.e2e.conftest import CLEAN_ENV
from tests.e2e.pages.conftest import Api, Seeded
from tests.e2e.pages.form_helpers import (
    JANE,
    PUBLIC,
    captured,
    create_form,
    local,
    publish_privacy,
)
from tests.e2e.pages.test_forms_http import confirmation_link
from typer.testing import CliRunner

from consentry.cli.app import app
from consentry.domain.model import content_hash

MIN_SECONDS = 1.0
A_PERSON_TAKES = MIN_SECONDS + 0.1  # past form_min_seconds, as anyone reading the form is


@pytest.fixture
def slow(serve: Callable[..., Api]) -> Api:
    return serve(form_min_seconds=MIN_SECONDS)


@pytest.fixture
def shop(slow: Api) -> Seeded:
    tenant = slow.tenant("acme")
    publish_privacy(slow, tenant)
    create_form(slow, tenant, choices=("offers:email",))
    return tenant


@pytest.fixture
def page(browser: Any, slow: Api) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()

    def forward(route: Any) -> None:
        route.fulfill(response=route.fetch(url=local(route.request.url, slow)))

    opened.route(f"{PUBLIC}/**", forward)
    yield opened
    context.close()


def consentry(api: Api, *args: str) -> str:
    """``consentry`` against the server's own database (its data directory holds the keys)."""
    settings = api.container.settings
    where = ["--data-dir", str(settings.data_dir)]
    if settings.database_url:
        where += ["--database-url", settings.database_url]
    result = CliRunner().invoke(app, [*where, *args], env=CLEAN_ENV, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    return result.stdout


def test_a_box_starts_unticked_and_sending_none_asks_for_one(
    slow: Api, shop: Seeded, page: Any
) -> None:
    page.goto(f"{PUBLIC}/f/{shop.slug}/join")
    box = page.get_by_label("Offers by email from Acme Ltd")
    assert not box.is_checked()
    assert DISCLOSURE in page.locator("#cs-disclosure").inner_text()
    # The honeypot is out of sight and out of the tab order: only a bot fills it in.
    honeypot = page.locator("#cs-website")
    where = honeypot.bounding_box()
    assert where is not None
    assert where["x"] + where["width"] <= 0
    assert honeypot.get_attribute("tabindex") == "-1"
    page.get_by_label("Email address").fill(JANE)
    page.get_by_label("Yes, I am 18 or older").check()
    before = slow.counts()
    time.sleep(A_PERSON_TAKES)
    page.get_by_role("button", name="Subscribe").click()
    error = page.get_by_role("alert")
    assert "tick at least one box to subscribe" in error.inner_text()
    assert slow.counts() == before
    # What was typed is still there; the box is still unticked.
    assert page.get_by_label("Email address").input_value() == JANE
    assert page.get_by_label("Yes, I am 18 or older").is_checked()
    assert not box.is_checked()


def test_a_person_subscribes_confirms_and_the_history_shows_both_steps(
    slow: Api, shop: Seeded, page: Any
) -> None:
    page.goto(f"{PUBLIC}/f/{shop.slug}/join")
    page.get_by_label("Offers by email from Acme Ltd").check()
    page.get_by_label("Email address").fill(JANE)
    page.get_by_label("Name (optional)").fill("Jane Roe")
    page.get_by_label("Yes, I am 18 or older").check()
    time.sleep(A_PERSON_TAKES)
    page.get_by_role("button", name="Subscribe").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Thank you"
    answer = page.locator("#result").inner_text()
    assert answer.startswith("Please confirm: we have sent a message to your email address.")
    assert page.locator("#choices").inner_text() == "Offers by email"

    [email] = captured(slow, shop, 1)
    assert email.recipient == JANE
    link = confirmation_link(email.raw)
    assert link.startswith(f"{PUBLIC}/c/")
    page.goto(link)
    page.get_by_role("button", name="Confirm").click()
    assert "Acme Ltd will send you Offers by email" in page.get_by_role("status").inner_text()

    out = consentry(slow, "consent", "history", "-t", shop.slug, "-c", JANE)
    requested, confirmed = out.index(" requested "), out.index(" confirmed ")
    assert requested < confirmed
    asked, confirming = out[requested:confirmed], out[confirmed:]
    for part in (
        "express",
        "web_form",
        f"source={PUBLIC}/f/{shop.slug}/join",
        "ip=127.0.0.1",
        "HeadlessChrome",
        f"disclosure={content_hash(DISCLOSURE)}",
        "actor=form:join",
        "form=join;",
        "embedded=no;",
        "ticked=offers:email;",
        "adult=yes",
    ):
        assert part in asked, (part, out)
    for part in ("double_opt_in", "web_form", f"source={PUBLIC}/c", "ip=127.0.0.1"):
        assert part in confirming, (part, out)
    assert "HeadlessChrome" in confirming
