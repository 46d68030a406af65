"""The preference centre (issue 5, item 2): ``/p/{token}`` and the entry ``/preferences/{tenant}``.

``GET /p/{token}`` shows every topic on every channel of the person with its state; ``POST``
(CSRF) records each change with the page's evidence. ``GET /preferences/{tenant}`` asks for an
address; ``POST`` (CSRF, rate-limited per client and per address) answers "if we know this
address, we sent a link" whatever the address, and looks it up and sends the link afterwards.
"""

from __future__ import annotations

import hashlib
import logging
import math
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form, Path, Request, Response
from fastapi.concurrency import run_in_threadpool

from consentry.bootstrap import Container, build_adapters
from consentry.domain.delivery import OutboundMessage
from consentry.domain.signals import SignalSource
from consentry.services import preference_links, preferences
from consentry.services.compose.tokens import InvalidToken
from consentry.web.deps import ContainerDep
from consentry.web.limits import RateLimiter
from consentry.web.pages.csrf import CSRF_FIELD, check_csrf
from consentry.web.pages.links import bad_link_page, evidence_from
from consentry.web.pages.render import render
from consentry.web.problems import problem

router = APIRouter(include_in_schema=False)
log = logging.getLogger("consentry.pages")
Slug = Annotated[str, Path(min_length=1, max_length=100)]


class EntryLimits:
    """Link requests: 5 per client address per 10 minutes, 3 per typed address per hour."""

    def __init__(self) -> None:
        self.client = RateLimiter(5 / 600, 5)
        self.address = RateLimiter(3 / 3600, 3)

    def wait(self, client: str, address: str) -> float:
        digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()
        return max(self.client.acquire(client), self.address.acquire(digest))


def _page(request: Request, c: Container, token: str, notice: str | None = None) -> Response:
    found = preferences.preferences(c.read_uow(), c.unsubscribe_tokens(), token)
    context = {"p": found, "view": found.view, "action": f"/p/{token}", "notice": notice}
    return render(request, "preferences.html", context, form_action=f"/p/{token}")


@router.get("/p/{token}")
def preference_centre(token: str, request: Request, c: ContainerDep) -> Response:
    try:
        return _page(request, c, token)
    except InvalidToken:
        return bad_link_page(request)


@router.post("/p/{token}")
async def save_preferences(token: str, request: Request, c: ContainerDep) -> Response:
    form = await request.form()
    check_csrf(request, form.get(CSRF_FIELD))
    wanted = frozenset(str(v) for v in form.getlist("want"))
    evidence = evidence_from(request, c, SignalSource.PREFERENCE_CENTRE, "/p")
    try:
        await run_in_threadpool(
            preferences.update_preferences,
            c.uow(),
            c.unsubscribe_tokens(),
            token,
            wanted=wanted,
            stop_all=form.get("stop_all") == "on",
            evidence=evidence,
        )
        return _page(request, c, token, "Your choices are saved.")
    except InvalidToken:
        return bad_link_page(request)


@router.get("/preferences/{slug}")
def entry(slug: Slug, request: Request, c: ContainerDep) -> Response:
    tenant = preference_links.entry_tenant(c.read_uow(), slug)
    context = {"tenant": tenant, "action": f"/preferences/{slug}"}
    return render(request, "entry.html", context, form_action=f"/preferences/{slug}")


def _send(c: Container, slug: str, address: str) -> None:
    """After the answer: look the address up and, if it is known, send the link."""
    try:
        message = preference_links.preference_link_message(
            c.uow(),
            c.unsubscribe_tokens(),
            slug,
            address,
            public_base_url=c.settings.public_base_url,
            sms_sender=c.settings.sms_sender,
        )
        if message is not None:
            _deliver(c, message)
    except Exception:  # a background task has no one to answer to: log the failure
        log.exception("preference link not sent", extra={"tenant": slug})


def _deliver(c: Container, message: OutboundMessage) -> None:
    adapters = build_adapters(c.settings, c.outbox())
    try:
        adapters[message.channel].send(message)
    finally:
        for adapter in adapters.values():
            adapter.close()


@router.post("/preferences/{slug}")
async def request_link(
    slug: Slug,
    request: Request,
    c: ContainerDep,
    background: BackgroundTasks,
    *,
    address: Annotated[str, Form(max_length=320)] = "",
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
) -> Response:
    check_csrf(request, csrf_token)
    tenant = await run_in_threadpool(preference_links.entry_tenant, c.read_uow(), slug)
    limits: EntryLimits = request.app.state.preference_limits
    wait = limits.wait(request.client.host if request.client else "?", f"{slug}\x00{address}")
    if wait > 0:
        return problem(
            429,
            "RATE_LIMITED",
            "too many requests for a link; try again later",
            headers={"Retry-After": str(math.ceil(wait))},
        )
    if address.strip():
        background.add_task(_send, c, slug, address)
    return render(request, "entry_sent.html", {"tenant": tenant})
