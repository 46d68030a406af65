"""Imports with attestation on SQLite and PostgreSQL: the report, atomicity, dry runs, skips."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from tests.integration.helpers import UowFactory, disclosure, shop
from tests.integration.imports.helpers import attestation, run, spec

from consentry.domain.consent import ConsentAction, ConsentMethod, Evidence
from consentry.domain.imports import ImportStatus, Severity
from consentry.persistence.tables import consent_events, consent_states, contacts
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.consent import consent_history
from consentry.services.ledger import verify_ledger

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
