"""Acceptance links of policy-change notices: ``/n/{token}`` (issue 6, item 5).

``GET`` names the business and shows the new version, title, number and words, with an
"I accept" button; it changes nothing, because mail scanners fetch links before people click
them. ``POST`` (the page's form, behind its CSRF token) records the acceptance once with the
page's evidence. Every forged, garbled, expired, spent or foreign token gets the same answer.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from consentry.bootstrap import Container
from consentry.domain.consent import ConsentMethod, Evidence
from consentry.services import notice_acceptance
from consentry.services.compose.tokens import InvalidToken
from consentry.web.deps import ContainerDep
from consentry.web.pages.csrf import CSRF_FIELD, check_csrf
from consentry.web.pages.links import bad_link_page
from consentry.web.pages.render import render

router = APIRouter(include_in_schema=False)
_MAX_USER_AGENT = 500
_NO_AGENT = "(none sent)"


def page_evidence(request: Request, c: Container) -> Evidence:
    """The page's public URL without the token (which would let whoever reads the evidence act
    for the person), the client's address and its user agent."""
    agent = (request.headers.get("user-agent") or _NO_AGENT)[:_MAX_USER_AGENT]
    return Evidence(
        method=ConsentMethod.WEB_FORM,
        source=c.settings.public_base_url.rstrip("/") + "/n",
        ip_address=request.client.host if request.client else "unknown",
        user_agent=agent,
    )


@router.get("/n/{token}")
def acceptance_page(token: str, request: Request, c: ContainerDep) -> Response:
    try:
        view = notice_acceptance.read_acceptance(c.read_uow(), c.notice_tokens(), token)
    except InvalidToken:
        return bad_link_page(request)
    context = {"view": view, "action": f"/n/{token}"}
    return render(request, "notice_accept.html", context, form_action=f"/n/{token}")


@router.post("/n/{token}")
async def accept(token: str, request: Request, c: ContainerDep) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    try:
        view, _events = await run_in_threadpool(
            notice_acceptance.accept, c.uow(), c.notice_tokens(), token, page_evidence(request, c)
        )
    except InvalidToken:
        return bad_link_page(request)
    return render(request, "notice_accepted.html", {"view": view})
