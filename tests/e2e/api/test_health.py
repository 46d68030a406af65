"""Liveness, readiness and the published API description."""

from __future__ import annotations

from sqlalchemy import create_engine
from tests.e2e.api.conftest import Api


def test_health_and_readiness_answer_without_credentials(api: Api) -> None:
    client = api.client()
    live = client.get("/healthz")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready"}
    assert ready.headers["x-request-id"]


def test_readiness_reports_unavailable_when_the_database_is_gone(api: Api) -> None:
    api.container.engine.dispose()
    url = api.container.engine.url
    broken = url.set(port=1) if api.backend == "postgresql" else url.set(database="/none/x.db")
    api.container.engine = create_engine(broken)
    response = api.client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}


def test_openapi_and_docs_are_served(api: Api) -> None:
    client = api.client()
    spec = client.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/v1/contacts", "/v1/consent", "/v1/decisions", "/v1/suppressions"):
        assert path in paths
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    assert "/openapi.json" in docs.text
