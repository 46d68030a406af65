"""Guarantee 5: every query is scoped to the authenticated tenant.

Tenant A's key walks every operation of the live OpenAPI description, pointed at tenant B's
objects. For each one it must get exactly what it gets for an id that exists nowhere (same status,
same code, same words), never a server error, and never a byte of B's data; afterwards every row
of B is as it was. A route under /v1 that this module does not know fails the test, so a new
endpoint cannot escape the walk.
"""

from __future__ import annotations

import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.e2e.api.conftest import Api, Seeded, unique

from consentry.domain.access import Role
from consentry.persistence.tables import metadata
from consentry.services import access
from consentry.services.audit import verify_audit
from consentry.services.audit_seal import seal_audit

WEB_FORM = {
    "method": "web_form",
    "source": "https://bravo.example/signup",
    "ip_address": "198.51.100.7",
    "user_agent": "Mozilla/5.0 (isolation)",
}
BOB = {"name": "Bob Bravo", "email": "bob.bravo@example.com", "phone": "+447400777001"}
WRONG_PASSWORD = "definitely not it"
ALPHA_LIST = "alpha-list"


@dataclass
class Sending:
    """What B sends: a domain, templates, a list, campaigns and their deliveries; and the
    templates A needs for its own requests to get past "not found"."""

    domain: str
    topic: str  # a key only B has (A creates its own "bravo-only" on the walk)
    template: dict[str, Any]  # marketing, email
    list: dict[str, Any]
    campaigns: list[dict[str, Any]]  # launched, then a draft
    delivery_ids: list[int]  # a campaign delivery and a transactional message
    a_offer: str = "alpha-offer"
    a_booked: str = "alpha-booked"

    def identifiers(self) -> set[str]:
        # Delivery ids are small numbers that any response may contain: checked by the probes.
        return {
            self.domain,
            self.topic,
            self.template["id"],
            self.template["name"],
            self.list["id"],
            self.list["name"],
            *(c["id"] for c in self.campaigns),
            *(c["name"] for c in self.campaigns),
        }


@dataclass
class World:
    """Tenant A (the caller) and everything tenant B owns."""

    a: Seeded
    b: Seeded
    alice: dict[str, Any]  # A's own contact
    bob: dict[str, Any]  # B's contact
    b_event: dict[str, Any]
    b_draft: dict[str, Any]
    b_topics: list[dict[str, Any]]
    b_suppressions: list[dict[str, Any]]
    b_operator_prefix: str
    b_user_email: str
    b_sending: Sending
    b_import: str = ""
    b_pass: str = ""
    b_form: str = ""
    b_keyword: str = ""
    b_notice: str = ""
    b_notice_document: str = ""  # B's consent disclosure version 2, which the notice is about

    def b_identifiers(self) -> set[str]:
        """Strings that only B's data contains: none may appear in a response to A."""
        return {
            str(self.b.id),
            self.b.slug,
            self.b.name,
            self.b.prefix,
            self.b_operator_prefix,
            str(self.b.key_id),
            self.b_user_email,
            str(self.b.disclosure_id),
            self.b_draft["id"],
            self.bob["id"],
            self.bob["name"],
            self.bob["email"],
            self.bob["phone"],
            self.b_event["event_id"],
            self.b_event["hash"],
            WEB_FORM["source"],
            WEB_FORM["ip_address"],
            *(t["id"] for t in self.b_topics),
            *(s["id"] for s in self.b_suppressions),
            *self.b_sending.identifiers(),
            self.b_import,
            self.b_pass,
            self.b_form,
            self.b_keyword,
            self.b_notice,
            self.b_notice_document,
        }


@dataclass(frozen=True)
class Call:
    json: Any = None
    params: dict[str, str] | None = None


# A variant points a request at B's data, paired with the same request pointing at nothing.
Variant = tuple[str, Call, Call]


@dataclass(frozen=True)
class Route:
    kind: str  # "tenant", "platform" (operators only) or "public" (no tenant at all)
    base: Callable[[World], Call] = lambda _w: Call()  # a valid request for the path variants
    variants: Callable[[World], list[Variant]] = lambda _w: []
    own: Callable[[World], Call] | None = None  # a request that only touches A's own data
    creates: bool = False  # run after the reads, so that what it creates in A cannot mislead them


def _fresh_email() -> str:
    return f"{unique('nobody')}@example.com"


def _fresh_phone() -> str:
    return f"+4474009{secrets.randbelow(10**5):05d}"


