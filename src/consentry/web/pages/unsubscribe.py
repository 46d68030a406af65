"""Unsubscribe links: ``/u/{token}`` (issue 5, item 1).

``GET`` shows the business, the topic and two buttons; it never changes anything, because mail
scanners fetch links before people click them. ``POST`` with the body ``List-Unsubscribe=One-Click``
(form-urlencoded or multipart, no cookies, no CSRF token) is RFC 8058's one-click unsubscribe: the
topic is withdrawn at once and the answer is 200, never a redirect. Any other ``POST`` is the
page's own form and needs its CSRF token; it answers with a confirmation page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse

from consentry.domain.errors import UnknownValue
from consentry.domain.signals import SignalSource
from consentry.services import optouts
from consentry.services.clock import utcnow
from consentry.services.compose.tokens import InvalidToken
from consentry.web.deps import ContainerDep, run_write
from consentry.web.pages.csrf import CSRF_FIELD, check_csrf
from consentry.web.pages.links import bad_link_page, bad_link_problem, evidence_from
from consentry.web.pages.render import render

router = APIRouter(include_in_schema=False)
ONE_CLICK = ("List-Unsubscribe", "One-Click")  # RFC 8058 section 3.1
CHOICES: dict[str, optouts.What] = {"topic": "topic", "all_marketing": "all_marketing"}


@router.get("/u/{token}")
def unsubscribe_page(token: str, request: Request, c: ContainerDep) -> Response:
    try:
        view = optouts.read_token(c.read_uow(), c.unsubscribe_tokens(), token)
    except InvalidToken:
        return bad_link_page(request)
    context = {"view": view, "action": f"/u/{token}", "preferences": f"/p/{token}"}
    return render(request, "unsubscribe.html", context, form_action=f"/u/{token}")


@router.post("/u/{token}")
async def unsubscribe(token: str, request: Request, c: ContainerDep) -> Response:
    form = await request.form()
    one_click = form.get(ONE_CLICK[0]) == ONE_CLICK[1]
    what: optouts.What | None = "topic"
    if not one_click:
        check_csrf(request, form.get(CSRF_FIELD))
        what = CHOICES.get(str(form.get("what", "")))
    if what is None:
        raise UnknownValue("choose what to unsubscribe from", field="what")
    signal = SignalSource.ONE_CLICK if one_click else SignalSource.UNSUBSCRIBE_PAGE
    tokens = c.unsubscribe_tokens()
    evidence = evidence_from(request, c, signal, "/u")
    try:
        tenant = tokens.read(token, utcnow()).tenant_id
        # One transaction, committed at its end: the event loop may run it (run_write).
        done = await run_write(
            c,
            tenant,
            lambda uow: optouts.unsubscribe(uow, tokens, token, what=what, evidence=evidence),
        )
    except InvalidToken:
        return bad_link_problem()
    if one_click:
        return PlainTextResponse(f"Unsubscribed from {done.view.topic.name}.\n")
    context = {"done": done, "view": done.view, "preferences": f"/p/{token}"}
    return render(request, "unsubscribed.html", context)
