"""The consent ledger is append-only and hash-chained, and tampering is caught (guarantee 3)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.exc import DBAPIError
from tests.integration.helpers import NOW, UowFactory, disclosure, grant, person, shop

from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentState,
    ConsentStatus,
    Evidence,
)
from consentry.domain.model import Channel, Contact
from consentry.persistence.guards import CONSENT_EVENT_FROZEN, append_only_ddl
from consentry.persistence.tables import consent_states, contacts, policy_documents
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.access import local_operator
from consentry.services.audit import RequestContext, record_access
from consentry.services.consent import (
    ConsentRequest,
    Recorded,
    append_and_fold,
    event_about,
    record_consent,
)
from consentry.services.ledger import NO_TENANT, verify_ledger


def _three_events(new_uow: UowFactory) -> str:
    slug = shop(new_uow)
    person(new_uow, slug)
    evidence = disclosure(new_uow, slug)
    grant(new_uow, slug, "ana@example.com", evidence)
    grant(new_uow, slug, "ana@example.com", evidence, channel=Channel.SMS)
    grant(new_uow, slug, "ana@example.com", evidence, action=ConsentAction.WITHDRAWN)
    return slug


def _without_guards(engine: Engine, statement: str) -> None:
    """Run ``statement`` as someone with direct write access who switched the triggers off."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER consent_events_no_update"))
            conn.execute(text("DROP TRIGGER consent_events_no_delete"))
            conn.execute(text(statement))
            for ddl in append_only_ddl("sqlite", "consent_events", CONSENT_EVENT_FROZEN):
                conn.execute(text(ddl))
        else:
            conn.execute(text("ALTER TABLE consent_events DISABLE TRIGGER consent_events_guard"))
            conn.execute(text(statement))
            conn.execute(text("ALTER TABLE consent_events ENABLE TRIGGER consent_events_guard"))


def test_an_untouched_chain_verifies(new_uow: UowFactory) -> None:
    slug = _three_events(new_uow)
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact
    assert report.verified == report.head_seq == 3


def test_a_changed_field_is_caught_at_its_link(new_uow: UowFactory, engine: Engine) -> None:
    slug = _three_events(new_uow)
    _without_guards(engine, "UPDATE consent_events SET action = 'granted' WHERE seq = 3")
    (report,) = verify_ledger(new_uow(), slug)
    assert report.broken is not None
    assert report.broken.seq == 3
    assert "hash" in report.broken.problem
    assert report.verified == 2


def test_a_removed_last_event_is_caught_by_the_head(new_uow: UowFactory, engine: Engine) -> None:
    slug = _three_events(new_uow)
    _without_guards(engine, "DELETE FROM consent_states")
    _without_guards(engine, "DELETE FROM consent_events WHERE seq = 3")
    (report,) = verify_ledger(new_uow(), slug)
    assert report.broken is not None
    assert report.broken.seq == 3


def test_a_removed_middle_event_is_caught(new_uow: UowFactory, engine: Engine) -> None:
    slug = _three_events(new_uow)
    _without_guards(engine, "DELETE FROM consent_states")
    _without_guards(engine, "DELETE FROM consent_events WHERE seq = 2")
    (report,) = verify_ledger(new_uow(), slug)
    assert report.broken is not None
    assert report.broken.seq == 3  # the link after the gap


@pytest.mark.parametrize(
    "statement",
    ["UPDATE consent_events SET action = 'granted'", "DELETE FROM consent_events"],
)
def test_the_database_refuses_to_rewrite_history(
    new_uow: UowFactory, engine: Engine, statement: str
) -> None:
    _three_events(new_uow)
    with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
        conn.execute(text(statement))


def test_scrubbing_personal_data_keeps_the_chain_valid(new_uow: UowFactory, engine: Engine) -> None:
    slug = _three_events(new_uow)
    # What erasure will do: drop the sealed evidence, keep the digests the chain covers.
    with engine.begin() as conn:
        conn.execute(
            text(
                "UPDATE consent_events SET ip_enc = NULL, user_agent_enc = NULL, "
                "source_enc = NULL, note_enc = NULL"
            )
        )
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact
    assert report.verified == 3


