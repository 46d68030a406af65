"""API keys and tenants kept by a server process: every change is heard of, from any process.

Two containers on one PostgreSQL database stand for two processes: ``server`` listens for
changes as ``consentry serve`` does, ``other`` (a CLI command, another server) makes them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import event, text

from consentry.bootstrap import Container, bootstrap
from consentry.config import Settings
from consentry.domain.access import Principal, Role, Unauthenticated
from consentry.domain.errors import TenantNotFound, TopicNotFound
from consentry.domain.ids import new_id
from consentry.domain.model import BusinessProfile, Category, Tenant, TenantStatus, Topic
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.access import (
    IssuedKey,
    authenticate_api_key,
    issue_api_key,
    local_operator,
    revoke_api_key,
)
from consentry.services.clock import utcnow
from consentry.services.tenancy import create_tenant, update_profile
from consentry.services.tenants_ref import find_tenant

DEADLINE = 5.0


@pytest.fixture
def containers(pg_url: str, tmp_path: Path) -> Iterator[tuple[Container, Container]]:
    settings = Settings(data_dir=tmp_path / "data", database_url=pg_url)
    server = bootstrap(settings, create_keys=True)
    other = bootstrap(settings)
    server.refs.start(server.engine.url)
    try:
        assert server.refs.wait_listening(DEADLINE), "the listener never connected"
        yield server, other
    finally:
        other.close()
        server.close()


def _tenant(c: Container) -> str:
    slug = f"t-{uuid.uuid4().hex[:10]}"
    create_tenant(
        c.uow(),
        slug=slug,
        name="Cached Ltd",
        profile=BusinessProfile(legal_name="Cached Ltd", country="GB"),
    )
    return slug


def _tenant_with_key(c: Container) -> tuple[uuid.UUID, IssuedKey]:
    """A new tenant and an owner key for it, made through ``c``."""
    slug = _tenant(c)
    with c.uow() as uow:
        tenant_id = find_tenant(uow, slug).id
    issued = issue_api_key(
        c.uow(), local_operator(), tenant_slug=slug, name="k", role=Role.TENANT_OWNER
    )
    return tenant_id, issued


def _eventually(check: Callable[[], bool]) -> float:
    """Seconds until ``check`` held; fails after the deadline."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > DEADLINE:
            pytest.fail("the change was not seen before the deadline")
        time.sleep(0.005)
    return time.monotonic() - start


def _statements(c: Container) -> list[str]:
    seen: list[str] = []
    event.listen(c.engine, "before_cursor_execute", lambda *a: seen.append(a[2]))
    return seen


def _authenticate(server: Container, token: str, *, kept: bool) -> Principal:
    """As a request does: with the keys the process keeps (``kept``), or through the unit of
    work alone."""
    return authenticate_api_key(server.uow(), token, kept=server.kept_keys() if kept else None)


@pytest.mark.parametrize("kept", [False, True], ids=["through the unit of work", "kept keys"])
def test_a_key_revoked_in_another_process_stops_working_there(
    containers: tuple[Container, Container], kept: bool
) -> None:
    server, other = containers
    tenant_id, issued = _tenant_with_key(other)
    # The first use records when the key was last used and reads it anew; then it is kept.
    _authenticate(server, issued.token, kept=kept)
    _authenticate(server, issued.token, kept=kept)
    seen = _statements(server)
    assert _authenticate(server, issued.token, kept=kept).id == issued.record.id
    assert not any("api_keys" in s for s in seen), "a kept key is not read again"

    revoke_api_key(other.uow(), local_operator(), tenant_id, issued.record.prefix)

    def refused() -> bool:
        try:
            _authenticate(server, issued.token, kept=kept)
        except Unauthenticated:
            return True
        return False

    assert _eventually(refused) < 1.0


@pytest.mark.parametrize("kept", [False, True], ids=["through the unit of work", "kept keys"])
def test_the_process_that_revokes_a_key_refuses_it_at_once(
    containers: tuple[Container, Container], kept: bool
) -> None:
    server, other = containers
    tenant_id, issued = _tenant_with_key(other)
    _authenticate(server, issued.token, kept=kept)
    _authenticate(server, issued.token, kept=kept)
    revoke_api_key(server.uow(), local_operator(), tenant_id, issued.record.prefix)
    with pytest.raises(Unauthenticated, match="revoked"):
        _authenticate(server, issued.token, kept=kept)


