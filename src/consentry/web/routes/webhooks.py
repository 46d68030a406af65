"""Provider webhooks: Twilio SMS (inbound messages and status callbacks) and the WhatsApp Cloud API.

Each request is verified before anything else (``X-Twilio-Signature``, ``X-Hub-Signature-256``):
an unsigned or wrongly signed request gets 401 and leaves no trace. An authentic one is parsed by
its adapter and handed to the signal pipeline (services/signals.py), which records it once under
the provider's event id and applies it; an authentic payload that does not parse is kept for
inspection and answered 400. Providers retry on 5xx, so a replay is expected and harmless.
"""

from __future__ import annotations

import json
from typing import Annotated
from urllib.parse import parse_qsl
from xml.sax.saxutils import escape

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from consentry.bootstrap import Container
from consentry.domain.delivery import WhatsAppMessage
from consentry.domain.errors import InvalidInput
from consentry.domain.signals import SignalSource
from consentry.services.ports import UnitOfWork
from consentry.services.signal_replies import send_replies, whatsapp_replies
from consentry.services.signals import (
    IngestResult,
    ingest,
    ingest_many,
    ingest_provider_events,
    keep_rejected,
)
from consentry.web.deps import run_write
from consentry.web.problems import problem

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

FORM = "application/x-www-form-urlencoded"
_TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_MAX_BODY = 256 * 1024  # provider webhooks are small; the app-wide body limit is larger
_MAX_BATCH = 1024 * 1024  # an email provider batches up to a thousand or so events


def _container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


def _twiml(replies: list[str]) -> Response:
    if not replies:
        return Response(_TWIML_EMPTY, media_type="text/xml")
    messages = "".join(f"<Message>{escape(text)}</Message>" for text in replies)
    body = f'<?xml version="1.0" encoding="UTF-8"?><Response>{messages}</Response>'
    return Response(body, media_type="text/xml")


def _public_url(request: Request, base: str) -> str:
    """The URL the provider called, as it knows it (behind a proxy, not the local one)."""
    url = base.rstrip("/") + request.url.path
    return f"{url}?{request.url.query}" if request.url.query else url


def _unsigned() -> Response:
    return problem(401, "WEBHOOK_SIGNATURE_INVALID", "the request is not signed by the provider")


def _not_configured(name: str) -> Response:
    return problem(404, "WEBHOOK_NOT_CONFIGURED", f"{name} webhooks are not configured here")


@router.post(
    "/twilio/sms",
    summary="Twilio inbound SMS and status callbacks (signed); answers TwiML",
    responses={200: {"content": {"text/xml": {}}, "description": "TwiML reply"}},
)
async def twilio_sms(request: Request) -> Response:
    c = _container(request)
    channel = c.twilio_webhooks()
    if channel is None:
        return _not_configured("Twilio")
    body = await request.body()
    if len(body) > _MAX_BODY:
        return problem(413, "BODY_TOO_LARGE", "a Twilio webhook is a small form")
    urls = {_public_url(request, c.settings.public_base_url), str(request.url)}
    if not any(channel.verify_webhook(url, request.headers, body) for url in urls):
        return _unsigned()
    content_type = request.headers.get("content-type", FORM)

    def apply(uow: UnitOfWork) -> IngestResult | list[IngestResult]:
        fields = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        if "MessageStatus" in fields and "Body" not in fields:
            events = channel.parse_webhook(request.headers, body)
            return ingest_provider_events(
                uow, SignalSource.TWILIO, events, body, content_type=content_type
            )
        parsed = channel.parse_inbound(body, c.keyword_lists())
        return ingest(uow, parsed, body, content_type, policy=c.signal_policy())

    try:
        # One transaction, committed at its end, and no message sent from it (the replies are
        # the TwiML answer): the event loop may run it. A STOP reaches every tenant that has
        # the number, so the contention it may meet is counted for the provider, not a tenant.
        result = await run_write(c, SignalSource.TWILIO, apply)
    except InvalidInput as exc:
        await run_in_threadpool(
            keep_rejected, c.uow(), SignalSource.TWILIO, body, content_type, why=str(exc)
        )
        return problem(400, exc.code, str(exc))
    return _twiml(result.replies if isinstance(result, IngestResult) else [])