def test_concurrent_appends_make_one_unbroken_chain(new_uow: UowFactory) -> None:
    slug = shop(new_uow)
    person(new_uow, slug)
    evidence = disclosure(new_uow, slug)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(5):
                grant(new_uow, slug, "ana@example.com", evidence)
        except BaseException as exc:  # noqa: BLE001  (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact
    assert report.verified == 20


@pytest.mark.parametrize("commit", [False, True], ids=["then-commit", "committing"])
@pytest.mark.parametrize("read", ["before", "not"])
def test_a_state_that_moved_after_it_was_read_is_folded_again(
    new_uow: UowFactory, read: str, commit: bool
) -> None:
    """An append folds into the state it was given only if no other append moved it since;
    otherwise into the state as it stands once the chain is held. An append that commits
    with it (PostgreSQL) is refused by the database then, and made as one that does not."""
    slug = shop(new_uow)
    person(new_uow, slug)
    evidence = disclosure(new_uow, slug)
    first = grant(new_uow, slug, "ana@example.com", evidence)
    key = (first.state.tenant_id, first.state.contact_id, first.state.topic_id, Channel.EMAIL)
    with new_uow() as uow:
        stale = uow.consent_states.get(*key)
    assert stale is not None
    request = ConsentRequest(
        contact="ana@example.com",
        topic="promotions",
        channel=Channel.EMAIL,
        action=ConsentAction.GRANTED,
        basis=ConsentBasis.EXPRESS,
        evidence=evidence,
    )
    later = record_consent(new_uow(), slug, request, now=NOW + timedelta(hours=1))
    assert later.state.granted_at != stale.granted_at

    with new_uow() as uow:
        event = event_about(
            stale, ConsentAction.WITHDRAWN, stale.basis, evidence, NOW + timedelta(hours=2)
        )
        event, state = append_and_fold(
            uow, event, stale if read == "before" else None, commit=commit
        )
        uow.commit()
    assert state.status is ConsentStatus.WITHDRAWN
    assert state.granted_at == later.state.granted_at  # kept from the newer grant
    assert state.seq == later.event.seq + 1 == event.seq
    with new_uow() as uow:
        assert uow.consent_states.get(*key) == state
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact
    assert not report.projection_mismatches


_CONTEXT = RequestContext(local_operator(), "198.51.100.4", "req-ledger")


def _granted(new_uow: UowFactory) -> tuple[str, Contact, Evidence, Recorded]:
    """A shop whose Ana granted promotions by email."""
    slug = shop(new_uow)
    ana = person(new_uow, slug)
    evidence = disclosure(new_uow, slug)
    return slug, ana, evidence, grant(new_uow, slug, "ana@example.com", evidence)


def _read_then_withdrawal(
    uow: SqlUnitOfWork, recorded: Recorded, evidence: Evidence, **extra: Any
) -> ConsentEvent:
    """Record, in ``uow``, an access to the contact ``recorded`` is about (a write before the
    append), and return a withdrawal of its consent, not yet appended."""
    record_access(
        uow, _CONTEXT, tenant_id=recorded.state.tenant_id, action="consent.read",
        object_type="contact", object_id=str(recorded.state.contact_id),
    )  # fmt: skip
    state = recorded.state
    return event_about(state, ConsentAction.WITHDRAWN, state.basis, evidence, NOW, **extra)


def _stands(
    new_uow: UowFactory, slug: str, state: ConsentState, *, accesses: list[str], events: int
) -> None:
    """What is committed: ``state`` as the contact point's state, the tenant's access entries
    (newest first), and an intact ledger of ``events`` events."""
    with new_uow() as uow:
        key = (state.tenant_id, state.contact_id, state.topic_id, state.channel)
        assert uow.consent_states.get(*key) == state
        assert [e.action for e in uow.audit.entries(state.tenant_id)] == accesses
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact
    assert report.verified == events


