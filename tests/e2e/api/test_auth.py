"""Authentication and scopes: who may call the API, and what each credential may do."""

from __future__ import annotations

import httpx
from tests.e2e.api.conftest import Api, Seeded

from consentry.domain.access import Role, Scope
from consentry.services import access

JANE = {"name": "Jane Roe", "email": "jane.roe@example.com", "country": "GB"}


def _unauthenticated(api: Api, response: httpx.Response) -> None:
    api.problem(response, 401, "UNAUTHENTICATED")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_no_credential_is_refused_with_a_challenge(api: Api, acme: Seeded) -> None:
    client = api.client()
    for method, path in (
        ("GET", "/v1/profile"),
        ("GET", "/v1/contacts"),
        ("POST", "/v1/decisions"),
        ("GET", "/v1/tenants"),
    ):
        _unauthenticated(api, client.request(method, path))


def test_malformed_or_unknown_keys_are_refused(api: Api, acme: Seeded) -> None:
    for token in (
        "not-a-key",
        "csk_short_secret",
        "csk_0123456789ab",
        "csk_0123456789ab_" + "x" * 43,
        acme.token + "x",
        acme.token[:-1],
    ):
        _unauthenticated(api, api.client(token).get("/v1/profile"))
    for header in ("Basic dXNlcjpwYXNz", "Bearer", "Token " + acme.token):
        response = api.client().get("/v1/profile", headers={"Authorization": header})
        _unauthenticated(api, response)


def test_a_key_with_a_wrong_secret_is_refused(api: Api, acme: Seeded) -> None:
    forged = f"csk_{acme.prefix}_{'A' * 43}"
    _unauthenticated(api, api.client(forged).get("/v1/profile"))


def test_a_key_revoked_over_the_api_stops_working_at_once(api: Api, acme: Seeded) -> None:
    victim = api.issue_key(acme.slug, name="integration")
    client = api.client(victim.token)
    assert client.get("/v1/contacts").status_code == 200

    admin = api.client(acme.token)
    revoked = admin.delete(f"/v1/api-keys/{victim.record.prefix}")
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["prefix"] == victim.record.prefix

    _unauthenticated(api, client.get("/v1/contacts"))
    listed = {k["prefix"]: k for k in admin.get("/v1/api-keys").json()}
    assert listed[victim.record.prefix]["revoked_at"] is not None
    assert "token" not in listed[victim.record.prefix] or not listed[victim.record.prefix]["token"]


def test_a_key_revoked_through_the_service_stops_working_at_once(api: Api, acme: Seeded) -> None:
    victim = api.issue_key(acme.slug, name="integration")
    client = api.client(victim.token)
    assert client.get("/v1/profile").status_code == 200
    access.revoke_api_key(
        api.container.uow(), access.local_operator(), acme.id, victim.record.prefix
    )
    _unauthenticated(api, client.get("/v1/profile"))


def test_a_key_without_the_scope_is_forbidden_and_writes_nothing(api: Api, acme: Seeded) -> None:
    narrow = api.issue_key(acme.slug, scopes=frozenset({Scope.DECISIONS}))
    client = api.client(narrow.token)
    before = api.counts()
    response = client.post("/v1/contacts", json=JANE)
    api.problem(response, 403, "FORBIDDEN")
    assert api.counts() == before
    api.problem(client.get("/v1/contacts"), 403, "FORBIDDEN")
    api.problem(
        client.post("/v1/suppressions", json={"address": JANE["email"], "channels": ["email"]}),
        403,
        "FORBIDDEN",
    )
    assert api.counts() == before


def test_an_operator_key_cannot_administer(api: Api, acme: Seeded) -> None:
    operator = api.client(api.issue_key(acme.slug, role=Role.TENANT_OPERATOR).token)
    before = api.counts()
    api.problem(
        operator.post("/v1/topics", json={"key": "news", "name": "News", "category": "marketing"}),
        403,
        "FORBIDDEN",
    )
    api.problem(operator.post("/v1/api-keys", json={"name": "mine"}), 403, "FORBIDDEN")
    assert api.counts() == before


