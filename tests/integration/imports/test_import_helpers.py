"""A large import on PostgreSQL prepares its rows in helper processes, encoded for binary COPY:
the report, contacts, events, chain and states are those of preparing them in the importing
process, and a helper that dies stops the import with nothing half-written."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from tests.integration.helpers import UowFactory, disclosure, grant, person, shop
from tests.integration.imports.helpers import attestation, run, spec

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.domain.consent import ConsentAction
from consentry.domain.imports import ImportStatus
from consentry.domain.model import Channel
from consentry.domain.suppression import SuppressionReason
from consentry.persistence import import_prep
from consentry.persistence.crypto import FileKeyRing
from consentry.persistence.tables import consent_events, consent_states, contacts, imports
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services import import_batch
from consentry.services.consent import consent_history
from consentry.services.contacts import get_contact
from consentry.services.ledger import verify_ledger
from consentry.services.suppressions import add_suppression

pytestmark = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)

# Every path a row can take: new contacts, an error, a repeat within the file, an address that
# belongs to a contact already (its consent goes to that contact), a suppressed address, an
# address already consented, and a batch boundary between most of them.
FILE = (
    b"email,name,signup_at,ip\r\n"
    b"ana@example.com,Ana,2026-03-01T09:30:00Z,203.0.113.9\r\n"
    b"ben@example.org,Ben,2026-03-02,198.51.100.7\r\n"
    b"not-an-email,Chloe,2026-03-03,203.0.113.10\r\n"
    b"known@example.com,Known Person,2026-03-04,2001:db8::1\r\n"
    b"ANA@example.com,Ana again,2026-03-05,203.0.113.9\r\n"
    b"blocked@example.com,Blocked,2026-03-06,203.0.113.12\r\n"
    b"dev@example.net,=HYPERLINK(1),2026-03-07,203.0.113.13\r\n"
    b"already@example.com,Already,2026-03-08,203.0.113.14\r\n"
    b"elena@example.com,Elena,2026-03-09,010.1.1.1\r\n"
    b"farid@example.com,Farid,2026-03-10,\r\n"
)
EMAILS = ("ana@example.com", "ben@example.org", "known@example.com", "dev@example.net",
          "farid@example.com")  # fmt: skip


@pytest.fixture
def helper_pids(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The process id of every helper an import starts, in order."""
    started: list[int] = []
    original = import_prep._Helper.__init__

    def counted(self: import_prep._Helper, *args: Any) -> None:
        original(self, *args)
        started.append(self._process.pid)

    monkeypatch.setattr(import_prep._Helper, "__init__", counted)
    return started


def _ended(pids: list[int]) -> bool:
    """Whether none of these processes is left (each was waited for)."""
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        return False
    return True


def _tenant(new_uow: UowFactory, slug: str) -> Any:
    shop(new_uow, slug=slug)
    cites = disclosure(new_uow, slug)
    person(new_uow, slug, email="known@example.com", phone=None)  # named Ana Lima
    person(new_uow, slug, email="already@example.com", phone=None)
    grant(new_uow, slug, "already@example.com", cites)
    add_suppression(
        new_uow(), slug, address="blocked@example.com", channels=[Channel.EMAIL],
        reason=SuppressionReason.COMPLAINT,
    )  # fmt: skip
    return cites


def _imported(new_uow: UowFactory, slug: str, helpers: bool, monkeypatch: Any) -> dict[str, Any]:
    cites = _tenant(new_uow, slug)
    monkeypatch.setattr(import_prep, "HELPER_MIN_ROWS", 1 if helpers else 1 << 40)
    monkeypatch.setattr(import_prep.os, "cpu_count", lambda: 2)  # two helpers on any machine
    outcome = run(new_uow, slug, FILE, spec(attestation(cites.policy_document_id),
                                            keep_good_rows=True))  # fmt: skip
    issues = [(i.line, i.field, i.code, i.severity, i.value) for i in outcome.issues]
    outcome.close()
    people = {}
    for email in EMAILS:
        contact = get_contact(new_uow(), slug, email)
        history = [
            (h.topic_key, h.event.action, h.event.evidence.ip_address, h.event.occurred_at,
             h.event.evidence.source, h.event.evidence.note)
            for h in consent_history(new_uow(), slug, email)
        ]  # fmt: skip
        people[email] = (contact.name, history)
    (report,) = list(verify_ledger(new_uow(), slug))
    return {
        "status": outcome.status,
        "counts": outcome.counts,
        "issues": issues,
        "people": people,
        "intact": report.intact,
        "verified": report.verified,
    }


