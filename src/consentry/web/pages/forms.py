"""Public subscription forms (issue 6, item 1): ``/f/{tenant}/{form}`` and policy pages.

``GET`` shows the hosted form with a fresh form token. ``POST`` takes a submission from the
hosted page or from a snippet pasted into the business's own site: it has no CSRF cookie
(a cross-site post cannot carry one); the form token, the honeypot and a per-client rate limit
stand in for it. A refused submission shows the form again with the answer kept and the reason.
``GET /d/{tenant}/{document}`` shows a published policy document version, the one a form
linked to.
"""

from __future__ import annotations

import math
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Path, Request, Response
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from consentry.bootstrap import Container
from consentry.domain.errors import ConsentryError, InvalidInput, NotFound
from consentry.domain.forms import (
    FormAlreadySent,
    FormArchived,
    FormNotFound,
    FormRejected,
)
from consentry.services import form_page, form_submit
from consentry.services.form_tokens import TokenKind
from consentry.services.forms import public_document
from consentry.web.deps import ContainerDep, run_write
from consentry.web.limits import RateLimiter
from consentry.web.pages.render import environment, render
from consentry.web.problems import problem

router = APIRouter(include_in_schema=False)
Slug = Annotated[str, Path(min_length=1, max_length=100)]
CHANNEL_NAMES = {"email": "email", "sms": "text message", "whatsapp": "WhatsApp"}
_MAX_FIELD = 500
FIELD_LABELS = {"email": "Email address", "phone": "Mobile number", "whatsapp": "WhatsApp number"}


class FormLimits:
    """Submissions per client address (in this process, like the other page limits)."""

    def __init__(self, per_minute: float) -> None:
        self.client = RateLimiter(per_minute / 60, max(1, int(per_minute)))

    def wait(self, client: str) -> float:
        return self.client.acquire(client)


def _context(page: form_page.FormPage, **extra: Any) -> dict[str, Any]:
    values = extra.pop("values", {})
    return {
        "page": page,
        "channels": {c.channel.value for c in page.form.choices},
        "channel_names": CHANNEL_NAMES,
        "ticked": extra.pop("ticked", ()),
        "values": {k: values.get(k, "") for k in ("email", "phone", "whatsapp", "name", "adult")},
        "ref": extra.pop("ref", ""),
        "embed": False,
        "error": None,
        "error_code": None,
        **extra,
    }


def _unavailable(request: Request, exc: ConsentryError) -> Response:
    status = 410 if isinstance(exc, FormArchived) else 404
    heading = "Form closed" if status == 410 else "Form not found"
    context = {"heading": heading, "message": str(exc), "code": exc.code}
    return render(request, "error.html", context, status=status)


def _view(c: Container, slug: str, key: str, kind: TokenKind) -> form_page.FormPage:
    return form_page.form_view(
        c.read_uow(), c.form_tokens(), c.settings.public_base_url, slug, key, kind=kind,
        whatsapp_number=c.settings.whatsapp_business_number,
    )  # fmt: skip


@router.get("/f/{slug}/{key}")
def show_form(slug: Slug, key: Slug, request: Request, c: ContainerDep) -> Response:
    try:
        page = _view(c, slug, key, TokenKind.HOSTED)
    except (FormNotFound, FormArchived) as exc:
        return _unavailable(request, exc)
    referrer = (request.headers.get("referer") or "")[:_MAX_FIELD]
    return render(request, "form.html", _context(page, ref=referrer))


def embed_snippet(c: Container, slug: str, key: str) -> str:
    """The HTML a business pastes into its own site: the form, posting here."""
    page = _view(c, slug, key, TokenKind.EMBEDDED)
    context = _context(page, embed=True)
    return environment().get_template("form_embed.html").render(context)


def _field(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value[:_MAX_FIELD] if isinstance(value, str) else None


def _submission(request: Request, c: Container, slug: str, key: str, form: FormData) -> Any:
    agent = request.headers.get("user-agent") or "(none sent)"
    referrer = _field(form, "ref") or request.headers.get("referer")
    return form_submit.Submission(
        tenant_slug=slug,
        form_key=key,
        token=_field(form, "form_token") or "",
        choices=[v for v in form.getlist("choice") if isinstance(v, str)][:50],
        email=_field(form, "email"),
        phone=_field(form, "phone"),
        whatsapp=_field(form, "whatsapp"),
        name=_field(form, "name"),
        adult=_field(form, "adult"),
        honeypot=_field(form, "website"),
        page_url=c.settings.public_base_url.rstrip("/") + form_page.form_path(slug, key),
        referrer=referrer[:_MAX_FIELD] if referrer else None,
        ip_address=request.client.host if request.client else "unknown",
        user_agent=agent[:_MAX_FIELD],
    )


@router.post("/f/{slug}/{key}")
async def submit(
    slug: Slug, key: Slug, request: Request, c: ContainerDep, background: BackgroundTasks
) -> Response:
    limits: FormLimits = request.app.state.form_limits
    wait = limits.wait(request.client.host if request.client else "?")
    if wait > 0:
        retry = {"Retry-After": str(math.ceil(wait))}
        return problem(429, "RATE_LIMITED", "too many subscriptions; try later", headers=retry)
    form = await request.form()
    sent = _submission(request, c, slug, key, form)
    try:
        # Its writes are one transaction, committed before it reads what the confirmation
        # requests need (the sending itself is a background task): the event loop may run it.
        tokens, confirmers = c.form_tokens(), c.confirmers()
        done = await run_write(
            c, slug, lambda uow: form_submit.submit_form(uow, tokens, confirmers, sent)
        )
    except (FormNotFound, FormArchived) as exc:
        return _unavailable(request, exc)
    except FormAlreadySent:
        return render(request, "form_done.html", {"already": True, "done": None})
    except FormRejected as exc:
        context = {"heading": "Not sent", "message": str(exc), "code": exc.code}
        return render(request, "error.html", context, status=400)
    except InvalidInput as exc:  # a field to correct, the age answer, an expired form
        page = await run_in_threadpool(_view, c, slug, key, TokenKind.HOSTED)
        context = _context(
            page, ticked=tuple(sent.choices), values=form, ref=sent.referrer or "",
            error=_message(exc), error_code=exc.code,
        )  # fmt: skip
        return render(request, "form.html", context, status=400)
    background.add_task(form_submit.send_confirmations, c.confirmers(), done)
    done_context: dict[str, Any] = {"already": False, "done": done, "channel_names": CHANNEL_NAMES}
    return render(request, "form_done.html", done_context)


def _message(exc: ConsentryError) -> str:
    """The reason, naming the field when the message alone would not say which."""
    label = FIELD_LABELS.get(exc.field or "")
    return f"{label}: {exc}" if label and label.lower() not in str(exc).lower() else str(exc)


@router.get("/d/{slug}/{document_id}")
def policy_page(slug: Slug, document_id: uuid.UUID, request: Request, c: ContainerDep) -> Response:
    """A published policy document version; drafts and other tenants' documents are 404."""
    try:
        tenant, document = public_document(c.read_uow(), slug, document_id)
    except NotFound as exc:
        context = {"heading": "Not found", "message": str(exc), "code": exc.code}
        return render(request, "error.html", context, status=404)
    return render(request, "policy.html", {"tenant": tenant, "document": document})