def _consent(contact: str, *, topic: str = "offers", document: str | None = None) -> dict[str, Any]:
    evidence = WEB_FORM | {"policy_document_id": document} if document else {"method": "api"}
    return {
        "contact": contact,
        "topic": topic,
        "channel": "email",
        "action": "granted" if document else "withdrawn",
        "evidence": evidence,
    }


def _contact_refs(w: World) -> list[tuple[str, str, str]]:
    """(label, B's reference, a reference to nobody) for each way a contact can be named."""
    return [
        ("B's contact id", w.bob["id"], str(uuid.uuid4())),
        ("B's contact email", w.bob["email"], _fresh_email()),
        ("B's contact phone", w.bob["phone"], _fresh_phone()),
    ]


def _consent_variants(w: World) -> list[Variant]:
    alice = w.alice["id"]
    found = [
        (label, Call(json=_consent(b)), Call(json=_consent(m))) for label, b, m in _contact_refs(w)
    ]
    return [
        *found,
        (
            "B's disclosure cited for A's contact",
            Call(json=_consent(alice, document=str(w.b.disclosure_id))),
            Call(json=_consent(alice, document=str(uuid.uuid4()))),
        ),
        (
            "B's topic for A's contact",
            Call(json=_consent(alice, topic="bravo-only")),
            Call(json=_consent(alice, topic=unique("no-topic"))),
        ),
    ]


def _resend_variants(w: World) -> list[Variant]:
    def resend(contact: str, topic: str = "offers") -> Call:
        return Call(json={"contact": contact, "topic": topic, "channel": "email"})

    return [
        *((label, resend(b), resend(m)) for label, b, m in _contact_refs(w)),
        (
            "B's topic for A's contact",
            resend(w.alice["id"], "bravo-only"),
            resend(w.alice["id"], unique("no-topic")),
        ),
    ]


def _import(disclosure: str, topic: str = "offers") -> dict[str, Any]:
    return {
        "topic": topic,
        "channel": "email",
        "source": "Sign-up box on the shop's website",
        "opt_in_method": "web_form",
        "collected_from": "2026-01-01",
        "collected_to": "2026-03-31",
        "disclosure_id": disclosure,
        "attest": True,
        "csv": "email\nimported-person@example.com\n",
    }


def _import_variants(w: World) -> list[Variant]:
    return [
        (
            "B's disclosure",
            Call(json=_import(str(w.b.disclosure_id))),
            Call(json=_import(str(uuid.uuid4()))),
        ),
        (
            "B's topic",
            Call(json=_import(str(w.a.disclosure_id), w.b_sending.topic)),
            Call(json=_import(str(w.a.disclosure_id), unique("no-topic"))),
        ),
    ]


def _pass(w: World, **change: str) -> Call:
    deadline = (datetime.now(UTC) + timedelta(days=7)).isoformat()
    body = {"topic": "offers", "channel": "email", "list": ALPHA_LIST, "deadline": deadline}
    return Call(json=body | change)


def _pass_variants(w: World) -> list[Variant]:
    b = w.b_sending
    by_import = {"list": None}
    return [
        ("B's list", _pass(w, list=b.list["name"]), _pass(w, list=unique("no-list"))),
        ("B's list id", _pass(w, list=b.list["id"]), _pass(w, list=str(uuid.uuid4()))),
        ("B's topic", _pass(w, topic=b.topic), _pass(w, topic=unique("no-topic"))),
        (
            "B's import",
            Call(json=_pass(w, import_id=w.b_import).json | by_import),
            Call(json=_pass(w, import_id=str(uuid.uuid4())).json | by_import),
        ),
        (
            "B's disclosure",
            _pass(w, disclosure_id=str(w.b.disclosure_id)),
            _pass(w, disclosure_id=str(uuid.uuid4())),
        ),
    ]


def _decision(contact: str, topic: str = "offers") -> dict[str, str]:
    return {"contact": contact, "topic": topic, "channel": "email"}


def _decision_variants(w: World) -> list[Variant]:
    return [
        *(
            (label, Call(json=_decision(b)), Call(json=_decision(m)))
            for label, b, m in _contact_refs(w)
        ),
        (
            "B's topic",
            Call(json=_decision(w.alice["id"], "bravo-only")),
            Call(json=_decision(w.alice["id"], unique("no-topic"))),
        ),
    ]


