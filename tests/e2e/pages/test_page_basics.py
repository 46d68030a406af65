"""What every page shares: the stylesheet, strict security headers, CSRF refusals."""

from __future__ import annotations

from tests.e2e.pages.conftest import Api

from consentry.web.pages.render import SECURITY_HEADERS


def test_stylesheet_is_served_with_the_page_headers(api: Api) -> None:
    response = api.client().get("/assets/pages.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert ":focus-visible" in response.text
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    assert "default-src 'self'" in response.headers["content-security-policy"]


def test_api_responses_do_not_carry_the_page_policy(api: Api) -> None:
    # The API docs page loads its scripts from elsewhere; the page policy is for pages only.
    response = api.client().get("/healthz")
    assert "content-security-policy" not in response.headers
