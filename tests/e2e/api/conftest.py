"""The composed HTTP API served by a real uvicorn on 127.0.0.1, on SQLite and on PostgreSQL.

Each test gets its own server on a free port and httpx clients that talk to it over TCP. On SQLite
each test has a database file of its own (copied from a migrated template); on PostgreSQL the
tests share one migrated database (truncating it costs half a second per test), so every tenant
gets a unique slug and tests compare row counts before and after, never absolute numbers.
"""

from __future__ import annotations

import functools
import shutil
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.access import Role, Scope
from consentry.domain.audit import AuditEntry
from consentry.domain.model import BusinessProfile, Category, PolicyKind
from consentry.persistence.tables import chain_heads, metadata
from consentry.persistence.tenancy import CONSENT_CHAIN
from consentry.services import access, tenancy
from consentry.services.audit_seal import seal_audit
from consentry.web.app import create_app

PROBLEM = "application/problem+json"
DISCLOSURE = "Yes, send me offers by email and text. Reply STOP or click unsubscribe to opt out."
SERVER_START_TIMEOUT = 10.0


@dataclass(frozen=True)
class Seeded:
    """A tenant created through the services, with an owner API key (every scope)."""

    id: uuid.UUID
    slug: str
    name: str
    token: str
    key_id: uuid.UUID
    prefix: str
    disclosure_id: uuid.UUID

    @property
    def actor(self) -> str:
        return f"api_key:{self.key_id}"


@dataclass
class Api:
    """One running server and the container behind it."""

    container: Container
    base_url: str
    backend: str
    _clients: list[httpx.Client] = field(default_factory=list)

    # --- clients -------------------------------------------------------------------------
    def client(
        self,
        token: str | None = None,
        *,
        tenant: uuid.UUID | str | None = None,
        cookies: dict[str, str] | None = None,
    ) -> httpx.Client:
        headers: dict[str, str] = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if tenant is not None:
            headers["Consentry-Tenant"] = str(tenant)
        client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            cookies=cookies,
            timeout=30.0,
            verify=_tls_context(),
        )
        self._clients.append(client)
        return client

    def close_clients(self) -> None:
        for client in self._clients:
            client.close()

    # --- seeding through the services ----------------------------------------------------
    def tenant(self, label: str, *, country: str = "GB") -> Seeded:
        """A tenant with a marketing topic ``offers``, a service topic ``reminders``, a
        published consent disclosure and an owner key; its slug is ``label`` made unique."""
        slug = unique(label)
        name = f"{label.title()} Ltd"
        created = tenancy.create_tenant(
            self.container.uow(),
            slug=slug,
            name=name,
            profile=BusinessProfile(legal_name=name, country=country),
        )
        for key, category in (("offers", Category.MARKETING), ("reminders", Category.SERVICE)):
            tenancy.create_topic(
                self.container.uow(), slug, key=key, name=key.title(), category=category
            )
        draft = tenancy.draft_policy(
            self.container.uow(),
            slug,
            kind=PolicyKind.CONSENT_DISCLOSURE,
            title="Offers consent",
            body=DISCLOSURE,
        )
        tenancy.publish_policy(self.container.uow(), slug, draft.id)
        issued = self.issue_key(slug, role=Role.TENANT_OWNER)
        return Seeded(
            created.id,
            slug,
            name,
            issued.token,
            issued.record.id,
            issued.record.prefix,
            draft.id,
        )

    def issue_key(
        self,
        slug: str,
        *,
        role: Role = Role.TENANT_OPERATOR,
        scopes: frozenset[Scope] | None = None,
        name: str = "test key",
    ) -> access.IssuedKey:
        return access.issue_api_key(
            self.container.uow(),
            access.local_operator(),
            tenant_slug=slug,
            name=name,
            role=role,
            scopes=scopes,
        )

    # --- reading the database directly ---------------------------------------------------
    def counts(self) -> dict[str, int]:
        """Rows per table: equal before and after a request means it wrote nothing."""
        with self.container.engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in metadata.sorted_tables
            }

    def audit(self, tenant_id: uuid.UUID) -> list[AuditEntry]:
        """The tenant's audit log, newest first, sealed to the end like every reader sees it."""
        seal_audit(self.container.uow(), tenant_id)
        with self.container.uow() as uow:
            return uow.audit.entries(tenant_id, limit=10_000)

    # --- assertions ----------------------------------------------------------------------
    @staticmethod
    def problem(
        response: httpx.Response, status: int, code: str, *, field: str | None = None
    ) -> dict[str, Any]:
        """Assert an RFC 9457 problem with a stable code; return its body."""
        assert response.status_code == status, (response.status_code, response.text)
        assert response.headers["content-type"].startswith(PROBLEM), response.headers
        body: dict[str, Any] = response.json()
        assert body["code"] == code, body
        assert body["status"] == status, body
        assert body["detail"], body
        if field is not None:
            assert body.get("field") == field, body
        return body


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # The servers speak plain HTTP; one shared context spares each client loading the CA bundle.
    return ssl.create_default_context()


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