def _batch_variants(w: World) -> list[Variant]:
    def batch(contact: str) -> Call:
        return Call(json={"items": [_decision(w.alice["id"]), _decision(contact)]})

    return [(label, batch(b), batch(m)) for label, b, m in _contact_refs(w)]


def _campaign(w: World, **change: str) -> Call:
    return Call(
        json={"name": unique("walk"), "topic": "offers", "template": w.b_sending.a_offer} | change
    )


def _campaign_variants(w: World) -> list[Variant]:
    b = w.b_sending
    return [
        ("B's template", _campaign(w, template=b.template["name"]), _campaign(w, template="nope")),
        (
            "B's template id",
            _campaign(w, template=b.template["id"]),
            _campaign(w, template=str(uuid.uuid4())),
        ),
        (
            "B's topic",
            _campaign(w, topic=b.topic),
            _campaign(w, topic=unique("no-topic")),
        ),
        ("B's list", _campaign(w, list=b.list["name"]), _campaign(w, list=unique("no-list"))),
        ("B's list id", _campaign(w, list=b.list["id"]), _campaign(w, list=str(uuid.uuid4()))),
        ("B's campaign name", _campaign(w, name=b.campaigns[0]["name"]), _campaign(w)),
    ]


def _message_variants(w: World) -> list[Variant]:
    def send(contact: str, template: str = w.b_sending.a_booked) -> Call:
        return Call(json={"contact": contact, "template": template, "data": {}})

    b_template = w.b_sending.template
    return [
        # By id only: by now A has a contact of its own with B's addresses (POST /v1/contacts).
        ("B's contact id", send(w.bob["id"]), send(str(uuid.uuid4()))),
        ("B's template", send(w.alice["id"], b_template["name"]), send(w.alice["id"], "nope")),
        (
            "B's template id",
            send(w.alice["id"], b_template["id"]),
            send(w.alice["id"], str(uuid.uuid4())),
        ),
    ]


def _template(**change: str) -> Call:
    body = {"name": unique("walk"), "topic": "offers", "channel": "email", "text": "Hi"}
    return Call(json=body | change)


def _form(key: str, topic: str = "offers") -> Call:
    body = {
        "key": key,
        "title": "Join us",
        "choices": [{"topic": topic, "channel": "email"}],
        "privacy_url": "https://alpha.example/privacy",
    }
    return Call(json=body)


def _form_variants(w: World) -> list[Variant]:
    return [
        (
            "B's topic",
            _form(unique("walk"), w.b_sending.topic),
            _form(unique("walk"), unique("no")),
        ),
        ("B's form key", _form(w.b_form), _form(unique("walk"))),
    ]


TENANT_BODY = {"name": "Sneaky", "profile": {"legal_name": "Sneaky Ltd", "country": "GB"}}

