"""Who is looking at an operator page: the session cookie or an API key, as for the API.

A browser without a credential is sent to the sign-in page; a presented credential that is not
valid gets the API's 401 problem.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse

from consentry.bootstrap import Container
from consentry.services.audit import RequestContext
from consentry.web.deps import SESSION_COOKIE, principal_of


def page_context(request: Request, c: Container) -> RequestContext | None:
    """The request's context, or None when it carries no credential at all."""
    if not request.headers.get("authorization") and not request.cookies.get(SESSION_COOKIE):
        return None
    principal = principal_of(request, c)
    request.state.principal = principal
    client = request.client.host if request.client else None
    return RequestContext(principal, client, getattr(request.state, "request_id", None))


def safe_next(target: str | None, default: str = "/outbox") -> str:
    """Only a local path: never another site (an open redirect) nor a scheme-relative URL."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def sign_in_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
