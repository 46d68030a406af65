"""Contacts over HTTP: create, read, replace, find by address, page through, erase."""

from __future__ import annotations

import uuid

import httpx
from tests.e2e.api.conftest import Api, Seeded

JANE = {
    "name": "Jane Roe",
    "email": "Jane.Roe@Example.COM",
    "phone": "07400 123456",
    "country": "GB",
    "time_zone": "Europe/London",
    "locale": "en-GB",
    "date_of_birth": "1990-04-01",
    "external_ref": "crm-17",
}


def test_a_contact_is_created_normalised_and_read_back(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    created = client.post("/v1/contacts", json=JANE)
    assert created.status_code == 201, created.text
    jane = created.json()
    uuid.UUID(jane["id"])
    assert jane["email"] == "Jane.Roe@example.com"  # domain folded, local part kept
    assert jane["phone"] == "+447400123456"
    assert jane["date_of_birth"] == "1990-04-01"
    assert jane["external_ref"] == "crm-17"

    read = client.get(f"/v1/contacts/{jane['id']}")
    assert read.status_code == 200
    assert read.json() == jane

    api.problem(
        client.post("/v1/contacts", json={"email": "jane.roe@example.com"}),
        409,
        "ALREADY_EXISTS",
        field="email",
    )
    api.problem(client.get(f"/v1/contacts/{uuid.uuid4()}"), 404, "CONTACT_NOT_FOUND")


def test_a_contact_is_replaced(api: Api, acme: Seeded, client: httpx.Client) -> None:
    jane = client.post("/v1/contacts", json=JANE).json()
    other = client.post("/v1/contacts", json={"email": "other@example.com"}).json()
    replaced = client.put(
        f"/v1/contacts/{jane['id']}",
        json={"name": "Jane Smith", "email": "jane.smith@example.com", "phone": "+447400999888"},
    )
    assert replaced.status_code == 200, replaced.text
    body = replaced.json()
    assert body["id"] == jane["id"]
    assert (body["name"], body["email"], body["phone"]) == (
        "Jane Smith",
        "jane.smith@example.com",
        "+447400999888",
    )
    assert body["external_ref"] is None  # PUT replaces the whole contact
    assert body["created_at"] == jane["created_at"]
    assert client.get(f"/v1/contacts/{jane['id']}").json() == body

    clash = client.put(f"/v1/contacts/{jane['id']}", json={"email": other["email"]})
    api.problem(clash, 409, "ALREADY_EXISTS", field="email")
    assert client.get(f"/v1/contacts/{jane['id']}").json()["email"] == "jane.smith@example.com"
    api.problem(
        client.put(f"/v1/contacts/{uuid.uuid4()}", json={"name": "Nobody"}),
        404,
        "CONTACT_NOT_FOUND",
    )


def test_a_contact_is_found_by_email_and_by_phone(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json=JANE).json()
    client.post("/v1/contacts", json={"email": "decoy@example.com", "phone": "+447400000001"})
    for address in (
        "jane.roe@example.com",
        "JANE.ROE@EXAMPLE.COM",
        "+447400123456",
        "07400 123456",
        "+44 7400 123456",
    ):
        found = client.post("/v1/contacts/lookup", json={"address": address})
        assert found.status_code == 200, (address, found.text)
        assert found.json()["id"] == jane["id"], address
    for unknown in ("nobody@example.com", "+447400555555", "not an address"):
        api.problem(
            client.post("/v1/contacts/lookup", json={"address": unknown}),
            404,
            "CONTACT_NOT_FOUND",
        )


def test_contacts_are_listed_page_by_page_with_a_cursor(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    created = [
        client.post("/v1/contacts", json={"email": f"person{i}@example.com"}).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/contacts", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
        assert pages < 10, "the cursor does not advance"
    assert pages == 3
    assert seen == created  # oldest first, each exactly once

    everything = client.get("/v1/contacts").json()
    assert [c["id"] for c in everything["items"]] == created
    assert everything["next_cursor"] is None
    api.problem(
        client.get("/v1/contacts", params={"limit": 0}),
        422,
        "VALIDATION_FAILED",
        field="query.limit",
    )
    api.problem(client.get("/v1/contacts", params={"limit": 201}), 422, "VALIDATION_FAILED")
    api.problem(client.get("/v1/contacts", params={"cursor": "nope"}), 422, "VALIDATION_FAILED")


def test_erasure_removes_the_contact_and_suppresses_its_addresses(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    jane = client.post("/v1/contacts", json=JANE).json()
    before = {s["id"] for s in client.get("/v1/suppressions").json()}

    erased = client.delete(f"/v1/contacts/{jane['id']}")
    assert erased.status_code == 204
    assert erased.content == b""

    api.problem(client.get(f"/v1/contacts/{jane['id']}"), 404, "CONTACT_NOT_FOUND")
    api.problem(
        client.post("/v1/contacts/lookup", json={"address": JANE["email"]}),
        404,
        "CONTACT_NOT_FOUND",
    )
    assert jane["id"] not in {c["id"] for c in client.get("/v1/contacts").json()["items"]}
    api.problem(client.delete(f"/v1/contacts/{jane['id']}"), 404, "CONTACT_NOT_FOUND")

    tombstones = [s for s in client.get("/v1/suppressions").json() if s["id"] not in before]
    assert {(s["channel"], s["reason"], s["scope"]) for s in tombstones} == {
        ("email", "erased", "all"),
        ("sms", "erased", "all"),
        ("voice", "erased", "all"),
    }
    assert all(not s["platform_wide"] for s in tombstones)

    again = client.post("/v1/contacts", json={"name": "Jane Again", "email": JANE["email"]})
    assert again.status_code == 201, again.text
    decision = client.post(
        "/v1/decisions",
        json={"contact": again.json()["id"], "topic": "reminders", "channel": "email"},
    )
    assert decision.status_code == 200, decision.text
    assert decision.json()["verdict"] == "deny"
    assert "SUPPRESSED_ERASED" in decision.json()["reasons"]