def test_an_auditor_key_reads_but_cannot_write(api: Api, acme: Seeded) -> None:
    owner = api.client(acme.token)
    jane = owner.post("/v1/contacts", json=JANE).json()
    auditor = api.client(api.issue_key(acme.slug, role=Role.AUDITOR).token)

    assert auditor.get(f"/v1/contacts/{jane['id']}").json()["email"] == JANE["email"]
    assert auditor.get("/v1/contacts").status_code == 200
    assert auditor.get(f"/v1/contacts/{jane['id']}/consent").status_code == 200
    assert auditor.get("/v1/suppressions").status_code == 200
    decision = auditor.post(
        "/v1/decisions", json={"contact": jane["id"], "topic": "offers", "channel": "email"}
    )
    assert decision.status_code == 200, decision.text

    before = api.counts()
    writes = [
        auditor.post("/v1/contacts", json={"email": "other@example.com"}),
        auditor.put(f"/v1/contacts/{jane['id']}", json=JANE | {"name": "Changed"}),
        auditor.delete(f"/v1/contacts/{jane['id']}"),
        auditor.post(
            "/v1/consent",
            json={
                "contact": jane["id"],
                "topic": "offers",
                "channel": "email",
                "action": "withdrawn",
                "evidence": {"method": "api"},
            },
        ),
        auditor.post("/v1/suppressions", json={"address": JANE["email"], "channels": ["email"]}),
        auditor.put("/v1/profile", json={"legal_name": "Taken Over Ltd", "country": "GB"}),
    ]
    for response in writes:
        api.problem(response, 403, "FORBIDDEN")
    assert api.counts() == before
    assert owner.get(f"/v1/contacts/{jane['id']}").json()["name"] == JANE["name"]


def test_keys_issued_over_the_api_carry_no_more_than_asked(api: Api, acme: Seeded) -> None:
    admin = api.client(acme.token)
    issued = admin.post(
        "/v1/api-keys", json={"name": "reader", "role": "auditor", "scopes": ["contacts:read"]}
    )
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert body["token"].startswith(f"csk_{body['prefix']}_")
    assert body["scopes"] == ["contacts:read"]
    reader = api.client(body["token"])
    assert reader.get("/v1/contacts").status_code == 200
    api.problem(reader.get("/v1/suppressions"), 403, "FORBIDDEN")

    # An auditor key cannot be widened to write, whatever it asks for.
    widened = admin.post(
        "/v1/api-keys", json={"name": "sneaky", "role": "auditor", "scopes": ["contacts:write"]}
    ).json()
    assert "contacts:write" not in widened["scopes"]
    api.problem(
        api.client(widened["token"]).post("/v1/contacts", json={"email": "x@example.com"}),
        403,
        "FORBIDDEN",
    )
    api.problem(
        admin.post("/v1/api-keys", json={"name": "root", "role": "platform_operator"}),
        403,
        "FORBIDDEN",
    )

    listed = admin.get("/v1/api-keys").json()
    assert {body["prefix"], acme.prefix} <= {k["prefix"] for k in listed}
    assert all(k["token"] is None for k in listed)  # the secret is shown once only
    assert all("secret" not in name for k in listed for name in k)


def test_a_key_asked_for_with_no_scopes_gets_none(api: Api, acme: Seeded) -> None:
    admin = api.client(acme.token)
    issued = admin.post("/v1/api-keys", json={"name": "nothing", "scopes": []})
    if issued.status_code == 422:  # refusing the request is as good as an empty key
        return
    assert issued.status_code == 201, issued.text
    assert issued.json()["scopes"] == []
    client = api.client(issued.json()["token"])
    api.problem(client.post("/v1/contacts", json={"email": "x@example.com"}), 403, "FORBIDDEN")
