"""Rate limits: a burst, then 429 with Retry-After; sign-in is limited per address."""

from __future__ import annotations

from collections.abc import Callable

from tests.e2e.api.conftest import Api

TIGHT = {
    "api_rate_per_second": 1,
    "api_rate_burst": 3,
    "auth_rate_per_second": 0.1,
    "auth_rate_burst": 2,
}


def test_the_fourth_quick_request_is_rate_limited(serve: Callable[..., Api]) -> None:
    api = serve(**TIGHT)
    acme = api.tenant("acme")
    client = api.client(acme.token)
    statuses = [client.get("/v1/topics").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = client.get("/v1/topics")
    api.problem(limited, 429, "RATE_LIMITED")
    assert 1 <= int(limited.headers["retry-after"]) <= 2

    # Each key has its own bucket; health checks are never limited.
    other = api.client(api.issue_key(acme.slug, name="other").token)
    assert other.get("/v1/topics").status_code == 200
    assert all(client.get("/healthz").status_code == 200 for _ in range(5))


def test_a_limited_write_writes_nothing(serve: Callable[..., Api]) -> None:
    api = serve(**TIGHT)
    client = api.client(api.tenant("acme").token)
    for _ in range(3):
        client.get("/v1/profile")
    before = api.counts()
    api.problem(
        client.post("/v1/contacts", json={"email": "jane@example.com"}), 429, "RATE_LIMITED"
    )
    assert api.counts() == before


def test_sign_in_is_limited_per_address(serve: Callable[..., Api]) -> None:
    api = serve(**TIGHT)
    attempt = {"email": "nobody@example.com", "password": "wrong password!"}
    client = api.client()
    for _ in range(2):
        api.problem(client.post("/v1/auth/login", json=attempt), 401, "UNAUTHENTICATED")
    limited = api.client().post("/v1/auth/login", json=attempt | {"email": "other@example.com"})
    api.problem(limited, 429, "RATE_LIMITED")
    assert int(limited.headers["retry-after"]) >= 5  # 0.1 attempts per second
    # Ordinary API calls from the same address keep their own bucket.
    assert api.client().get("/v1/profile").status_code == 401