def test_an_append_that_commits_takes_the_transactions_other_writes_with_it(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug, ana, evidence, first = _granted(new_uow)
    with new_uow() as uow:
        event = _read_then_withdrawal(uow, first, evidence)
        event, state = append_and_fold(uow, event, first.state, commit=True)
        if engine.dialect.name == "postgresql":  # committed in the append's round trip
            with engine.connect() as other:
                seen = other.execute(
                    select(consent_states.c.status).where(consent_states.c.contact_id == ana.id)
                ).scalar_one()
            assert seen == ConsentStatus.WITHDRAWN.value
        uow.commit()
    assert state.status is ConsentStatus.WITHDRAWN
    _stands(new_uow, slug, state, accesses=["consent.read"], events=2)


def test_an_append_that_fails_commits_nothing_of_its_transaction(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug, _ana, evidence, first = _granted(new_uow)
    with new_uow() as uow:
        # The first event's id again: the insert breaks its key.
        again = _read_then_withdrawal(uow, first, evidence, event_id=first.event.id)
        with pytest.raises(DBAPIError):
            append_and_fold(uow, again, first.state, commit=True)
    _stands(new_uow, slug, first.state, accesses=[], events=1)


def test_a_projection_edited_behind_the_ledger_is_caught(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug = _three_events(new_uow)
    with engine.begin() as conn:  # no trigger guards the projection; the fold does
        conn.execute(text("UPDATE consent_states SET status = 'active' WHERE status = 'withdrawn'"))
    (report,) = verify_ledger(new_uow(), slug)
    assert report.broken is None
    assert not report.intact
    assert len(report.projection_mismatches) == 1
    assert "active" in report.projection_mismatches[0]


def test_events_naming_another_tenants_rows_are_reported(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug = _three_events(new_uow)
    other = shop(new_uow, "other")
    (report,) = verify_ledger(new_uow(), slug)
    assert report.dangling_references == ()
    with new_uow() as uow:
        other_id = uow.tenants.by_slug(other).id
    with engine.begin() as conn:  # a contact and a disclosure moved under the ledger
        conn.execute(update(contacts).values(tenant_id=other_id))
        conn.execute(
            update(policy_documents)
            .where(policy_documents.c.tenant_id != other_id)
            .values(tenant_id=other_id)
        )
    (report,) = verify_ledger(new_uow(), slug)
    assert report.broken is None
    assert not report.projection_mismatches
    assert not report.intact
    problems = report.dangling_references
    assert [p.split(" names ")[1].split(" ")[0] for p in problems] == ["contact"] * 3 + [
        "disclosure"
    ] * 3
    assert [p.split(" ")[3] for p in problems] == ["1", "2", "3"] * 2


def test_states_of_a_tenant_that_does_not_exist_are_reported(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug = _three_events(new_uow)
    ghost = uuid.uuid4()
    with engine.begin() as conn:
        row = conn.execute(select(consent_states)).first()
        assert row is not None
        copy = {**row._asdict(), "tenant_id": ghost, "contact_id": uuid.uuid4()}
        conn.execute(insert(consent_states).values(copy))
    (report,) = verify_ledger(new_uow(), slug)  # one tenant's verification cannot see them
    assert report.intact
    *tenants, orphans = verify_ledger(new_uow())
    assert all(r.intact for r in tenants)
    assert orphans.tenant_id == NO_TENANT
    assert not orphans.intact
    assert orphans.dangling_references == (
        f"1 consent states name tenant {ghost}, which does not exist",
    )


def test_the_audit_chain_is_verified_with_the_ledger(new_uow: UowFactory, engine: Engine) -> None:
    slug = _three_events(new_uow)
    context = RequestContext(local_operator(), "198.51.100.4", "req-1")
    with new_uow() as uow:
        tenant_id = uow.tenants.by_slug(slug).id
        for action in ("contact.read", "consent.read", "decision.read"):
            record_access(
                uow,
                context,
                tenant_id=tenant_id,
                action=action,
                object_type="contact",
                object_id="c1",
            )
        uow.commit()
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact
    assert report.audit_verified == 3
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(text("DROP TRIGGER audit_log_no_update"))
        else:
            conn.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_guard"))
        conn.execute(text("UPDATE audit_log SET action = 'contact.list' WHERE seq = 2"))
    (report,) = verify_ledger(new_uow(), slug)
    assert report.audit_broken is not None
    assert report.audit_broken.seq == 2
    assert not report.intact
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_guard"))
