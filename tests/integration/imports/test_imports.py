"""Imports with attestation on SQLite and PostgreSQL: the report, atomicity, dry runs, skips."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from tests.integration.helpers import UowFactory, disclosure, grant, person, shop
from tests.integration.imports.helpers import attestation, opener, run, scan, spec

from consentry.domain.consent import ConsentAction, ConsentMethod, Evidence
from consentry.domain.imports import Acquisition, ImportListRefused, ImportStatus, Severity
from consentry.domain.model import Category, Channel
from consentry.domain.suppression import SuppressionReason
from consentry.persistence.tables import consent_events, consent_states, contacts, imports
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services import imports as service
from consentry.services.consent import consent_history
from consentry.services.ledger import verify_ledger
from consentry.services.suppressions import add_suppression
from consentry.services.tenancy import create_topic

# A list as a shop's newsletter tool exports it: a byte-order mark, CRLF line ends, columns named
# its own way, an extra column, a quoted name spanning two lines, a formula in a cell, and the
# mistakes people make.
REAL_LOOKING = (
    "\ufeffE-mail Address,Full Name,Signed up at,IP,Favourite colour\r\n"
    "ana.lima@example.com,Ana Lima,2026-03-01T09:30:00Z,203.0.113.9,blue\r\n"
    'ben@example.org,"Ben\r\nOkafor",2026-03-02 10:00,198.51.100.7,red\r\n'
    "not-an-email,Chloe,2026-03-03,203.0.113.10,green\r\n"
    'dev@example.net,=HYPERLINK("http://evil.example"),2026-03-04,203.0.113.11,\r\n'
    "ANA.LIMA@example.com,Ana again,2026-03-05,203.0.113.9,\r\n"
    "elena@example.com,Elena,2027-01-01,203.0.113.12,\r\n"
    "farid@example.com,Farid,2026-03-06,999.1.1.1,\r\n"
    "\r\n"
    "grace@example.com,Grace,2024-06-01,203.0.113.14,\r\n"
    "=cmd|' /C calc'!A0,Mallory,2026-03-07,203.0.113.15,\r\n"
).encode()


def _count(new_uow: UowFactory, table: object) -> int:
    uow = new_uow()
    assert isinstance(uow, SqlUnitOfWork)
    with uow:
        return int(uow.connection.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def _counts(new_uow: UowFactory) -> dict[str, int]:
    return {t.name: _count(new_uow, t) for t in (contacts, consent_events, consent_states)}


@pytest.fixture
def slug(new_uow: UowFactory) -> str:
    return shop(new_uow)


@pytest.fixture
def cites(new_uow: UowFactory, slug: str) -> Evidence:
    return disclosure(new_uow, slug)


def test_a_real_looking_file_with_mistakes_yields_the_right_report(
    new_uow: UowFactory, slug: str, cites: Evidence
) -> None:
    s = spec(attestation(cites.policy_document_id), keep_good_rows=True)
    outcome = run(new_uow, slug, REAL_LOOKING, s)
    issues = [(i.line, i.field, i.code, i.severity) for i in outcome.issues]
    assert issues == [
        (1, "Favourite colour", "EXTRA_COLUMN_IGNORED", Severity.NOTE),
        (5, "email", "INVALID_EMAIL", Severity.ERROR),
        (7, "email", "DUPLICATE_IN_FILE", Severity.SKIPPED),
        (8, "signup_at", "INVALID_VALUE", Severity.ERROR),  # in the future
        (9, "signup_ip", "INVALID_VALUE", Severity.ERROR),
        (11, "signup_at", "SIGNUP_OUTSIDE_PERIOD", Severity.ERROR),
        (12, "email", "INVALID_EMAIL", Severity.ERROR),
    ]
    assert outcome.status is ImportStatus.COMPLETED
    assert outcome.counts.rows == 9
    assert outcome.counts.imported == 3  # Ana, Ben (two-line name), Dev (formula kept as data)
    assert outcome.counts.errors == 5
    assert outcome.counts.skipped == 1
    outcome.close()
    history = consent_history(new_uow(), slug, "ben@example.org")
    (event,) = [h.event for h in history]
    assert event.action is ConsentAction.GRANTED
    assert event.evidence.method is ConsentMethod.IMPORT
    assert event.evidence.source == "https://shop.example/newsletter"
    assert event.evidence.ip_address == "198.51.100.7"
    assert event.evidence.import_batch_id == outcome.record.id  # type: ignore[union-attr]
    assert event.evidence.actor == f"import:{outcome.record.id}"  # type: ignore[union-attr]
    assert event.evidence.disclosure_hash is not None
    assert event.occurred_at.isoformat() == "2026-03-02T10:00:00+00:00"
    dev = person_named(new_uow, slug, "dev@example.net")
    assert dev == '=HYPERLINK("http://evil.example")'
    (report,) = list(verify_ledger(new_uow(), slug))
    assert report.intact, report


def person_named(new_uow: UowFactory, slug: str, email: str) -> str | None:
    from consentry.services.contacts import get_contact

    return get_contact(new_uow(), slug, email).name


SMALL = (
    b"email,name,signup_at\n"
    b"ana@example.com,Ana,2026-03-01\n"
    b"ben@example.org,Ben,2026-03-02\n"
    b"chloe@example.net,Chloe,2026-03-03\n"
)


def test_an_import_with_an_error_is_atomic_and_keeps_only_its_record(
    new_uow: UowFactory, slug: str, cites: Evidence
) -> None:
    before = _counts(new_uow)
    bad = SMALL + b"nobody-at-example.com,Nobody,2026-03-04\n"
    outcome = run(new_uow, slug, bad, spec(attestation(cites.policy_document_id)))
    outcome.close()
    assert outcome.status is ImportStatus.REJECTED
    assert outcome.counts.errors == 1
    assert _counts(new_uow) == before
    assert _count(new_uow, imports) == 1
    with new_uow() as uow:
        assert outcome.record is not None
        stored = uow.imports.get(outcome.record.tenant_id, outcome.record.id)
        assert stored.status is ImportStatus.REJECTED
        assert stored.file_sha256 == hashlib.sha256(bad).hexdigest()
        assert stored.attestation.source == "Newsletter box on the shop's website"
        (issue,) = [i for _, i in uow.imports.issues(stored.tenant_id, stored.id)]
        assert (issue.line, issue.code, issue.value) == (
            5,
            "INVALID_EMAIL",
            "nobody-at-example.com",
        )
    kept = run(new_uow, slug, bad, spec(attestation(cites.policy_document_id), keep_good_rows=True))
    kept.close()
    assert kept.status is ImportStatus.COMPLETED
    assert _counts(new_uow)["contacts"] == before["contacts"] + 3


def test_a_dry_run_writes_nothing_but_reports_what_would_happen(
    new_uow: UowFactory, slug: str, cites: Evidence
) -> None:
    before = _counts(new_uow)
    s = spec(attestation(cites.policy_document_id), dry_run=True)
    outcome = service.preview_import(new_uow, slug, s, scan(SMALL, s), opener(SMALL))
    outcome.close()
    assert outcome.status is ImportStatus.DRY_RUN
    assert outcome.counts.imported == 3
    assert _counts(new_uow) == before
    assert _count(new_uow, imports) == 0
    with new_uow() as uow:
        assert uow.ledger.head(uow.tenants.by_slug(slug).id)[0] == 0


@pytest.mark.parametrize("how", ["bought", "rented", "traded", "appended"])
def test_a_list_that_is_not_the_importers_own_is_refused(
    new_uow: UowFactory, slug: str, cites: Evidence, how: str
) -> None:
    s = spec(attestation(cites.policy_document_id, acquisition=Acquisition(how)))
    with pytest.raises(ImportListRefused):
        service.start_import(new_uow(), slug, s, scan(SMALL, s))
    assert _count(new_uow, imports) == 0


def test_suppressed_and_withdrawn_addresses_are_skipped_never_reactivated(
    new_uow: UowFactory, slug: str, cites: Evidence
) -> None:
    add_suppression(
        new_uow(), slug, address="ben@example.org", channels=[Channel.EMAIL],
        reason=SuppressionReason.COMPLAINT,
    )  # fmt: skip
    person(new_uow, slug, email="chloe@example.net", phone=None)
    grant(new_uow, slug, "chloe@example.net", cites)
    grant(
        new_uow, slug, "chloe@example.net", replace(cites, policy_document_id=None),
        action=ConsentAction.WITHDRAWN,
    )  # fmt: skip
    person(new_uow, slug, email="ana@example.com", phone=None)
    grant(new_uow, slug, "ana@example.com", cites)  # already consented
    outcome = run(new_uow, slug, SMALL, spec(attestation(cites.policy_document_id)))
    skipped = {(i.line, i.code) for i in outcome.issues}
    outcome.close()
    assert outcome.status is ImportStatus.COMPLETED
    assert skipped == {
        (2, "SKIPPED_ALREADY_CONSENTED"),
        (3, "SKIPPED_SUPPRESSED"),
        (4, "SKIPPED_WITHDRAWN"),
    }
    assert outcome.counts.imported == 0
    (chloe,) = [h.event.action for h in consent_history(new_uow(), slug, "chloe@example.net")][1:]
    assert chloe is ConsentAction.WITHDRAWN
    assert all(r.intact for r in verify_ledger(new_uow(), slug))


def test_a_withdrawal_from_all_marketing_is_not_overridden_by_an_import(
    new_uow: UowFactory, slug: str, cites: Evidence
) -> None:
    person(new_uow, slug, email="ana@example.com", phone=None)
    grant(
        new_uow, slug, "ana@example.com", replace(cites, policy_document_id=None),
        topic="all-marketing", action=ConsentAction.WITHDRAWN,
    )  # fmt: skip
    outcome = run(new_uow, slug, SMALL, spec(attestation(cites.policy_document_id)))
    codes = {(i.line, i.code) for i in outcome.issues}
    outcome.close()
    assert (2, "SKIPPED_WITHDRAWN") in codes
    assert outcome.counts.imported == 2


def test_a_confirmed_opt_in_topic_gets_requests_left_pending(
    new_uow: UowFactory, slug: str, cites: Evidence
) -> None:
    create_topic(
        new_uow(), slug, key="newsletter", name="News", category=Category.MARKETING,
        requires_double_opt_in=True,
    )  # fmt: skip
    s = spec(attestation(None, disclosure_text="Yes, email me the newsletter."),
             topic="newsletter")  # fmt: skip
    outcome = run(new_uow, slug, SMALL, s)
    outcome.close()
    assert outcome.confirmation_required
    assert outcome.counts.pending == 3
    (event,) = [h.event for h in consent_history(new_uow(), slug, "ana@example.com")]
    assert event.action is ConsentAction.REQUESTED
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        state = uow.consent_states.for_contact(tenant.id, event.contact_id)[0]
        assert state.status.value == "pending"
        document = uow.policies.get(tenant.id, event.evidence.policy_document_id)  # type: ignore[arg-type]
        assert document.body == "Yes, email me the newsletter."  # the text shown, kept
    assert all(r.intact for r in verify_ledger(new_uow(), slug))


def test_batches_chain_onto_earlier_events_and_a_second_import_of_the_file_changes_nothing(
    new_uow: UowFactory, slug: str, cites: Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentry.services import import_batch

    monkeypatch.setattr(import_batch, "BATCH_ROWS", 2)  # duplicates across batches, too
    person(new_uow, slug)
    grant(new_uow, slug, "ana@example.com", cites, channel=Channel.SMS)
    data = SMALL + b"BEN@example.org,Ben again,2026-03-05\n"
    first = run(new_uow, slug, data, spec(attestation(cites.policy_document_id)))
    first.close()
    assert (first.counts.imported, first.counts.skipped) == (3, 1)
    again = run(new_uow, slug, data, spec(attestation(cites.policy_document_id)))
    codes = [i.code for i in again.issues]
    again.close()
    assert again.counts.imported == 0
    # Rows of another batch are matched through the database: the repeated Ben is already
    # consented from the first import now.
    assert codes == ["SKIPPED_ALREADY_CONSENTED"] * 4
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact, report
    assert report.verified == 4


def test_an_import_that_crashes_is_marked_failed_and_writes_nothing(
    new_uow: UowFactory, slug: str, cites: Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consentry.services import import_batch

    def broken(*_args: object) -> None:
        raise RuntimeError("the database went away")

    before = _counts(new_uow)
    monkeypatch.setattr(import_batch, "write_batch", broken)
    s = spec(attestation(cites.policy_document_id))
    record = service.start_import(new_uow(), slug, s, scan(SMALL, s))
    with pytest.raises(RuntimeError):
        service.run_import(new_uow, slug, record.id, opener(SMALL))
    with new_uow() as uow:
        stored = uow.imports.get(record.tenant_id, record.id)
    assert stored.status is ImportStatus.FAILED
    assert stored.error_code == "IMPORT_FAILED"
    assert _counts(new_uow) == before


def test_an_import_keeping_good_rows_commits_batch_by_batch(
    new_uow: UowFactory, slug: str, cites: Evidence, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each batch commits (the tenant's ledger is locked one batch at a time, not for the whole
    import), so a crash in the second batch keeps the first, and the ledger stays whole."""
    from consentry.services import import_batch

    original = import_batch.write_batch
    calls: list[int] = []

    def second_breaks(run_: import_batch.ImportRun, batch: import_batch.PreparedBatch) -> None:
        calls.append(batch.rows)
        if len(calls) == 2:
            raise RuntimeError("the database went away")
        original(run_, batch)

    monkeypatch.setattr(import_batch, "BATCH_ROWS", 2)
    monkeypatch.setattr(import_batch, "write_batch", second_breaks)
    data = b"email\r\na1@example.com\r\na2@example.com\r\na3@example.com\r\na4@example.com\r\n"
    s = spec(attestation(cites.policy_document_id), keep_good_rows=True)
    record = service.start_import(new_uow(), slug, s, scan(data, s))
    before = _counts(new_uow)
    with pytest.raises(RuntimeError):
        service.run_import(new_uow, slug, record.id, opener(data))

    after = _counts(new_uow)
    assert after["consent_events"] - before["consent_events"] == 2  # the first batch stays
    with new_uow() as uow:
        stored = uow.imports.get(record.tenant_id, record.id)
    assert stored.status is ImportStatus.FAILED
    assert "batches written before it stay" in (stored.error_detail or "")
    (report,) = verify_ledger(new_uow(), slug)
    assert report.intact, report