def test_one_core_prepares_in_the_importing_process(
    new_uow: UowFactory, monkeypatch: pytest.MonkeyPatch, helper_pids: list[int]
) -> None:
    cites = _tenant(new_uow, "shop")
    monkeypatch.setattr(import_prep, "HELPER_MIN_ROWS", 1)
    monkeypatch.setattr(import_prep.os, "cpu_count", lambda: 1)
    outcome = run(new_uow, "shop", FILE, spec(attestation(cites.policy_document_id)))
    outcome.close()
    assert helper_pids == []
    assert outcome.counts.imported == 5


def test_the_setting_turns_the_helpers_off(
    engine: Engine, keys: FileKeyRing, monkeypatch: pytest.MonkeyPatch, helper_pids: list[int]
) -> None:
    """``CONSENTRY_IMPORT_HELPERS=0``: the rows are prepared in the importing process."""
    container = Container(
        settings=Settings(database_url=engine.url.render_as_string(hide_password=False),
                          import_helpers=0),
        engine=engine, keys=keys,
    )  # fmt: skip
    cites = _tenant(container.uow, "shop")
    monkeypatch.setattr(import_prep, "HELPER_MIN_ROWS", 1)
    monkeypatch.setattr(import_prep.os, "cpu_count", lambda: 8)
    outcome = run(container.uow, "shop", FILE, spec(attestation(cites.policy_document_id)))
    outcome.close()
    assert helper_pids == []
    assert outcome.counts.imported == 5


def test_helpers_write_what_the_importing_process_would(
    new_uow: UowFactory, monkeypatch: pytest.MonkeyPatch, helper_pids: list[int]
) -> None:
    monkeypatch.setattr(import_batch, "BATCH_ROWS", 3)  # four batches over two helpers
    in_process = _imported(new_uow, "shop-a", False, monkeypatch)
    assert helper_pids == []
    helped = _imported(new_uow, "shop-b", True, monkeypatch)
    assert len(helper_pids) == 2
    assert helped == in_process
    assert helped["status"] is ImportStatus.COMPLETED
    assert helped["intact"]
    assert helped["counts"].imported == 5  # ana, ben, known (existing contact), dev, farid
    assert helped["counts"].contacts_created == 4
    codes = sorted((line, code) for line, _, code, _, _ in helped["issues"])
    assert codes == [(4, "INVALID_EMAIL"), (6, "DUPLICATE_IN_FILE"), (7, "SKIPPED_SUPPRESSED"),
                     (9, "SKIPPED_ALREADY_CONSENTED"), (10, "INVALID_VALUE")]  # fmt: skip
    name, history = helped["people"]["known@example.com"]
    assert name == "Ana Lima"  # the existing contact, not a new one named from the row
    assert [h[:2] for h in history] == [("promotions", ConsentAction.GRANTED)]
    assert helped["people"]["ana@example.com"][1][0][2] == "203.0.113.9"
    assert helped["people"]["known@example.com"][1][0][2] == "2001:db8::1"
    assert helped["people"]["dev@example.net"][0] == "=HYPERLINK(1)"
    assert _ended(helper_pids)  # each helper ended with the import


def _counts(new_uow: UowFactory) -> dict[str, int]:
    uow = new_uow()
    assert isinstance(uow, SqlUnitOfWork)
    with uow:
        return {
            t.name: int(uow.connection.execute(select(func.count()).select_from(t)).scalar_one())
            for t in (contacts, consent_events, consent_states)
        }


