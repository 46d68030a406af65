"""The captured outbox (issue 4): what the embedded ``capture`` channel kept, in a browser.

``GET /outbox`` lists messages newest first, a page at a time; ``GET /outbox/{id}`` shows one:
an email's headers, text and raw RFC 5322 source, or an SMS or WhatsApp message's text and the
request body the provider would have received. Operators sign in; API keys need messages:read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Path, Query, Request, Response

from consentry.domain.model import Channel
from consentry.services import outbox as service
from consentry.services.ports import CapturedMessage
from consentry.web.deps import ContainerDep
from consentry.web.pages.auth import page_context, sign_in_redirect
from consentry.web.pages.render import render

router = APIRouter(include_in_schema=False)
MAX_ID = 2**63 - 1


@dataclass(frozen=True, slots=True)
class Shown:
    """A captured message as the detail page shows it."""

    headers: list[tuple[str, str]]
    text: str
    raw: str


def _email(raw: bytes) -> Shown:
    parsed = message_from_bytes(raw, policy=default_policy)
    headers = [(k, str(v)) for k, v in parsed.items()]
    text = ""
    if isinstance(parsed, EmailMessage):
        body = parsed.get_body(preferencelist=("plain", "html"))
        if body is not None and isinstance(body, EmailMessage):
            text = body.get_content()
    return Shown(headers, text, raw.decode("utf-8", errors="replace"))


def _text(message: CapturedMessage) -> Shown:
    raw = message.raw.decode("utf-8", errors="replace")
    if message.channel is Channel.SMS:
        form = parse_qs(raw)
        return Shown([], (form.get("Body") or [message.summary])[0], raw)
    try:
        request = json.loads(raw)
    except ValueError:
        return Shown([], message.summary, raw)
    text = (request.get("text") or {}).get("body") if isinstance(request, dict) else None
    if text is None and isinstance(request, dict) and "template" in request:
        text = f"template {request['template'].get('name', '')}"
    return Shown([], text or message.summary, raw)


def shown(message: CapturedMessage) -> Shown:
    return _email(message.raw) if message.channel is Channel.EMAIL else _text(message)


@router.get("/outbox")
def outbox_list(
    request: Request,
    c: ContainerDep,
    before: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    context = page_context(request, c)
    if context is None:
        return sign_in_redirect(request)
    page = service.outbox_page(c.read_uow(), c.outbox(), context.principal, before=before)
    values = {"page": page, "before": before, "platform": context.principal.tenant_id is None}
    return render(request, "outbox_list.html", values)


@router.get("/outbox/{capture_id}")
def outbox_detail(
    request: Request, c: ContainerDep, capture_id: Annotated[int, Path(ge=1, le=MAX_ID)]
) -> Response:
    context = page_context(request, c)
    if context is None:
        return sign_in_redirect(request)
    found = service.outbox_message(c.uow(), c.outbox(), context, capture_id)
    values = {"found": found, "message": found.message, "shown": shown(found.message)}
    return render(request, "outbox_message.html", values)
