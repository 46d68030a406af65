"""Bad input gets a problem+json with a stable code, never a 500, and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from tests.e2e.api.conftest import Api, Seeded

JANE = {"name": "Jane Roe", "email": "jane.roe@example.com", "phone": "07400 123456"}
ONE_MIB = 1_048_576


@pytest.fixture
def jane(client: httpx.Client) -> dict[str, Any]:
    created = client.post("/v1/contacts", json=JANE)
    assert created.status_code == 201, created.text
    return dict(created.json())


def test_malformed_json_is_refused(api: Api, client: httpx.Client) -> None:
    before = api.counts()
    for raw in (b'{"email": "jane@example.com"', b"not json at all", b"\xff\xfe", b""):
        response = client.post(
            "/v1/contacts", content=raw, headers={"Content-Type": "application/json"}
        )
        api.problem(response, 422, "VALIDATION_FAILED")
    api.problem(client.post("/v1/contacts", json=["jane@example.com"]), 422, "VALIDATION_FAILED")
    api.problem(client.post("/v1/contacts", json="jane@example.com"), 422, "VALIDATION_FAILED")
    assert api.counts() == before


WRONG_TYPES: list[tuple[dict[str, Any], str]] = [
    ({"email": 42}, "email"),
    ({"email": "jane@example.com", "age_attested": "perhaps"}, "age_attested"),
    ({"email": "jane@example.com", "date_of_birth": "yesterday"}, "date_of_birth"),
    ({"email": "jane@example.com", "name": ["Jane"]}, "name"),
    ({"email": "jane@example.com", "country": "GBR"}, "country"),
    ({"email": "x" * 321}, "email"),
]


def test_wrong_types_are_refused_naming_the_field(api: Api, client: httpx.Client) -> None:
    before = api.counts()
    for payload, field in WRONG_TYPES:
        body = api.problem(
            client.post("/v1/contacts", json=payload), 422, "VALIDATION_FAILED", field=field
        )
        assert body["errors"][0]["field"] == field
    assert api.counts() == before


def test_unknown_fields_are_refused_naming_the_field(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    before = api.counts()
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        (
            "POST",
            "/v1/contacts",
            {"email": "a@example.com", "favourite_colour": "red"},
            "favourite_colour",
        ),
        ("PUT", f"/v1/contacts/{jane['id']}", JANE | {"emial": "typo@example.com"}, "emial"),
        (
            "POST",
            "/v1/consent",
            {
                "contact": jane["id"],
                "topic": "offers",
                "channel": "email",
                "approved": True,
                "evidence": {"method": "api"},
            },
            "approved",
        ),
        (
            "POST",
            "/v1/consent",
            {
                "contact": jane["id"],
                "topic": "offers",
                "channel": "email",
                "evidence": {"method": "api", "ip": "203.0.113.9"},
            },
            "evidence.ip",
        ),
        (
            "POST",
            "/v1/suppressions",
            {"address": JANE["email"], "channels": ["email"], "forever": True},
            "forever",
        ),
        (
            "POST",
            "/v1/decisions",
            {"contact": jane["id"], "topic": "offers", "channel": "email", "force": True},
            "force",
        ),
        (
            "POST",
            "/v1/topics",
            {"key": "news", "name": "News", "category": "marketing", "colour": "red"},
            "colour",
        ),
        (
            "PUT",
            "/v1/profile",
            {"legal_name": "Acme", "country": "GB", "tenant_id": "x"},
            "tenant_id",
        ),
    ]
    for method, path, payload, field in cases:
        response = client.request(method, path, json=payload)
        body = api.problem(response, 422, "VALIDATION_FAILED", field=field)
        assert any(e["type"] == "extra_forbidden" for e in body["errors"]), body
    assert api.counts() == before


INVALID_VALUES: list[tuple[dict[str, Any], str, str]] = [
    ({"email": "jane@"}, "INVALID_EMAIL", "email"),
    ({"email": "jane roe@example.com"}, "INVALID_EMAIL", "email"),
    ({"email": "jane@example..com"}, "INVALID_EMAIL", "email"),
    ({"phone": "12"}, "INVALID_PHONE", "phone"),
    ({"phone": "not a number"}, "INVALID_PHONE", "phone"),
    ({"phone": "+1 999 999 9999 9999"}, "INVALID_PHONE", "phone"),
    ({"whatsapp": "+44 12"}, "INVALID_PHONE", "whatsapp"),
    ({"email": "jane@example.com", "country": "XX"}, "INVALID_COUNTRY", "country"),
    ({"email": "jane@example.com", "time_zone": "Mars/Olympus"}, "INVALID_TIME_ZONE", "time_zone"),
    (
        {"email": "jane@example.com", "date_of_birth": "2999-01-01"},
        "DOB_IN_FUTURE",
        "date_of_birth",
    ),
]


def test_invalid_addresses_and_values_are_refused_with_their_code(
    api: Api, client: httpx.Client, jane: dict[str, Any]
) -> None:
    before = api.counts()
    for payload, code, field in INVALID_VALUES:
        api.problem(client.post("/v1/contacts", json=payload), 422, code, field=field)
        api.problem(client.put(f"/v1/contacts/{jane['id']}", json=payload), 422, code, field=field)
    assert api.counts() == before
    assert client.get(f"/v1/contacts/{jane['id']}").json() == jane


def test_an_unknown_topic_is_named(
    api: Api, acme: Seeded, client: httpx.Client, jane: dict[str, Any]
) -> None:
    before = api.counts()
    consent = {
        "contact": jane["id"],
        "topic": "no-such-topic",
        "channel": "email",
        "action": "withdrawn",
        "evidence": {"method": "api"},
    }
    api.problem(client.post("/v1/consent", json=consent), 404, "TOPIC_NOT_FOUND", field="topic")
    decision = {"contact": jane["id"], "topic": "no-such-topic", "channel": "email"}
    api.problem(client.post("/v1/decisions", json=decision), 404, "TOPIC_NOT_FOUND", field="topic")
    assert api.counts() == before


def test_an_oversized_body_is_refused(api: Api, client: httpx.Client) -> None:
    before = api.counts()
    big = {"email": "jane@example.com", "name": "x" * (ONE_MIB + 1)}
    api.problem(client.post("/v1/contacts", json=big), 413, "PAYLOAD_TOO_LARGE")
    api.problem(
        client.post("/v1/contacts", json=big, headers={"Idempotency-Key": "big-1"}),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert api.counts() == before
    assert client.get("/v1/contacts").status_code == 200  # the server is still serving


def test_an_oversized_body_without_a_declared_length_is_refused(
    api: Api, client: httpx.Client
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        yield b'{"email": "jane@example.com", "name": "'
        for _ in range(20):
            yield b"x" * 65_536
        yield b'"}'

    before = api.counts()
    streamed = client.post(
        "/v1/contacts", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert api.counts() == before
    api.problem(streamed, 413, "PAYLOAD_TOO_LARGE")


def test_bad_paths_and_methods_are_problems(api: Api, client: httpx.Client) -> None:
    api.problem(client.get("/v1/contacts/not-a-uuid"), 422, "VALIDATION_FAILED")
    api.problem(client.get("/v1/no-such-thing"), 404, "NOT_FOUND")
    api.problem(client.patch("/v1/contacts"), 405, "METHOD_NOT_ALLOWED")


NUL_CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/contacts", {"email": "jane@example.com", "external_ref": "crm\x00"}),
    ("POST", "/v1/contacts", {"email": "jane2@example.com", "locale": "en\x00"}),
    ("POST", "/v1/topics", {"key": "news", "name": "News\x00", "category": "marketing"}),
    ("POST", "/v1/policies", {"kind": "privacy_policy", "title": "P\x00", "body": "b"}),
    (
        "POST",
        "/v1/suppressions",
        {"address": "j@example.com", "channels": ["email"], "note": "\x00"},
    ),
    ("POST", "/v1/api-keys", {"name": "key\x00"}),
    ("PUT", "/v1/profile", {"legal_name": "Acme\x00", "country": "GB"}),
]


def test_nul_characters_never_cause_a_server_error(
    api: Api, acme: Seeded, request: pytest.FixtureRequest
) -> None:
    failures: list[tuple[str, str, str]] = []
    for method, path, payload in NUL_CASES:
        try:  # a fresh connection each time: after a 500 the server may drop the connection
            response = api.client(acme.token).request(method, path, json=payload)
        except httpx.TransportError as exc:
            failures.append((method, path, type(exc).__name__))
            continue
        if response.status_code >= 500:
            failures.append((method, path, str(response.status_code)))
        elif response.status_code >= 400:
            assert response.json()["code"], response.text
    assert failures == []
