"""What the link pages share: the evidence a request leaves, the one answer to a bad link, and
the page pair of a link that asks for a press of a button (confirm, reconfirm, accept)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from consentry.bootstrap import Container
from consentry.domain.consent import ConsentMethod, Evidence
from consentry.domain.signals import SignalSource
from consentry.services.compose.tokens import InvalidToken
from consentry.services.optouts import OptOutEvidence
from consentry.web.deps import ContainerDep
from consentry.web.pages.csrf import CSRF_FIELD, check_csrf
from consentry.web.pages.render import render
from consentry.web.problems import problem

BAD_LINK = "This link is not valid or has expired."
TOKEN_INVALID = InvalidToken.code
_MAX_USER_AGENT = 500


def evidence_from(
    request: Request, c: Container, signal: SignalSource, page: str
) -> OptOutEvidence:
    """The page's public URL (``page`` is "/u" or "/p": without the token, which would let whoever
    reads the evidence act for the person), the client's address and its user agent."""
    agent = request.headers.get("user-agent")
    return OptOutEvidence(
        signal=signal,
        source=c.settings.public_base_url.rstrip("/") + page,
        ip_address=request.client.host if request.client else None,
        user_agent=agent[:_MAX_USER_AGENT] if agent else None,
    )


def bad_link_page(request: Request) -> Response:
    """Every forged, garbled, expired or unknown token gets exactly this page."""
    context = {"heading": "Link not valid", "message": BAD_LINK, "code": TOKEN_INVALID}
    return render(request, "error.html", context, status=404)


def bad_link_problem() -> Response:
    return problem(404, TOKEN_INVALID, BAD_LINK)


_NO_AGENT = "(none sent)"
Read = Callable[[Container, str], object]
Act = Callable[[Container, str, Evidence], object]


def link_evidence(request: Request, c: Container, page: str, actor: str | None) -> Evidence:
    """A web-form act on a link page: the page's public URL without the token (``page`` is
    "/c", "/r" or "/n"; the token would let whoever reads the evidence act for the person), the
    client's address and its user agent."""
    agent = (request.headers.get("user-agent") or _NO_AGENT)[:_MAX_USER_AGENT]
    return Evidence(
        method=ConsentMethod.WEB_FORM,
        source=c.settings.public_base_url.rstrip("/") + page,
        ip_address=request.client.host if request.client else "unknown",
        user_agent=agent,
        actor=actor,
    )


def add_link_pages(
    router: APIRouter,
    page: str,
    *,
    read: Read,
    act: Act,
    shown: str,
    done: str,
    actor: str | None = None,
) -> None:
    """``GET {page}/{token}``: what the link is about, rendered with ``shown`` and a button;
    it changes nothing, because mail scanners fetch links before people click them.
    ``POST`` (the page's form, behind its CSRF token): ``act`` with the page's evidence, then
    ``done``. Every forged, garbled, expired, spent or foreign token gets the same 404 page."""

    @router.get(page + "/{token}")
    def show_link(token: str, request: Request, c: ContainerDep) -> Response:
        try:
            view = read(c, token)
        except InvalidToken:
            return bad_link_page(request)
        action = f"{page}/{token}"
        return render(request, shown, {"view": view, "action": action}, form_action=action)

    @router.post(page + "/{token}")
    async def act_on_link(token: str, request: Request, c: ContainerDep) -> Response:
        form = await request.form()
        check_csrf(request, form.get(CSRF_FIELD))
        evidence = link_evidence(request, c, page, actor)
        try:
            view = await run_in_threadpool(act, c, token, evidence)
        except InvalidToken:
            return bad_link_page(request)
        return render(request, done, {"view": view})
