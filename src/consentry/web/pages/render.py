"""Rendering the server-side pages: one Jinja2 environment (autoescaped), security headers.

The pages work without JavaScript and load nothing but their own stylesheet, so the Content
Security Policy can be strict. Links on the public pages carry secret tokens in their path:
``Referrer-Policy: no-referrer`` keeps them from leaking to any site a page links to, and
``Cache-Control: no-store`` keeps them (and the personal data on the pages) out of caches.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from consentry.web.pages.csrf import CSRF_FIELD, csrf_nonce, csrf_token, set_csrf_cookie
from consentry.web.problems import PROBLEM

HERE = Path(__file__).parent
STYLESHEET = HERE / "static" / "pages.css"
STYLESHEET_PATH = "/assets/pages.css"
# Every path the pages answer on; the security headers apply to exactly these.
PAGE_PREFIXES = (
    "/outbox",
    "/u/",
    "/p/",
    "/c/",
    "/r/",
    "/n/",
    "/f/",
    "/d/",
    "/preferences/",
    "/login",
    "/assets/",
)

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'; object-src 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


@functools.cache
def environment() -> Environment:
    """Built on first use, not at import time."""
    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"], default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    form_action: str | None = None,
) -> HTMLResponse:
    """Render ``template``; with ``form_action``, the page gets a CSRF token for that path."""
    values: dict[str, Any] = {"stylesheet": STYLESHEET_PATH, "csrf_field": CSRF_FIELD}
    values.update(context or {})
    nonce, new = csrf_nonce(request)
    if form_action is not None:
        values["csrf_token"] = csrf_token(request, nonce, form_action)
    html = environment().get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    if form_action is not None and new:
        set_csrf_cookie(request, response, nonce)
    return response


def stylesheet() -> Response:
    return Response(STYLESHEET.read_bytes(), media_type="text/css")


def is_page(path: str) -> bool:
    return path.startswith(PAGE_PREFIXES)


def _problem_page(request: Request, status: int, headers: Headers, body: bytes) -> Response:
    """A problem answer on a page, for a browser: the same status and code, as a page."""
    try:
        found = json.loads(body)
        heading, detail, code = found["title"], found["detail"], found["code"]
    except (ValueError, KeyError, TypeError):
        heading, detail, code = "Something went wrong", "The request could not be completed.", ""
    page = render(
        request,
        "error.html",
        {"heading": heading, "message": detail, "code": code},
        status=status,
    )
    for name in ("retry-after", "www-authenticate"):
        if name in headers:
            page.headers[name] = headers[name]
    return page


class PageHeaders:
    """ASGI middleware: the page headers on every page response, errors included; a browser
    (``Accept: text/html``) gets errors as a page rather than problem+json. Other paths (the
    API) pass straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page(scope["path"]):
            await self.app(scope, receive, send)
            return
        wants_html = "text/html" in Headers(scope=scope).get("accept", "")
        problem: Message | None = None  # a problem answer held back to become a page
        body = bytearray()

        async def paged(message: Message) -> None:
            nonlocal problem
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if wants_html and headers.get("content-type", "").startswith(PROBLEM):
                    problem = message
                    return
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                await send(message)
            elif problem is not None and message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body", False):
                    page = _problem_page(
                        Request(scope),
                        problem["status"],
                        Headers(raw=problem["headers"]),
                        bytes(body),
                    )
                    for name, value in SECURITY_HEADERS.items():
                        page.headers.setdefault(name, value)
                    await page(scope, receive, send)
            else:
                await send(message)

        await self.app(scope, receive, paged)
