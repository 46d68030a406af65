"""Confirmation links of confirmed opt-in: ``/c/{token}`` (issue 6, item 2).

``GET`` names the business and the topic and shows a Confirm button; it changes nothing, because
mail scanners fetch links before people click them. ``POST`` (the page's form, behind its CSRF
token) records the ``confirmed`` event with the page's evidence. Every forged, garbled, expired,
used or superseded token gets the same answer and changes nothing.
"""

from __future__ import annotations

from fastapi import APIRouter

from consentry.bootstrap import Container
from consentry.domain.consent import Evidence
from consentry.services import confirming
from consentry.web.pages.links import add_link_pages

router = APIRouter(include_in_schema=False)


def _read(c: Container, token: str) -> object:
    return confirming.read_confirmation(c.read_uow(), c.confirmation_tokens(), token)


def _confirm(c: Container, token: str, evidence: Evidence) -> object:
    view, _event = confirming.confirm(c.uow(), c.confirmation_tokens(), token, evidence)
    return view


add_link_pages(
    router, "/c", read=_read, act=_confirm, shown="confirm.html", done="confirmed.html",
    actor="signal:confirmation_page",
)  # fmt: skip
