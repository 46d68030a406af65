"""The one place errors become HTTP responses: RFC 9457 problem+json with a stable code."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from consentry.domain.access import Forbidden, Unauthenticated
from consentry.domain.confirmation import RateLimited
from consentry.domain.errors import (
    Conflict,
    ConsentryError,
    IntegrityFailure,
    InvalidInput,
    NotFound,
)
from consentry.domain.imports import ImportTooLarge

PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details; ``code`` is the stable part to branch on."""

    type: str
    title: str
    status: int
    code: str
    detail: str
    field: str | None = None
    errors: list[dict[str, Any]] | None = None


_ERROR_STATUSES = {
    400: "Bad request",
    401: "No valid credential",
    403: "The credential may not do this",
    404: "Not found in this tenant",
    405: "Method not allowed",
    409: "Conflicts with stored state",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Invalid input; `field` names the first bad field",
    429: "Rate limited; see Retry-After",
}
# Declared on every route so that clients (and schema checks) know every error's shape.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text, "model": Problem, "content": {PROBLEM: {}}}
    for status, text in _ERROR_STATUSES.items()
}

_STATUS: tuple[tuple[type[ConsentryError], int], ...] = (
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (ImportTooLarge, 413),
    (InvalidInput, 422),
    (IntegrityFailure, 500),
)


def status_for(error: ConsentryError) -> int:
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 400


def problem(
    status: int,
    code: str,
    detail: str,
    *,
    field: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"https://consentry.dev/problems/{code.lower()}",
        "title": code.replace("_", " ").capitalize(),
        "status": status,
        "code": code,
        "detail": detail,
    }
    if field:
        body["field"] = field
    if extra:
        body.update(extra)
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="consentry"')
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def _consentry_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ConsentryError)  # noqa: S101  (registered for this type only)
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after)}
        extra = {"retry_after": exc.retry_after}
        return problem(429, exc.code, exc.message, field=exc.field, extra=extra, headers=headers)
    return problem(status_for(exc), exc.code, exc.message, field=exc.field)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)  # noqa: S101
    errors = [
        {
            "field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
            "message": e.get("msg", "invalid"),
            "type": e.get("type", ""),
        }
        for e in exc.errors()
    ]
    first = errors[0]["field"] if errors else None
    return problem(
        422,
        "VALIDATION_FAILED",
        "the request does not match the schema",
        field=first,
        extra={"errors": errors},
    )


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101
    codes = {
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        413: "PAYLOAD_TOO_LARGE",
        415: "UNSUPPORTED_MEDIA_TYPE",
        429: "RATE_LIMITED",
    }
    code = codes.get(exc.status_code, f"HTTP_{exc.status_code}")
    return problem(exc.status_code, code, str(exc.detail), headers=dict(exc.headers or {}))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ConsentryError, _consentry_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