def test_a_kept_key_is_checked_without_a_connection_and_its_secret_still_counts(
    containers: tuple[Container, Container],
) -> None:
    server, other = containers
    _, issued = _tenant_with_key(other)
    _authenticate(server, issued.token, kept=True)  # records the use, drops the kept copy
    _authenticate(server, issued.token, kept=True)  # reads it anew and keeps it
    checkouts: list[object] = []
    event.listen(server.engine, "checkout", lambda *a: checkouts.append(a))
    assert _authenticate(server, issued.token, kept=True).id == issued.record.id
    assert checkouts == []
    forged = issued.token[: issued.token.rindex("_") + 1] + "not-the-secret"
    with pytest.raises(Unauthenticated, match="unknown"):
        _authenticate(server, forged, kept=True)
    assert checkouts == []


def test_nothing_is_kept_by_a_process_that_does_not_listen(pg_url: str, tmp_path: Path) -> None:
    c = bootstrap(Settings(data_dir=tmp_path / "data", database_url=pg_url), create_keys=True)
    try:
        _, issued = _tenant_with_key(c)
        for _ in range(3):
            _authenticate(c, issued.token, kept=True)
        assert c.kept_keys().api_key(issued.record.prefix) is None
    finally:
        c.close()


def test_a_profile_changed_elsewhere_is_read_anew(
    containers: tuple[Container, Container],
) -> None:
    server, other = containers
    slug = _tenant(other)
    with server.uow() as uow:
        assert find_tenant(uow, slug).profile.legal_name == "Cached Ltd"
    update_profile(other.uow(), slug, BusinessProfile(legal_name="Renamed Ltd", country="GB"))

    def renamed() -> bool:
        with server.uow() as uow:
            return find_tenant(uow, slug).profile.legal_name == "Renamed Ltd"

    _eventually(renamed)


def test_nothing_is_kept_while_the_listener_is_away(
    containers: tuple[Container, Container], pg_url: str
) -> None:
    """A change made while the listener's connection is down is never hidden by the cache:
    nothing is kept until it is back, and what was kept before is forgotten."""
    server, other = containers
    slug = _tenant(other)
    with server.uow() as uow:
        find_tenant(uow, slug)
    with other.engine.connect() as conn:
        conn.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN consentry_refs%' AND pid <> pg_backend_pid()"
            )
        )
        conn.commit()
    _eventually(lambda: not server.refs.listening)
    # A change that sends no notification at all (a direct SQL edit) is still seen.
    with other.engine.begin() as conn:
        conn.execute(
            text("UPDATE tenants SET legal_name = 'Edited Ltd' WHERE slug = :s"), {"s": slug}
        )
    with server.uow() as uow:
        assert find_tenant(uow, slug).profile.legal_name == "Edited Ltd"
    assert server.refs.wait_listening(DEADLINE + 2), "the listener did not reconnect"


def test_a_tenant_read_in_a_transaction_that_does_not_commit_is_not_kept(
    containers: tuple[Container, Container],
) -> None:
    server, _ = containers
    slug = f"t-{uuid.uuid4().hex[:10]}"
    with server.uow() as uow:
        create_tenant_in_open_uow(uow, slug)
        assert find_tenant(uow, slug).slug == slug
        uow.rollback()
    with pytest.raises(TenantNotFound), server.uow() as uow:
        find_tenant(uow, slug)


def create_tenant_in_open_uow(uow: SqlUnitOfWork, slug: str) -> None:
    tenant = Tenant(
        id=new_id(),
        slug=slug,
        name="Phantom",
        profile=BusinessProfile(legal_name="Phantom", country="GB"),
        status=TenantStatus.ACTIVE,
        created_at=utcnow(),
    )
    uow.tenants.add(tenant, uow.keys.new_wrapped_data_key(tenant.id))


def test_a_topic_read_by_id_is_kept_but_not_from_the_transaction_that_made_it(
    containers: tuple[Container, Container],
) -> None:
    """Topics never change once created, so a process keeps those it has read by id, as it
    does by key; a topic read in the transaction that created it may not commit, so not that."""
    server, _ = containers
    slug = _tenant(server)
    with server.uow() as uow:
        tenant_id = find_tenant(uow, slug).id
        made = Topic(
            id=new_id(), tenant_id=tenant_id, key="news", name="News",
            category=Category.MARKETING, created_at=utcnow(),
        )  # fmt: skip
        uow.topics.add(made)
        assert uow.topics.get(tenant_id, made.id) == made  # read, and not kept: rolled back
    with server.uow() as uow, pytest.raises(TopicNotFound):
        uow.topics.get(tenant_id, made.id)
    with server.uow() as uow:
        uow.topics.add(made)
        uow.commit()
    seen = _statements(server)
    with server.uow() as uow:
        assert uow.topics.get(tenant_id, made.id) == made
    read = len(seen)
    assert read > 0
    with server.uow() as uow:
        assert uow.topics.get(tenant_id, made.id) == made
        assert uow.topics.get(tenant_id, made.id) == made
    assert len(seen) == read  # kept: no statement
