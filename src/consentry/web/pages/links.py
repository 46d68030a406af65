"""What the link pages share: the evidence a request leaves, and the one answer to a bad link."""

from __future__ import annotations

from fastapi import Request, Response

from consentry.bootstrap import Container
from consentry.domain.signals import SignalSource
from consentry.services.compose.tokens import InvalidToken
from consentry.services.optouts import OptOutEvidence
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
