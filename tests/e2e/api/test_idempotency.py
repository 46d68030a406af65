"""Idempotency-Key: a retried write gets the first response and writes nothing more."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from tests.e2e.api.conftest import Api, Seeded

from consentry.services import contacts as contacts_service

JANE = {"name": "Jane Roe", "email": "jane.roe@example.com"}


def test_a_retry_with_the_same_key_and_body_is_replayed(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    headers = {"Idempotency-Key": "create-jane-1"}
    first = client.post("/v1/contacts", json=JANE, headers=headers)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    after_first = api.counts()

    again = client.post("/v1/contacts", json=JANE, headers=headers)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert api.counts() == after_first
    assert len(client.get("/v1/contacts").json()["items"]) == 1

    without_key = client.post("/v1/contacts", json=JANE)
    api.problem(without_key, 409, "ALREADY_EXISTS")  # the replay was not a fresh request


def test_a_replayed_refusal_is_still_a_problem(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    headers = {"Idempotency-Key": "bad-email"}
    first = client.post("/v1/contacts", json={"email": "nope@"}, headers=headers)
    api.problem(first, 422, "INVALID_EMAIL")
    again = client.post("/v1/contacts", json={"email": "nope@"}, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    api.problem(again, 422, "INVALID_EMAIL")


def test_the_same_key_with_another_body_is_refused(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    headers = {"Idempotency-Key": "create-1"}
    assert client.post("/v1/contacts", json=JANE, headers=headers).status_code == 201
    before = api.counts()
    other = client.post("/v1/contacts", json={"email": "john@example.com"}, headers=headers)
    api.problem(other, 422, "IDEMPOTENCY_KEY_REUSED", field="Idempotency-Key")
    elsewhere = client.post(
        "/v1/suppressions",
        json={"address": "x@example.com", "channels": ["email"]},
        headers=headers,
    )
    api.problem(elsewhere, 422, "IDEMPOTENCY_KEY_REUSED")
    assert api.counts() == before
    api.problem(
        client.post("/v1/contacts", json=JANE, headers={"Idempotency-Key": "k" * 256}),
        422,
        "IDEMPOTENCY_KEY_INVALID",
    )
    assert api.counts() == before


def test_keys_belong_to_one_principal(api: Api, acme: Seeded, client: httpx.Client) -> None:
    other_tenant = api.tenant("globex")
    colleague = api.client(api.issue_key(acme.slug, name="second").token)
    stranger = api.client(other_tenant.token)
    headers = {"Idempotency-Key": "shared-key"}

    mine = client.post("/v1/contacts", json=JANE, headers=headers)
    assert mine.status_code == 201
    theirs = stranger.post("/v1/contacts", json=JANE, headers=headers)
    assert theirs.status_code == 201, theirs.text
    assert "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine.json()["id"]
    assert stranger.get(f"/v1/contacts/{theirs.json()['id']}").status_code == 200

    # Another key of the same tenant is another principal: it runs its own request.
    same_tenant = colleague.post("/v1/contacts", json=JANE, headers=headers)
    api.problem(same_tenant, 409, "ALREADY_EXISTS")
    assert "idempotent-replayed" not in same_tenant.headers


def test_an_unauthenticated_retry_gets_no_stored_response(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    headers = {"Idempotency-Key": "create-jane"}
    assert client.post("/v1/contacts", json=JANE, headers=headers).status_code == 201
    anonymous = api.client().post("/v1/contacts", json=JANE, headers=headers)
    api.problem(anonymous, 401, "UNAUTHENTICATED")
    assert "idempotent-replayed" not in anonymous.headers
    assert "jane" not in anonymous.text.lower()


def test_concurrent_retries_create_one_row(api: Api, acme: Seeded) -> None:
    """Retries that race each other: one runs, the others wait or get its answer."""
    before = api.counts()
    headers = {"Idempotency-Key": "racing"}
    clients = [api.client(acme.token) for _ in range(6)]
    barrier = threading.Barrier(len(clients))

    def post(client: httpx.Client) -> httpx.Response:
        barrier.wait()
        return client.post("/v1/contacts", json=JANE, headers=headers)

    with ThreadPoolExecutor(len(clients)) as pool:
        responses = list(pool.map(post, clients))

    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses]
    assert len({r.json()["id"] for r in created}) == 1
    for response in responses:
        if response.status_code != 201:
            api.problem(response, 409, "IDEMPOTENCY_IN_PROGRESS")
            assert response.headers["retry-after"] == "1"
    after = api.counts()
    assert after["contacts"] == before["contacts"] + 1
    assert after["idempotency_keys"] == before["idempotency_keys"] + 1
    replay = clients[0].post("/v1/contacts", json=JANE, headers=headers)
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == created[0].json()


def test_a_request_that_crashes_releases_its_key(
    api: Api, acme: Seeded, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the database went away")

    headers = {"Idempotency-Key": "create-jane-crash"}
    with monkeypatch.context() as patched:
        patched.setattr(contacts_service, "add_contact", crash)
        # The server closes a connection whose request crashed: do not reuse it.
        failed = client.post("/v1/contacts", json=JANE, headers={**headers, "Connection": "close"})
    assert failed.status_code == 500
    # Neither a stored 500 nor "still running": the retry runs, and is then replayed.
    retried = client.post("/v1/contacts", json=JANE, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
    again = client.post("/v1/contacts", json=JANE, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == retried.json()