def test_a_helper_that_dies_fails_the_import_and_writes_nothing(
    new_uow: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    cites = _tenant(new_uow, "shop")
    monkeypatch.setattr(import_prep, "HELPER_MIN_ROWS", 1)
    monkeypatch.setattr(import_prep.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(import_batch, "BATCH_ROWS", 3)
    # Batches go to the two helpers in turn, three in flight: the fourth is handed over only
    # once the first has come back, and the first is written before the second is taken. The
    # helper that is to get the fourth is killed first, so a batch is always written before
    # the failure, and the dead helper can have sent nothing for it.
    original = import_prep._Helper.submit
    submitted: list[int] = []
    written: list[int] = []

    def dies_before_fourth(self: import_prep._Helper, raw: Any) -> None:
        submitted.append(1)
        if len(submitted) == 4:
            os.kill(self._process.pid, signal.SIGKILL)
            self._process.wait()
        original(self, raw)

    original_write = import_batch.write_batch

    def counted_write(run_: import_batch.ImportRun, batch: import_batch.PreparedBatch) -> None:
        original_write(run_, batch)
        written.append(batch.rows)

    monkeypatch.setattr(import_prep._Helper, "submit", dies_before_fourth)
    monkeypatch.setattr(import_batch, "write_batch", counted_write)
    before = _counts(new_uow)
    with pytest.raises(import_prep.HelperFailed, match="helper process stopped"):
        run(new_uow, "shop", FILE, spec(attestation(cites.policy_document_id)))
    assert written == [3]  # the first batch was written before the helper's death surfaced
    assert _counts(new_uow) == before  # an atomic import: its first batch is rolled back too
    uow = new_uow()
    assert isinstance(uow, SqlUnitOfWork)
    with uow:
        (status, code) = uow.connection.execute(
            select(imports.c.status, imports.c.error_code)
        ).one()
    assert (status, code) == (ImportStatus.FAILED.value, "IMPORT_FAILED")


def test_a_helper_that_falls_silent_fails_the_import_instead_of_hanging(
    new_uow: UowFactory, monkeypatch: pytest.MonkeyPatch, helper_pids: list[int]
) -> None:
    """A helper that is alive but sends nothing (stopped here with SIGSTOP) fails the import
    after ``HELPER_SILENCE_SECONDS``; it is killed, and nothing is written."""
    cites = _tenant(new_uow, "shop")
    monkeypatch.setattr(import_prep, "HELPER_MIN_ROWS", 1)
    monkeypatch.setattr(import_prep.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(import_prep, "HELPER_SILENCE_SECONDS", 1.0)
    monkeypatch.setattr(import_batch, "BATCH_ROWS", 3)
    original = import_prep._Helper.submit
    submitted: list[int] = []

    def stops_before_fourth(self: import_prep._Helper, raw: Any) -> None:
        submitted.append(1)
        if len(submitted) == 4:
            os.kill(self._process.pid, signal.SIGSTOP)
        original(self, raw)

    monkeypatch.setattr(import_prep._Helper, "submit", stops_before_fourth)
    before = _counts(new_uow)
    began = time.monotonic()
    with pytest.raises(import_prep.HelperFailed, match="sent nothing for 1 s"):
        run(new_uow, "shop", FILE, spec(attestation(cites.policy_document_id)))
    assert time.monotonic() - began < 8  # not the 10 s a helper that does not end is given
    assert _counts(new_uow) == before
    assert len(helper_pids) == 2
    assert _ended(helper_pids)


def test_a_failed_write_ends_the_helpers_at_once(
    new_uow: UowFactory, monkeypatch: pytest.MonkeyPatch, helper_pids: list[int]
) -> None:
    """The importing process stops on an error while the helpers still hold batches for it:
    they are ended, not waited for."""
    cites = _tenant(new_uow, "shop")
    monkeypatch.setattr(import_prep, "HELPER_MIN_ROWS", 1)
    monkeypatch.setattr(import_prep.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(import_batch, "BATCH_ROWS", 1)  # ten batches, three in flight

    def broken(*_args: object) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(import_batch, "write_batch", broken)
    began = time.monotonic()
    with pytest.raises(RuntimeError, match="went away"):
        run(new_uow, "shop", FILE, spec(attestation(cites.policy_document_id)))
    assert time.monotonic() - began < 8  # a helper left waiting would be killed after 10 s
    assert len(helper_pids) == 2
    assert _ended(helper_pids)