ROUTES: dict[tuple[str, str], Route] = {
    ("POST", "/v1/auth/login"): Route(
        "public",
        variants=lambda w: [
            (
                "B's user",
                Call(json={"email": w.b_user_email, "password": WRONG_PASSWORD}),
                Call(json={"email": _fresh_email(), "password": WRONG_PASSWORD}),
            )
        ],
    ),
    ("GET", "/v1/tenants"): Route("platform"),
    ("POST", "/v1/tenants"): Route(
        "platform", base=lambda _w: Call(json=TENANT_BODY | {"slug": unique("sneaky")})
    ),
    ("GET", "/v1/profile"): Route("tenant", own=lambda _w: Call()),
    ("PUT", "/v1/profile"): Route(
        "tenant",
        own=lambda _w: Call(json={"legal_name": "Alpha Renamed Ltd", "country": "GB"}),
        creates=True,
    ),
    ("GET", "/v1/api-keys"): Route("tenant", own=lambda _w: Call()),
    ("POST", "/v1/api-keys"): Route(
        "tenant", own=lambda _w: Call(json={"name": "walker"}), creates=True
    ),
    ("DELETE", "/v1/api-keys/{prefix}"): Route("tenant"),
    ("GET", "/v1/topics"): Route("tenant", own=lambda _w: Call()),
    ("POST", "/v1/topics"): Route(
        "tenant",
        variants=lambda _w: [
            (
                "B's topic key",
                Call(json={"key": "bravo-only", "name": "Mine", "category": "service"}),
                Call(json={"key": unique("fresh"), "name": "Mine", "category": "service"}),
            )
        ],
        creates=True,
    ),
    ("GET", "/v1/policies"): Route(
        "tenant", own=lambda _w: Call(params={"kind": "consent_disclosure"})
    ),
    ("POST", "/v1/policies"): Route(
        "tenant",
        own=lambda _w: Call(json={"kind": "consent_disclosure", "title": "A", "body": "A's"}),
        creates=True,
    ),
    ("POST", "/v1/policies/{document_id}/publish"): Route("tenant"),
    ("POST", "/v1/policies/{document_id}/notices"): Route(
        "tenant", base=lambda _w: Call(json={"channel": "email", "ask_acceptance": True})
    ),
    ("GET", "/v1/policies/{document_id}/notices"): Route("tenant"),
    ("GET", "/v1/policy-notices/{notice_id}"): Route("tenant"),
    ("GET", "/v1/contacts"): Route(
        "tenant",
        own=lambda _w: Call(),
        variants=lambda w: [
            (
                "B's contact as the cursor",
                Call(params={"cursor": w.bob["id"]}),
                Call(params={"cursor": str(uuid.uuid4())}),
            )
        ],
    ),
    ("POST", "/v1/contacts"): Route(
        "tenant",
        variants=lambda w: [
            (
                "B's contact's addresses",
                Call(json={"email": w.bob["email"], "phone": w.bob["phone"]}),
                Call(json={"email": _fresh_email(), "phone": _fresh_phone()}),
            )
        ],
        creates=True,
    ),
    ("POST", "/v1/contacts/lookup"): Route(
        "tenant",
        variants=lambda w: [
            (label, Call(json={"address": b}), Call(json={"address": m}))
            for label, b, m in _contact_refs(w)
        ],
    ),
    ("GET", "/v1/contacts/{contact_id}"): Route("tenant"),
    ("PUT", "/v1/contacts/{contact_id}"): Route(
        "tenant", base=lambda _w: Call(json={"name": "Hijacked", "email": "hijack@example.com"})
    ),
    ("DELETE", "/v1/contacts/{contact_id}"): Route("tenant"),
    ("GET", "/v1/contacts/{contact_id}/consent"): Route("tenant"),
    ("POST", "/v1/consent"): Route("tenant", variants=_consent_variants),
    ("POST", "/v1/consent/confirmation"): Route("tenant", variants=_resend_variants),
    ("POST", "/v1/imports"): Route("tenant", variants=_import_variants),
    ("GET", "/v1/imports/{import_id}"): Route("tenant"),
    ("GET", "/v1/imports/{import_id}/report.csv"): Route("tenant"),
    ("POST", "/v1/decisions"): Route("tenant", variants=_decision_variants),
    ("POST", "/v1/decisions/batch"): Route("tenant", variants=_batch_variants),
    ("GET", "/v1/suppressions"): Route(
        "tenant", own=lambda _w: Call(params={"include_lifted": "true"})
    ),
    ("POST", "/v1/suppressions"): Route(
        "tenant",
        variants=lambda w: [
            (
                "B's suppressed address",
                Call(json={"address": w.bob["email"], "channels": ["email"]}),
                Call(json={"address": _fresh_email(), "channels": ["email"]}),
            )
        ],
        creates=True,
    ),
    ("DELETE", "/v1/suppressions/{suppression_id}"): Route("tenant"),
    ("GET", "/v1/campaigns"): Route("tenant", own=lambda _w: Call()),
    ("POST", "/v1/campaigns"): Route("tenant", variants=_campaign_variants, creates=True),
    ("GET", "/v1/campaigns/{campaign}"): Route("tenant"),
    ("POST", "/v1/campaigns/{campaign}/simulate"): Route("tenant"),
    ("POST", "/v1/campaigns/{campaign}/launch"): Route("tenant"),
    ("POST", "/v1/campaigns/{campaign}/pause"): Route("tenant"),
    ("POST", "/v1/campaigns/{campaign}/resume"): Route("tenant"),
    ("POST", "/v1/campaigns/{campaign}/cancel"): Route("tenant"),
    ("GET", "/v1/campaigns/{campaign}/status"): Route("tenant"),
    ("GET", "/v1/campaigns/{campaign}/deliveries"): Route("tenant"),
    ("POST", "/v1/lists"): Route(
        "tenant",
        variants=lambda w: [
            (
                "B's contact",
                Call(json={"name": unique("list"), "contacts": [w.bob["id"]]}),
                Call(json={"name": unique("list"), "contacts": [str(uuid.uuid4())]}),
            )
        ],
        creates=True,
    ),
    ("POST", "/v1/messages"): Route("tenant", variants=_message_variants, creates=True),
    ("GET", "/v1/keywords"): Route("tenant", own=lambda _w: Call()),
    ("PUT", "/v1/keywords"): Route(
        "tenant", own=lambda _w: Call(json={"it": {"opt_out": ["basta"]}}), creates=True
    ),
    ("DELETE", "/v1/keywords"): Route("tenant", own=lambda _w: Call(), creates=True),
    ("GET", "/v1/forms"): Route("tenant", own=lambda _w: Call()),
    ("POST", "/v1/forms"): Route("tenant", variants=_form_variants, creates=True),
    ("GET", "/v1/forms/{key}"): Route("tenant"),
    ("PUT", "/v1/forms/{key}"): Route(
        "tenant",
        base=lambda _w: Call(
            json={
                "title": "Mine now",
                "choices": [{"topic": "offers", "channel": "email"}],
                "privacy_url": "https://alpha.example/privacy",
            }
        ),
    ),
    ("POST", "/v1/forms/{key}/archive"): Route("tenant"),
    ("GET", "/v1/permission-passes"): Route("tenant", own=lambda _w: Call()),
    ("POST", "/v1/permission-passes"): Route("tenant", variants=_pass_variants, creates=True),
    ("GET", "/v1/permission-passes/{pass_id}"): Route("tenant"),
    ("GET", "/v1/messages/{message_id}"): Route("tenant"),
    ("GET", "/v1/templates"): Route("tenant", own=lambda _w: Call()),
    ("POST", "/v1/templates"): Route(
        "tenant",
        variants=lambda w: [
            (
                "B's topic",
                _template(topic=w.b_sending.topic),
                _template(topic=unique("no-topic")),
            ),
            ("B's template name", _template(name=w.b_sending.template["name"]), _template()),
        ],
        creates=True,
    ),
    ("GET", "/v1/templates/{template}/preview"): Route("tenant"),
    ("GET", "/v1/sender-domains"): Route("tenant", own=lambda _w: Call()),
    ("POST", "/v1/sender-domains"): Route(
        "tenant",
        variants=lambda w: [
            (
                "B's domain",
                Call(json={"domain": w.b_sending.domain}),
                Call(json={"domain": f"{unique('fresh')}.example"}),
            )
        ],
        creates=True,
    ),
}