@router.get(
    "/whatsapp",
    summary="WhatsApp Cloud API subscription handshake",
    responses={200: {"content": {"text/plain": {}}, "description": "the challenge"}},
)
def whatsapp_handshake(
    request: Request,
    mode: Annotated[str, Query(alias="hub.mode", max_length=50)] = "",
    token: Annotated[str, Query(alias="hub.verify_token", max_length=500)] = "",
    challenge: Annotated[str, Query(alias="hub.challenge", max_length=500)] = "",
) -> Response:
    c = _container(request)
    channel = c.whatsapp_webhooks()
    verify = c.settings.whatsapp_verify_token
    if channel is None or verify is None:
        return _not_configured("WhatsApp")
    answer = channel.verify_subscription(mode, token, challenge, verify.get_secret_value())
    if answer is None:
        return problem(403, "WEBHOOK_VERIFY_TOKEN_INVALID", "the verify token does not match")
    return Response(answer, media_type="text/plain")


@router.post("/whatsapp", summary="WhatsApp Cloud API webhooks (signed)", status_code=200)
async def whatsapp(request: Request, background: BackgroundTasks) -> Response:
    c = _container(request)
    channel = c.whatsapp_webhooks()
    if channel is None:
        return _not_configured("WhatsApp")
    body = await request.body()
    if len(body) > _MAX_BODY:
        return problem(413, "BODY_TOO_LARGE", "a WhatsApp webhook is a small JSON document")
    if not channel.verify_webhook(str(request.url), request.headers, body):
        return _unsigned()
    content_type = request.headers.get("content-type", "application/json")

    def apply() -> list[IngestResult]:
        # The whole body is read before any of it is applied: one that does not parse is
        # rejected as a whole, not after the signals ahead of the bad part took effect.
        inbound = channel.parse_inbound(body, c.keyword_lists())
        events = channel.parse_webhook(request.headers, body)
        people = ingest_many(
            c.uow(), [(parsed, body) for parsed in inbound], content_type, policy=c.signal_policy()
        )
        ingest_provider_events(
            c.uow(), SignalSource.WHATSAPP, events, body, content_type=content_type
        )
        return people

    try:
        people = await run_in_threadpool(apply)
    except InvalidInput as exc:
        await run_in_threadpool(
            keep_rejected, c.uow(), SignalSource.WHATSAPP, body, content_type, why=str(exc)
        )
        return problem(400, exc.code, str(exc))
    replies = whatsapp_replies(people, c.settings.whatsapp_phone_number_id)
    if replies:
        background.add_task(_send_replies, c, replies)
    return Response(status_code=200)


def _send_replies(c: Container, replies: list[WhatsAppMessage]) -> None:
    with c.sender() as send:
        send_replies(replies, send)


@router.post("/sendgrid", summary="SendGrid Event Webhook: bounces and spam reports (signed)")
async def sendgrid(request: Request) -> Response:
    c = _container(request)
    events = c.sendgrid_webhooks()
    if events is None:
        return _not_configured("SendGrid")
    body = await request.body()
    if len(body) > _MAX_BATCH:
        return problem(413, "BODY_TOO_LARGE", f"an event batch is at most {_MAX_BATCH} bytes")
    if not events.verify(request.headers, body):
        return _unsigned()
    content_type = request.headers.get("content-type", "application/json")

    def apply() -> None:
        # Each event is its own inbound record, de-duplicated on its sg_event_id and kept as
        # its own JSON: a batch's other recipients are not stored with it.
        parsed_events = events.parse(body)
        items = [
            (parsed, json.dumps(raw, ensure_ascii=False, separators=(",", ":")).encode())
            for parsed, raw in zip(parsed_events, json.loads(body), strict=True)
        ]
        ingest_many(c.uow(), items, "application/json", policy=c.signal_policy())

    try:
        await run_in_threadpool(apply)
    except InvalidInput as exc:
        await run_in_threadpool(
            keep_rejected, c.uow(), SignalSource.PROVIDER, body, content_type, why=str(exc)
        )
        return problem(400, exc.code, str(exc))
    return Response(status_code=200)
