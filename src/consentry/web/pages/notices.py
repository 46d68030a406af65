"""Acceptance links of policy-change notices: ``/n/{token}`` (issue 6, item 5).

``GET`` names the business and shows the new version, title, number and words, with an
"I accept" button; it changes nothing, because mail scanners fetch links before people click
them. ``POST`` (the page's form, behind its CSRF token) records the acceptance once with the
page's evidence. Every forged, garbled, expired, spent or foreign token gets the same answer.
"""

from __future__ import annotations

from fastapi import APIRouter

from consentry.bootstrap import Container
from consentry.domain.consent import Evidence
from consentry.services import notice_acceptance
from consentry.web.pages.links import add_link_pages

router = APIRouter(include_in_schema=False)


def _read(c: Container, token: str) -> object:
    return notice_acceptance.read_acceptance(c.read_uow(), c.notice_tokens(), token)


def _accept(c: Container, token: str, evidence: Evidence) -> object:
    view, _events = notice_acceptance.accept(c.uow(), c.notice_tokens(), token, evidence)
    return view


add_link_pages(
    router, "/n", read=_read, act=_accept, shown="notice_accept.html",
    done="notice_accepted.html",
)  # fmt: skip
