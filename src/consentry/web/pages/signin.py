"""The operators' sign-in page: a form over the same login as ``POST /v1/auth/login``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Query, Request, Response
from fastapi.responses import RedirectResponse

from consentry.domain.access import Unauthenticated
from consentry.services import access
from consentry.web.deps import SESSION_COOKIE, ContainerDep
from consentry.web.pages.auth import safe_next
from consentry.web.pages.csrf import CSRF_FIELD, check_csrf
from consentry.web.pages.render import render

router = APIRouter(include_in_schema=False)
NextPath = Annotated[str | None, Query(max_length=2000)]


@router.get("/login")
def sign_in_page(request: Request, next: NextPath = None) -> Response:
    return render(request, "signin.html", {"next": safe_next(next)}, form_action="/login")


@router.post("/login")
def sign_in(
    request: Request,
    c: ContainerDep,
    *,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    next: Annotated[str | None, Form(max_length=2000)] = None,
    csrf_token: Annotated[str | None, Form(alias=CSRF_FIELD, max_length=200)] = None,
) -> Response:
    check_csrf(request, csrf_token)
    try:
        session = access.login(c.uow(), email, password)
    except Unauthenticated:
        context = {"next": safe_next(next), "error": "Wrong email or password.", "email": email}
        return render(request, "signin.html", context, status=401, form_action="/login")
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        httponly=True,
        secure=True,
        samesite="strict",
        expires=session.expires_at,
    )
    return response