# Path parameters: B's objects of that kind, and a value that names nothing.
PATH_TARGETS: dict[str, tuple[Callable[[World], list[str]], Callable[[], str]]] = {
    "contact_id": (lambda w: [w.bob["id"]], lambda: str(uuid.uuid4())),
    "import_id": (lambda w: [w.b_import], lambda: str(uuid.uuid4())),
    "pass_id": (lambda w: [w.b_pass], lambda: str(uuid.uuid4())),
    "notice_id": (lambda w: [w.b_notice], lambda: str(uuid.uuid4())),
    "key": (lambda w: [w.b_form], lambda: unique("no-form")),
    "document_id": (
        lambda w: [str(w.b.disclosure_id), w.b_draft["id"], w.b_notice_document],
        lambda: str(uuid.uuid4()),
    ),
    "prefix": (lambda w: [w.b.prefix, w.b_operator_prefix], lambda: secrets.token_hex(6)),
    "suppression_id": (lambda w: [s["id"] for s in w.b_suppressions], lambda: str(uuid.uuid4())),
    "campaign": (
        lambda w: [ref for c in w.b_sending.campaigns for ref in (c["id"], c["name"])],
        lambda: str(uuid.uuid4()),
    ),
    # By name: an unknown id is reported unquoted, an unknown name quoted (ids: test_messages).
    "template": (lambda w: [w.b_sending.template["name"]], lambda: unique("no-template")),
    "message_id": (
        lambda w: [str(i) for i in w.b_sending.delivery_ids],
        lambda: str(2**62 + secrets.randbelow(2**62)),
    ),
}


@dataclass
class Probe:
    method: str
    template: str
    label: str
    b_path: str
    b_call: Call
    missing_path: str
    missing_call: Call
    b_refs: list[str] = field(default_factory=list)
    missing_refs: list[str] = field(default_factory=list)


def _refs(call: Call) -> list[str]:
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, str):
            found.append(value)

    walk(call.json)
    walk(call.params or {})
    return found


