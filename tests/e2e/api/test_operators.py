"""Platform operators: sign in, see every tenant, create tenants, act inside a named tenant."""

from __future__ import annotations

import uuid

import httpx
from tests.e2e.api.conftest import Api, Seeded, unique

from consentry.domain.access import Role
from consentry.services import access

PASSWORD = "correct horse battery staple"
NEW_TENANT = {
    "name": "Initech",
    "profile": {"legal_name": "Initech Inc", "country": "us"},
}


def sign_in(api: Api) -> tuple[str, httpx.Response]:
    email = f"{unique('ops')}@consentry.example"
    access.create_user(
        api.container.uow(),
        email=email,
        password=PASSWORD,
        role=Role.PLATFORM_OPERATOR,
        tenant_slug=None,
    )
    response = api.client().post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return email, response


def test_sign_in_returns_a_token_and_sets_a_strict_session_cookie(api: Api) -> None:
    _, response = sign_in(api)
    body = response.json()
    assert body["role"] == "platform_operator"
    assert len(body["token"]) >= 40
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"consentry_session={body['token']}")
    lowered = cookie.lower()
    assert "httponly" in lowered
    assert "secure" in lowered
    assert "samesite=strict" in lowered


def test_an_operator_sees_and_creates_tenants(api: Api, acme: Seeded) -> None:
    globex = api.tenant("globex")
    _, response = sign_in(api)
    operator = api.client(cookies={"consentry_session": response.json()["token"]})

    listed = operator.get("/v1/tenants")
    assert listed.status_code == 200, listed.text
    ids = {t["id"] for t in listed.json()}
    assert {str(acme.id), str(globex.id)} <= ids

    slug = unique("initech")
    created = operator.post("/v1/tenants", json=NEW_TENANT | {"slug": slug})
    assert created.status_code == 201, created.text
    tenant = created.json()
    assert tenant["slug"] == slug
    assert tenant["status"] == "active"
    assert tenant["profile"]["country"] == "US"
    assert tenant["id"] in {t["id"] for t in operator.get("/v1/tenants").json()}
    api.problem(
        operator.post("/v1/tenants", json=NEW_TENANT | {"slug": slug}), 409, "ALREADY_EXISTS"
    )

    # The same session token also works as a bearer token; a made-up one does not.
    bearer = api.client(response.json()["token"]).get("/v1/tenants")
    assert bearer.status_code == 200, bearer.text
    api.problem(api.client("made-up-session").get("/v1/tenants"), 401, "UNAUTHENTICATED")


def test_an_operator_names_the_tenant_it_acts_in(api: Api, acme: Seeded) -> None:
    owner = api.client(acme.token)
    jane = owner.post("/v1/contacts", json={"email": "jane@example.com"}).json()
    _, response = sign_in(api)
    cookies = {"consentry_session": response.json()["token"]}

    nowhere = api.client(cookies=cookies)
    api.problem(nowhere.get("/v1/profile"), 404, "TENANT_NOT_FOUND")
    api.problem(nowhere.get(f"/v1/contacts/{jane['id']}"), 404, "TENANT_NOT_FOUND")
    api.problem(
        api.client(cookies=cookies, tenant=uuid.uuid4()).get("/v1/profile"),
        404,
        "TENANT_NOT_FOUND",
    )
    api.problem(
        api.client(cookies=cookies, tenant="acme").get("/v1/profile"), 422, "VALIDATION_FAILED"
    )

    inside = api.client(cookies=cookies, tenant=acme.id)
    profile = inside.get("/v1/profile")
    assert profile.status_code == 200, profile.text
    assert profile.json()["id"] == str(acme.id)
    assert inside.get(f"/v1/contacts/{jane['id']}").json()["email"] == "jane@example.com"
    [read] = [e for e in api.audit(acme.id) if e.action == "contact.read"]
    assert read.actor.startswith("user:")
    assert read.object_id == jane["id"]
    topic = inside.post("/v1/topics", json={"key": "news", "name": "News", "category": "service"})
    assert topic.status_code == 201, topic.text
    assert "news" in {t["key"] for t in owner.get("/v1/topics").json()}


def test_a_wrong_password_reads_like_an_unknown_email(api: Api) -> None:
    email, _ = sign_in(api)
    client = api.client()
    wrong = client.post("/v1/auth/login", json={"email": email, "password": "not the password"})
    unknown = client.post(
        "/v1/auth/login", json={"email": "nobody@consentry.example", "password": PASSWORD}
    )
    wrong_body = api.problem(wrong, 401, "UNAUTHENTICATED")
    unknown_body = api.problem(unknown, 401, "UNAUTHENTICATED")
    assert wrong_body == unknown_body
    assert "set-cookie" not in wrong.headers
    assert "set-cookie" not in unknown.headers
    api.problem(
        api.client(cookies={"consentry_session": "forged"}).get("/v1/tenants"),
        401,
        "UNAUTHENTICATED",
    )


def test_tenant_keys_cannot_use_platform_routes(api: Api, acme: Seeded) -> None:
    client = api.client(acme.token)
    before = api.counts()
    api.problem(client.get("/v1/tenants"), 403, "FORBIDDEN")
    api.problem(
        client.post("/v1/tenants", json=NEW_TENANT | {"slug": unique("sneaky")}), 403, "FORBIDDEN"
    )
    assert api.counts() == before
