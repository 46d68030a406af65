"""Reconfirmation links of permission passes: ``/r/{token}`` (issue 6, item 7).

``GET`` names the business, the topic, the deadline and the disclosure, with a "Keep me
subscribed" button; it changes nothing, because mail scanners fetch links before people click
them. ``POST`` (the page's form, behind its CSRF token) renews the consent with the page's
evidence. Every forged, garbled, expired, spent or foreign token gets the same answer.
"""

from __future__ import annotations

from fastapi import APIRouter

from consentry.bootstrap import Container
from consentry.domain.consent import Evidence
from consentry.services import reconfirming
from consentry.web.pages.links import add_link_pages

router = APIRouter(include_in_schema=False)


def _read(c: Container, token: str) -> object:
    return reconfirming.read_reconfirmation(c.read_uow(), c.reconfirmation_tokens(), token)


def _renew(c: Container, token: str, evidence: Evidence) -> object:
    view, _event = reconfirming.renew(c.uow(), c.reconfirmation_tokens(), token, evidence)
    return view


add_link_pages(
    router, "/r", read=_read, act=_renew, shown="reconfirm.html", done="reconfirmed.html"
)