def _probes(method: str, template: str, route: Route, w: World) -> list[Probe]:
    probes: list[Probe] = []
    names = re.findall(r"{(\w+)}", template)
    assert len(names) <= 1, f"{method} {template}: teach the walk about several path parameters"
    if names:
        assert names[0] in PATH_TARGETS, f"{method} {template}: unknown path parameter {names[0]}"
        targets, nothing = PATH_TARGETS[names[0]]
        base = route.base(w)
        for value in targets(w):
            missing = nothing()
            probes.append(
                Probe(
                    method,
                    template,
                    f"B's {names[0]}",
                    template.replace("{" + names[0] + "}", value),
                    base,
                    template.replace("{" + names[0] + "}", missing),
                    base,
                    [value],
                    [missing],
                )
            )
    for label, b_call, missing_call in route.variants(w):
        probes.append(
            Probe(
                method,
                template,
                label,
                template,
                b_call,
                template,
                missing_call,
                _refs(b_call),
                _refs(missing_call),
            )
        )
    return probes


def _send(client: httpx.Client, method: str, path: str, call: Call) -> httpx.Response:
    return client.request(method, path, json=call.json, params=call.params)


def _normalised(response: httpx.Response, refs: list[str]) -> str:
    """The response without the values the request itself named (ids echoed in a detail)."""
    text = response.text
    for ref in sorted(refs, key=len, reverse=True):
        if ref.isdigit():  # a whole number only: delivery 4 must not eat into the status 404
            text = re.sub(rf"(?<!\d){ref}(?!\d)", "<ref>", text)
        else:
            text = text.replace(ref, "<ref>")
    return text


def _signature(response: httpx.Response) -> tuple[Any, ...]:
    if not response.content:
        return (response.status_code,)
    body = response.json()
    if isinstance(body, list):  # a batch: what each item answered
        return (
            response.status_code,
            tuple(
                (item.get("error") or {}).get("code", "decision") if isinstance(item, dict) else ""
                for item in body
            ),
        )
    return response.status_code, body.get("code") if isinstance(body, dict) else None


def _assert_reveals_nothing(
    w: World, what: str, response: httpx.Response, allowed: list[str]
) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text}"
    leaked = {s for s in w.b_identifiers() if s in response.text and s not in allowed}
    assert not leaked, f"{what} revealed B's data {leaked}: {response.text}"


def _snapshot(api: Api, tenant_id: uuid.UUID) -> dict[str, list[str]]:
    """Every row of every table that belongs to the tenant, its audit log sealed to the end
    (the server's sealer may chain entries at any moment; chaining changes no entry)."""
    seal_audit(api.container.uow())
    found: dict[str, list[str]] = {}
    with api.container.engine.connect() as conn:
        for table in metadata.sorted_tables:
            if "tenant_id" in table.c:
                rows = conn.execute(select(table).where(table.c.tenant_id == tenant_id))
                found[table.name] = sorted(repr(tuple(row)) for row in rows)
    return found


def _seed(api: Api) -> World:
    a, b = api.tenant("alpha"), api.tenant("bravo")
    owner_b = api.client(b.token)
    assert (
        owner_b.post(
            "/v1/topics", json={"key": "bravo-only", "name": "B only", "category": "marketing"}
        ).status_code
        == 201
    )
    bob = owner_b.post("/v1/contacts", json=BOB).json()
    event = owner_b.post(
        "/v1/consent", json=_consent(bob["id"], document=str(b.disclosure_id))
    ).json()
    draft = owner_b.post(
        "/v1/policies", json={"kind": "privacy_policy", "title": "B draft", "body": "B's words"}
    ).json()
    suppressions = [
        *owner_b.post(
            "/v1/suppressions", json={"address": "+447400777002", "channels": ["sms"]}
        ).json(),
        *owner_b.post(
            "/v1/suppressions",
            json={"address": BOB["email"], "channels": ["email"], "reason": "hard_bounce"},
        ).json(),
    ]
    operator_key = api.issue_key(b.slug, name="bravo operator")
    user_email = f"{unique('owner')}@bravo.example"
    access.create_user(
        api.container.uow(),
        email=user_email,
        password="bravo's long password",
        role=Role.TENANT_OWNER,
        tenant_slug=b.slug,
    )
    alice = api.client(a.token).post("/v1/contacts", json={"email": "alice@example.com"}).json()
    sending = _seed_sending(api.client(a.token), owner_b)
    b_import = owner_b.post("/v1/imports", json=_import(str(b.disclosure_id))).json()["id"]
    deadline = time.monotonic() + 30  # the import runs in the background; B must be at rest
    while owner_b.get(f"/v1/imports/{b_import}").json()["status"] in {"queued", "running"}:
        assert time.monotonic() < deadline, "B's import did not finish"
        time.sleep(0.05)
    owner_a = api.client(a.token)
    assert owner_a.post(
        "/v1/lists", json={"name": ALPHA_LIST, "contacts": [alice["id"]]}
    ).is_success
    b_pass = owner_b.post(
        "/v1/permission-passes",
        json={
            "topic": "offers",
            "channel": "email",
            "list": sending.list["name"],
            "deadline": (datetime.now(UTC) + timedelta(days=7)).isoformat(),
        },
    )
    assert b_pass.status_code == 201, b_pass.text
    b_form = owner_b.post(
        "/v1/forms",
        json={
            "key": unique("bravo-join"),
            "title": "Join Bravo",
            "choices": [{"topic": "bravo-only", "channel": "email"}],
            "privacy_url": "https://bravo.example/privacy",
        },
    )
    assert b_form.status_code == 201, b_form.text
    b_notice_document, b_notice = _seed_notice(owner_b)
    b_keyword = unique("bravoword")
    assert owner_b.put("/v1/keywords", json={"en": {"opt_out": [b_keyword]}}).status_code == 200
    return World(
        a=a,
        b=b,
        alice=alice,
        bob=bob,
        b_event=event,
        b_draft=draft,
        b_topics=owner_b.get("/v1/topics").json(),
        b_suppressions=suppressions,
        b_operator_prefix=operator_key.record.prefix,
        b_user_email=user_email,
        b_sending=sending,
        b_import=b_import,
        b_pass=b_pass.json()["id"],
        b_form=b_form.json()["key"],
        b_keyword=b_keyword,
        b_notice=b_notice,
        b_notice_document=b_notice_document,
    )