class Reaper:
    """Stops servers in the background: uvicorn takes ~0.2 s to wind down, and waiting for it
    after every test would cost a quarter of the suite. ``join_all`` runs before the database
    the servers used goes away."""

    def __init__(self) -> None:
        self._servers: list[threading.Thread] = []
        self._stoppers: list[threading.Thread] = []

    def started(self, thread: threading.Thread) -> None:
        self._servers.append(thread)

    def stop(self, server: uvicorn.Server, thread: threading.Thread, container: Container) -> None:
        server.should_exit = True

        def finish() -> None:
            thread.join(timeout=SERVER_START_TIMEOUT)
            container.close()

        stopper = threading.Thread(target=finish, name="uvicorn-e2e-stop", daemon=True)
        stopper.start()
        self._stoppers.append(stopper)

    def join_all(self) -> None:
        for stopper in self._stoppers:
            stopper.join(timeout=SERVER_START_TIMEOUT)
        stuck = [t.name for t in self._servers if t.is_alive()]
        assert not stuck, f"servers did not stop: {stuck}"


@pytest.fixture(scope="session")
def _sqlite_reaper() -> Iterator[Reaper]:
    reaper = Reaper()
    yield reaper
    reaper.join_all()


@pytest.fixture(scope="session")
def _pg_reaper(pg_url: str) -> Iterator[Reaper]:
    """Torn down before ``pg_url`` drops the database, because it depends on it."""
    reaper = Reaper()
    yield reaper
    reaper.join_all()


@dataclass(frozen=True)
class Database:
    backend: str
    url: str | None  # None: the SQLite file in the data directory
    reaper: Reaper


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    if request.param == "sqlite":
        template: Path = request.getfixturevalue("sqlite_template")
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        shutil.copyfile(template, data_dir / "consentry.db")
        return Database("sqlite", None, request.getfixturevalue("_sqlite_reaper"))
    url: str = request.getfixturevalue("pg_url")
    return Database("postgresql", url, request.getfixturevalue("_pg_reaper"))


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    # Port 0: the kernel picks a free port, read back once the server listens. The API has no
    # websockets, so none are loaded.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-e2e", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            thread.join(timeout=SERVER_START_TIMEOUT)
            pytest.fail("uvicorn did not start")
        time.sleep(0.01)
    port = int(server.servers[0].sockets[0].getsockname()[1])
    return server, thread, port


@pytest.fixture
def serve(database: Database, tmp_path: Path) -> Iterator[Callable[..., Api]]:
    """Start the app with settings overrides (rate limits, body size); one server per call."""
    started: list[tuple[uvicorn.Server, threading.Thread, Api]] = []

    def start(**overrides: Any) -> Api:
        settings = Settings(data_dir=tmp_path / "data", database_url=database.url, **overrides)
        container = bootstrap(settings, create_keys=True)
        server, thread, port = _serve(create_app(settings, container))
        database.reaper.started(thread)
        api = Api(container, f"http://127.0.0.1:{port}", database.backend)
        started.append((server, thread, api))
        return api

    yield start
    for server, thread, api in started:
        api.close_clients()
        database.reaper.stop(server, thread, api.container)


@pytest.fixture
def api(serve: Callable[..., Api]) -> Api:
    """The app with default settings."""
    return serve()


@pytest.fixture
def acme(api: Api) -> Seeded:
    return api.tenant("acme")


@pytest.fixture
def client(api: Api, acme: Seeded) -> httpx.Client:
    """A client carrying acme's owner key."""
    return api.client(acme.token)


@contextmanager
def chain_held(api: Api, tenant_id: uuid.UUID) -> Iterator[None]:
    """Another transaction holds the tenant's ledger chain, as an import does batch by batch,
    until the block ends (PostgreSQL)."""
    with api.container.engine.connect() as holder, holder.begin():
        holder.execute(
            select(chain_heads.c.seq)
            .where(chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant_id)
            .with_for_update()
        ).one()
        yield
