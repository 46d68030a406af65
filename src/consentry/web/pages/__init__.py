"""Server-rendered pages: the captured outbox, unsubscribe, the preference centre,
confirmation links, and public subscription forms.

Pages are HTML without JavaScript, built from one autoescaped Jinja2 environment (``render``),
with strict security headers and CSRF tokens on every form (``csrf``). They are not part of the
API's OpenAPI document.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Response

from consentry.web.pages import (
    confirm,
    forms,
    notices,
    outbox,
    preferences,
    reconfirm,
    signin,
    unsubscribe,
)
from consentry.web.pages.render import STYLESHEET_PATH, PageHeaders, stylesheet

assets = APIRouter(include_in_schema=False)


@assets.get(STYLESHEET_PATH)
def pages_stylesheet() -> Response:
    return stylesheet()


def install(app: FastAPI, *, form_posts_per_minute: float) -> None:
    """Add the pages' routes and their security headers to ``app``."""
    app.state.preference_limits = preferences.EntryLimits()
    app.state.form_limits = forms.FormLimits(form_posts_per_minute)
    app.add_middleware(PageHeaders)
    for router in (  # the most frequent first (see create_app)
        unsubscribe.router,
        forms.router,
        preferences.router,
        confirm.router,
        reconfirm.router,
        notices.router,
        signin.router,
        outbox.router,
        assets,
    ):
        app.include_router(router)