def _seed_notice(owner_b: httpx.Client) -> tuple[str, str]:
    """B's second consent disclosure and a notice about it to those who said yes on the first
    (queued: no worker runs here, so B's rows stay as they are during the walk)."""
    body = {"kind": "consent_disclosure", "title": "Offers consent", "body": "B's new words"}
    v2 = owner_b.post("/v1/policies", json=body).json()["id"]
    assert owner_b.post(f"/v1/policies/{v2}/publish").status_code == 200
    notice = owner_b.post(f"/v1/policies/{v2}/notices", json={"ask_acceptance": True})
    assert notice.status_code == 202, notice.text
    assert notice.json()["report"]["targeted"] >= 1
    return v2, notice.json()["id"]


def _seed_sending(owner_a: httpx.Client, owner_b: httpx.Client) -> Sending:
    def made(response: httpx.Response) -> dict[str, Any]:
        assert response.status_code in {201, 202}, response.text
        body: dict[str, Any] = response.json()
        return body

    email = {"topic": "offers", "channel": "email", "subject": "Hello", "text": "Hello."}
    for name, topic in ((Sending.a_offer, "offers"), (Sending.a_booked, "reminders")):
        made(owner_a.post("/v1/templates", json=email | {"name": name, "topic": topic}))
    profile = {"legal_name": "Bravo Ltd", "country": "GB", "postal_address": "2 Low St, York"}
    assert owner_b.put("/v1/profile", json=profile).status_code == 200
    domain = made(owner_b.post("/v1/sender-domains", json={"domain": f"{unique('b')}.example"}))
    topic = {"key": unique("bravo-promo"), "name": "B promo", "category": "marketing"}
    made(owner_b.post("/v1/topics", json=topic))
    template = made(owner_b.post("/v1/templates", json=email | {"name": unique("bravo-offer")}))
    booked = email | {"name": unique("bravo-booked"), "topic": "reminders"}
    made(owner_b.post("/v1/templates", json=booked))
    contacts = [c["id"] for c in owner_b.get("/v1/contacts").json()["items"]]
    listed = made(
        owner_b.post("/v1/lists", json={"name": unique("bravo-list"), "contacts": contacts})
    )
    campaigns = [
        made(owner_b.post("/v1/campaigns", json=spec))
        for spec in (
            {"name": unique("bravo-launched"), "topic": "offers", "template": template["id"]},
            {"name": unique("bravo-draft"), "topic": "offers", "template": template["name"]},
        )
    ]
    launched = owner_b.post(f"/v1/campaigns/{campaigns[0]['id']}/launch")
    assert launched.status_code == 200, launched.text
    deliveries = owner_b.get(f"/v1/campaigns/{campaigns[0]['id']}/deliveries").json()["items"]
    message = made(
        owner_b.post("/v1/messages", json={"contact": contacts[0], "template": booked["name"]})
    )
    return Sending(
        domain=domain["domain"],
        topic=topic["key"],
        template=template,
        list=listed,
        campaigns=[owner_b.get(f"/v1/campaigns/{c['id']}").json() for c in campaigns],
        delivery_ids=[*(d["id"] for d in deliveries), message["id"]],
    )


