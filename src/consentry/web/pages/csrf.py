"""CSRF protection for the pages' forms: a signed double-submit token tied to the form's path.

The browser holds a random nonce in a cookie (``consentry_csrf``: HttpOnly, SameSite=Strict);
each form carries ``HMAC(key, nonce, form path)``. Another site can make a browser send the
cookie's siblings but can neither read the nonce nor compute the HMAC, and a token for one form
(one unsubscribe link, one tenant's entry page) is useless on another. The key is derived from
the platform keys, so every API replica accepts every other's tokens.

The RFC 8058 one-click POST is the one form without a token: mail providers send it without
cookies, and the unguessable unsubscribe token in its path is what authorises it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from fastapi import Request, Response

from consentry.domain.access import Forbidden

CSRF_COOKIE = "consentry_csrf"
CSRF_FIELD = "csrf_token"
CSRF_PURPOSE = "page csrf v1"
_NONCE_BYTES = 24


class CsrfFailed(Forbidden):
    """A form POST without a valid CSRF token (missing cookie, missing or wrong field)."""

    code = "CSRF_FAILED"


def _key(request: Request) -> bytes:
    key: bytes = request.app.state.container.keys.derive(CSRF_PURPOSE)
    return key


def _sign(key: bytes, nonce: str, action: str) -> str:
    mac = hmac.new(key, f"{nonce}\x00{action}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def csrf_nonce(request: Request) -> tuple[str, bool]:
    """This browser's nonce, and whether it is new (to be set as a cookie)."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if 16 <= len(nonce) <= 64:
        return nonce, False
    return secrets.token_urlsafe(_NONCE_BYTES), True


def csrf_token(request: Request, nonce: str, action: str) -> str:
    """The token for a form posting to ``action``."""
    return _sign(_key(request), nonce, action)


def set_csrf_cookie(request: Request, response: Response, nonce: str) -> None:
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def check_csrf(request: Request, submitted: object) -> None:
    """Raise CsrfFailed unless ``submitted`` is this browser's token for this request's path."""
    nonce = request.cookies.get(CSRF_COOKIE, "")
    if not nonce or not isinstance(submitted, str) or not submitted:
        raise CsrfFailed("the form is missing its security token; reload the page and try again")
    expected = _sign(_key(request), nonce, request.url.path)
    if not hmac.compare_digest(expected, submitted):
        raise CsrfFailed("the form's security token is not valid; reload the page and try again")
