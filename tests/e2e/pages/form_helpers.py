"""Seeding and reading for the subscription form tests: a tenant whose forms can go live, forms
made through the API, the fields a rendered form carries, and the messages a submission sends."""

from __future__ import annotations

import time
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

import httpx
from tests.e2e.pages.conftest import Api, Seeded

from consentry.domain.model import PolicyDocument, PolicyKind
from consentry.services import tenancy
from consentry.services.consent import HistoryEntry, consent_history
from consentry.services.ports import CapturedMessage

PUBLIC = "https://localhost:8000"  # Settings.public_base_url, where links and forms point
PRIVACY_TEXT = "We keep your details safe and never sell them."
JANE = "jane.roe@example.com"
PHONE = "+447400123456"
UA = "Mozilla/5.0 (X11; Linux x86_64) form-filler/1.0"
BLOG = "https://acme.example/blog/spring"


def publish(api: Api, tenant: Seeded, kind: PolicyKind, title: str, body: str) -> PolicyDocument:
    draft = tenancy.draft_policy(
        api.container.uow(), tenant.slug, kind=kind, title=title, body=body
    )
    return tenancy.publish_policy(api.container.uow(), tenant.slug, draft.id)


def publish_privacy(api: Api, tenant: Seeded) -> PolicyDocument:
    return publish(api, tenant, PolicyKind.PRIVACY_POLICY, "Privacy policy", PRIVACY_TEXT)


def create_form(
    api: Api,
    tenant: Seeded,
    key: str = "join",
    choices: tuple[str, ...] = ("offers:email", "offers:sms"),
    **extra: Any,
) -> dict[str, Any]:
    """A form made through the API by the tenant's owner; its JSON."""
    body = {
        "key": key,
        "title": "Join the Acme list",
        "intro": "Deals and news, only if you want them.",
        "choices": [
            {"topic": topic, "channel": channel}
            for topic, channel in (c.split(":") for c in choices)
        ],
        **extra,
    }
    created = api.client(tenant.token).post("/v1/forms", json=body)
    assert created.status_code == 201, created.text
    found: dict[str, Any] = created.json()
    return found


def local(url: str, api: Api) -> str:
    """A public address as the test server answers it."""
    assert url.startswith(PUBLIC), url
    return api.base_url + url.removeprefix(PUBLIC)


@dataclass
class Field:
    tag: str
    type: str
    name: str
    value: str
    checked: bool


class FormFields(HTMLParser):
    """The controls of the first <form> on a page, and where it posts."""

    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: list[Field] = []
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = found.get("action", "")
            self._depth = 1
        elif self._depth and tag in {"input", "button", "textarea", "select"}:
            self.fields.append(
                Field(tag, found.get("type", ""), found.get("name", ""),
                      found.get("value", ""), "checked" in found)
            )  # fmt: skip

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._depth = 0

    def value(self, name: str) -> str:
        [found] = [f for f in self.fields if f.name == name]
        return found.value

    def boxes(self) -> dict[str, bool]:
        """Each checkbox's value and whether it is ticked."""
        return {f.value: f.checked for f in self.fields if f.type == "checkbox"}


def fields_of(html: str) -> FormFields:
    parsed = FormFields()
    parsed.feed(html)
    assert parsed.action, "no form on the page"
    return parsed


def show(client: httpx.Client, tenant: Seeded, key: str = "join", **headers: str) -> FormFields:
    page = client.get(f"/f/{tenant.slug}/{key}", headers=headers)
    assert page.status_code == 200, page.text
    return fields_of(page.text)


def answers(shown: FormFields, *choices: str, **values: str) -> dict[str, Any]:
    """What a person sends: the hidden fields as shown, an empty honeypot, and their answers."""
    return {
        "form_token": shown.value("form_token"),
        "ref": shown.value("ref"),
        "website": "",
        "choice": list(choices),
        **values,
    }


def captured(api: Api, tenant: Seeded, count: int, timeout: float = 10.0) -> list[CapturedMessage]:
    """The tenant's newest ``count`` captured messages, oldest first, with their raw bytes.
    Confirmation requests go out after the answer, so they are waited for."""
    deadline = time.monotonic() + timeout
    while True:
        found = api.container.outbox().list(tenant.id, limit=count + 1)
        if len(found) >= count or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(found) == count, [m.summary for m in found]
    return [api.container.outbox().get(m.id) for m in reversed(found)]


def history(api: Api, tenant: Seeded, contact: str) -> list[HistoryEntry]:
    return consent_history(api.container.read_uow(), tenant.slug, contact)