@pytest.mark.parametrize(
    "names_b", [False, True], ids=["own-tenant", "claims-b-in-consentry-tenant"]
)
def test_tenant_a_can_neither_see_nor_change_tenant_b(api: Api, names_b: bool) -> None:
    w = _seed(api)
    before = _snapshot(api, w.b.id)
    b_audit_before = verify_audit(api.container.uow(), w.b.id)
    # A tenant key must ignore the operators' header: naming B changes nothing.
    a = api.client(w.a.token, tenant=w.b.id if names_b else None)

    spec = a.get("/openapi.json").json()
    operations = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    ]
    unknown = [op for op in operations if op[1].startswith("/v1") and op not in ROUTES]
    assert not unknown, f"classify these routes in test_isolation.ROUTES: {unknown}"
    stale = set(ROUTES) - set(operations)
    assert not stale, f"ROUTES names operations the API no longer has: {stale}"

    walked = 0
    for creates in (False, True):
        for method, template in operations:
            route = ROUTES.get((method, template))
            if route is None or route.creates is not creates:
                continue
            what = f"{method} {template}"
            if route.kind == "platform":
                call = route.base(w)
                before_rows = api.counts()
                response = _send(a, method, template, call)
                api.problem(response, 403, "FORBIDDEN")
                assert api.counts() == before_rows, what
                _assert_reveals_nothing(w, what, response, [])
                walked += 1
                continue
            if route.own is not None:
                call = route.own(w)
                response = _send(a, method, template, call)
                assert 200 <= response.status_code < 300, f"{what}: {response.text}"
                _assert_reveals_nothing(w, what, response, _refs(call))
                walked += 1
            for probe in _probes(method, template, route, w):
                what = f"{method} {probe.b_path} ({probe.label})"
                at_b = _send(a, method, probe.b_path, probe.b_call)
                at_nothing = _send(a, method, probe.missing_path, probe.missing_call)
                _assert_reveals_nothing(w, what, at_b, probe.b_refs)
                _assert_reveals_nothing(w, what, at_nothing, probe.missing_refs)
                assert _signature(at_b) == _signature(at_nothing), (
                    f"{what}: B's object answers {at_b.status_code} {at_b.text}, "
                    f"nothing answers {at_nothing.status_code} {at_nothing.text}"
                )
                if at_b.status_code >= 400:
                    assert _normalised(at_b, probe.b_refs) == _normalised(
                        at_nothing, probe.missing_refs
                    ), what
                walked += 1
    assert walked >= len([op for op in operations if op[1].startswith("/v1")])

    assert _snapshot(api, w.b.id) == before
    b_audit = verify_audit(api.container.uow(), w.b.id)
    assert b_audit.broken is None
    assert b_audit.head_seq == b_audit_before.head_seq
    b_ids = w.b_identifiers()
    assert not [e for e in api.audit(w.a.id) if e.object_id in b_ids]

    # B's key, objects and suppressions are all still there, as B left them.
    owner_b = api.client(w.b.token)
    assert owner_b.get("/v1/profile").json()["id"] == str(w.b.id)
    assert owner_b.get(f"/v1/contacts/{w.bob['id']}").json() == w.bob
    history = owner_b.get(f"/v1/contacts/{w.bob['id']}/consent").json()
    assert [e["id"] for e in history] == [w.b_event["event_id"]]
    active = {s["id"] for s in owner_b.get("/v1/suppressions").json()}
    assert {s["id"] for s in w.b_suppressions} <= active
    drafts = owner_b.get("/v1/policies", params={"kind": "privacy_policy"}).json()
    assert [d["status"] for d in drafts] == ["draft"]
    assert api.client(api.issue_key(w.b.slug).token).get("/v1/profile").status_code == 200
    keys = {k["prefix"]: k for k in owner_b.get("/v1/api-keys").json()}
    assert keys[w.b_operator_prefix]["revoked_at"] is None
    assert json.dumps(owner_b.get("/v1/topics").json(), sort_keys=True) == json.dumps(
        w.b_topics, sort_keys=True
    )
