"""Imports over real HTTP: a multipart upload, progress and report, refusals, size limits."""

from __future__ import annotations

import csv
import hashlib
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from tests.e2e.api.conftest import Api, Seeded

CSV = (
    b"Email,Name,Signed up,IP\r\n"
    b"ana@example.com,Ana,2026-02-01T10:00:00Z,203.0.113.9\r\n"
    b'ben@example.org,"Ben\r\nOkafor",2026-02-02,198.51.100.7\r\n'
    b"=2+5,Mallory,2026-02-03,203.0.113.10\r\n"
    b"ana@example.com,Ana twice,2026-02-04,203.0.113.9\r\n"
)


def spec(seeded: Seeded, **extra: Any) -> dict[str, Any]:
    return {
        "topic": "offers",
        "channel": "email",
        "source": "Sign-up box on the shop's website",
        "opt_in_method": "web_form",
        "collected_from": "2026-01-01",
        "collected_to": "2026-03-31",
        "website": "https://shop.example/join",
        "disclosure_id": str(seeded.disclosure_id),
        "attest": True,
        "mapping": {"signup_at": "Signed up"},
    } | extra


def upload(client: httpx.Client, data: bytes, body: dict[str, Any]) -> httpx.Response:
    return client.post(
        "/v1/imports",
        files={"file": ("customers.csv", data, "text/csv")},
        data={"spec": json.dumps(body)},
    )


def finished(client: httpx.Client, import_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/imports/{import_id}").json()
        if body["status"] not in {"queued", "running"}:
            return body
        time.sleep(0.05)
    raise AssertionError("the import did not finish")


def test_an_upload_is_imported_in_the_background_with_its_report(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    accepted = upload(client, CSV, spec(acme, keep_good_rows=True))
    assert accepted.status_code == 202, accepted.text
    started = accepted.json()
    assert started["file"] == {
        "name": "customers.csv",
        "sha256": hashlib.sha256(CSV).hexdigest(),
        "bytes": len(CSV),
    }
    assert started["progress"]["rows_total"] == 4
    assert started["attestation"]["attested_by"] == acme.actor
    body = finished(client, started["id"])
    assert body["status"] == "completed", body
    assert body["progress"] == {"rows_done": 4, "rows_total": 4}
    assert body["counts"] | {} == {
        "rows": 4, "imported": 2, "pending": 0, "contacts_created": 2, "skipped": 1, "errors": 1,
        "confirmations_sent": 0,
    }  # fmt: skip
    assert [(i["line"], i["code"]) for i in body["issues"]] == [
        (5, "INVALID_EMAIL"),
        (6, "DUPLICATE_IN_FILE"),
    ]
    report = client.get(f"/v1/imports/{started['id']}/report.csv")
    assert report.status_code == 200
    assert report.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(report.text.splitlines()))
    assert rows[1][0] == "5"
    assert rows[1][5] == "'=2+5"  # the formula is exported as text
    ben = client.post("/v1/contacts/lookup", json={"address": "ben@example.org"}).json()
    assert ben["name"] == "Ben\r\nOkafor"
    (event,) = client.get(f"/v1/contacts/{ben['id']}/consent").json()
    assert event["method"] == "import"
    assert event["actor"] == f"import:{started['id']}"
    assert event["source"] == "https://shop.example/join"
    assert event["ip_address"] == "198.51.100.7"


def test_an_import_with_errors_is_rejected_whole(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    before = api.counts()
    started = upload(client, CSV, spec(acme)).json()
    body = finished(client, started["id"])
    assert body["status"] == "rejected"
    after = api.counts()
    for table in ("contacts", "consent_events", "consent_states"):
        assert after[table] == before[table], table


def test_a_dry_run_reports_and_writes_no_contact_or_consent(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    before = api.counts()
    body = finished(client, upload(client, CSV, spec(acme, dry_run=True)).json()["id"])
    assert body["status"] == "dry_run"
    assert body["counts"]["imported"] == 2
    after = api.counts()
    for table in ("contacts", "consent_events", "consent_states"):
        assert after[table] == before[table], table


def test_a_rented_list_is_refused_and_nothing_is_stored(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    before = api.counts()
    refused = upload(client, CSV, spec(acme, acquisition="rented"))
    api.problem(refused, 422, "IMPORT_LIST_REFUSED", field="acquisition")
    unattested = upload(client, CSV, spec(acme, attest=False))
    api.problem(unattested, 422, "ATTESTATION_INCOMPLETE", field="attest")
    assert api.counts() == before


def test_bad_files_are_refused_with_clear_problems(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    before = api.counts()
    latin = "Email,Name\r\nzoe@example.com,Zo\xeb\r\n".encode("latin-1")
    body = api.problem(upload(client, latin, spec(acme, mapping={})), 422, "IMPORT_ENCODING")
    assert "line 2" in body["detail"]
    headerless = b"ana@example.com,Ana\r\n"
    api.problem(upload(client, headerless, spec(acme, mapping={})), 422, "IMPORT_HEADER")
    assert api.counts() == before


def test_an_upload_over_the_limit_is_cut_off_with_413(
    serve: Callable[..., Api],
) -> None:
    api = serve(import_max_bytes=64 * 1024)
    acme = api.tenant("acme")
    client = api.client(acme.token)
    before = api.counts()
    big = b"email\r\n" + b"someone@example.com\r\n" * 10_000
    api.problem(upload(client, big, spec(acme, mapping={})), 413, "IMPORT_TOO_LARGE")
    assert api.counts() == before


def test_a_small_list_can_be_sent_as_json_and_read_needs_the_tenant(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    body = spec(acme, mapping={}, csv="email\nzed@example.com\n")
    started = client.post("/v1/imports", json=body)
    assert started.status_code == 202, started.text
    assert finished(client, started.json()["id"])["counts"]["imported"] == 1
    other = api.tenant("other")
    stranger = api.client(other.token)
    api.problem(stranger.get(f"/v1/imports/{started.json()['id']}"), 404, "IMPORT_NOT_FOUND")
    api.problem(client.get(f"/v1/imports/{uuid.uuid4()}"), 404, "IMPORT_NOT_FOUND")


def test_an_upload_into_a_confirmed_opt_in_topic_asks_each_new_address_to_confirm(
    api: Api, acme: Seeded, client: httpx.Client
) -> None:
    made = client.post(
        "/v1/topics",
        json={"key": "news", "name": "Weekly news", "category": "marketing",
              "requires_double_opt_in": True},
    )  # fmt: skip
    assert made.status_code == 201, made.text
    captured = api.counts()["captured_messages"]

    accepted = upload(client, CSV, spec(acme, keep_good_rows=True, topic="news"))
    assert accepted.status_code == 202, accepted.text
    body = finished(client, accepted.json()["id"])
    assert body["counts"]["pending"] == 2
    deadline = time.monotonic() + 30  # the requests go out after the import has committed
    while body["counts"]["confirmations_sent"] < 2:
        assert time.monotonic() < deadline, body
        time.sleep(0.05)
        body = client.get(f"/v1/imports/{body['id']}").json()

    assert body["counts"]["confirmations_sent"] == 2
    assert api.counts()["captured_messages"] == captured + 2
    assert "confirmation request" in body["note"]
