"""The business profile, topics and policy documents of a tenant, through its owner key."""

from __future__ import annotations

import hashlib

import httpx
from tests.e2e.api.conftest import Api, Seeded

PROFILE = {
    "legal_name": "Acme Parts Limited",
    "country": "gb",
    "description": "Car parts, delivered.",
    "contact_email": "hello@acme.example",
    "contact_phone": "+44 20 7946 0000",
    "postal_address": "1 High Street, Leeds",
    "website": "https://acme.example",
}


def test_profile_is_read_and_replaced(api: Api, acme: Seeded, client: httpx.Client) -> None:
    current = client.get("/v1/profile")
    assert current.status_code == 200
    body = current.json()
    assert body["id"] == str(acme.id)
    assert body["slug"] == acme.slug
    assert body["status"] == "active"
    assert body["profile"]["country"] == "GB"

    replaced = client.put("/v1/profile", json=PROFILE)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["profile"] == PROFILE | {"country": "GB"}
    assert client.get("/v1/profile").json()["profile"] == PROFILE | {"country": "GB"}

    api.problem(client.put("/v1/profile", json=PROFILE | {"country": "XX"}), 422, "INVALID_COUNTRY")
    api.problem(
        client.put("/v1/profile", json=PROFILE | {"legal_name": "   "}),
        422,
        "INVALID_VALUE",
        field="legal_name",
    )
    assert client.get("/v1/profile").json()["profile"]["legal_name"] == PROFILE["legal_name"]


def test_topics_are_listed_and_created(api: Api, acme: Seeded, client: httpx.Client) -> None:
    keys = {t["key"] for t in client.get("/v1/topics").json()}
    assert keys == {"all-marketing", "all-service", "offers", "reminders"}

    created = client.post(
        "/v1/topics",
        json={
            "key": "newsletter",
            "name": "Newsletter",
            "category": "marketing",
            "requires_double_opt_in": True,
        },
    )
    assert created.status_code == 201, created.text
    topic = created.json()
    assert topic["key"] == "newsletter"
    assert topic["requires_double_opt_in"] is True
    assert topic["umbrella"] is False
    listed = {t["key"]: t for t in client.get("/v1/topics").json()}
    assert listed["newsletter"]["id"] == topic["id"]
    assert listed["all-marketing"]["umbrella"] is True

    api.problem(
        client.post(
            "/v1/topics", json={"key": "newsletter", "name": "Again", "category": "marketing"}
        ),
        409,
        "ALREADY_EXISTS",
    )
    api.problem(
        client.post("/v1/topics", json={"key": "Bad Key", "name": "x", "category": "service"}),
        422,
        "VALIDATION_FAILED",
        field="key",
    )
    assert len(client.get("/v1/topics").json()) == 5


def test_policies_are_drafted_published_once_and_listed(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    text = "We keep your data safe.\n"
    drafted = client.post(
        "/v1/policies", json={"kind": "privacy_policy", "title": "Privacy", "body": text}
    )
    assert drafted.status_code == 201, drafted.text
    draft = drafted.json()
    assert draft["status"] == "draft"
    assert draft["version"] == 1
    assert draft["published_at"] is None
    assert draft["content_hash"] == "sha256:" + hashlib.sha256(text.encode()).hexdigest()

    second = client.post(
        "/v1/policies", json={"kind": "privacy_policy", "title": "Privacy", "body": text + "v2"}
    ).json()
    assert second["version"] == 2

    published = client.post(f"/v1/policies/{draft['id']}/publish")
    assert published.status_code == 200, published.text
    assert published.json()["status"] == "published"
    assert published.json()["published_at"] is not None

    again = client.post(f"/v1/policies/{draft['id']}/publish")
    api.problem(again, 409, "POLICY_DOCUMENT_IMMUTABLE")

    api.problem(
        client.post("/v1/policies/00000000-0000-0000-0000-000000000001/publish"),
        404,
        "POLICY_DOCUMENT_NOT_FOUND",
    )

    privacy = client.get("/v1/policies", params={"kind": "privacy_policy"}).json()
    assert [(p["version"], p["status"]) for p in privacy] == [(1, "published"), (2, "draft")]
    everything = client.get("/v1/policies").json()
    assert {p["kind"] for p in everything} == {"privacy_policy", "consent_disclosure"}
    assert str(acme.disclosure_id) in {p["id"] for p in everything}
