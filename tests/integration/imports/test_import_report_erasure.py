"""Erasing a person empties the cells of the tenant's import reports that are one of their
addresses; other cells, other people's and other tenants' reports stay as they were."""

from __future__ import annotations

import uuid
from typing import Any

from tests.integration.helpers import UowFactory, disclosure, person, shop
from tests.integration.imports.helpers import attestation, run, spec

from consentry.domain.model import Channel
from consentry.services.contacts import erase_contact

# An SMS list: line 2 gives a new number with the email of a contact who has another number
# (EMAIL_TAKEN: the cell is that email), line 3 an email that is not one, line 4 another
# person's email taken the same way, line 5 a landline (INVALID_PHONE: the cell is the number
# as written, in international form).
FILE = (
    b"phone,email\r\n"
    b"+16175550199,ana@example.com\r\n"
    b"+16175550198,not-an-email\r\n"
    b"+16175550197,ben@example.org\r\n"
    b"+44 20 7946 0000,carl@example.net\r\n"
)


def _cells(new_uow: UowFactory, slug: str, import_id: uuid.UUID) -> dict[int, str | None]:
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        return {i.line: i.value for _, i in uow.imports.issues(tenant.id, import_id)}


def _report(new_uow: UowFactory, slug: str) -> uuid.UUID:
    cites = disclosure(new_uow, slug)
    outcome = run(
        new_uow, slug, FILE,
        spec(attestation(cites.policy_document_id), channel=Channel.SMS, keep_good_rows=True),
    )  # fmt: skip
    outcome.close()
    assert outcome.record is not None
    return outcome.record.id


def test_erasure_empties_report_cells_holding_the_persons_address(new_uow: UowFactory) -> None:
    slugs = (shop(new_uow, slug="shop"), shop(new_uow, slug="other"))
    people: dict[object, Any] = {}
    for slug in slugs:
        people[slug] = person(new_uow, slug, email="ana@example.com", phone="+16175550142")
        person(new_uow, slug, email="ben@example.org", phone="+16175550143")
        people[slug, "carl"] = person(
            new_uow, slug, email="carl@example.net", phone="+442079460000"
        )
    reports = {slug: _report(new_uow, slug) for slug in slugs}
    before = _cells(new_uow, "shop", reports["shop"])
    assert before == {
        2: "ana@example.com", 3: "not-an-email", 4: "ben@example.org", 5: "+44 20 7946 0000",
    }  # fmt: skip

    erase_contact(new_uow(), "shop", people["shop"].id)
    erase_contact(new_uow(), "shop", people["shop", "carl"].id)

    assert _cells(new_uow, "shop", reports["shop"]) == {
        2: None,  # Ana's address: gone, the problem itself stays
        3: "not-an-email",  # not an address: nobody's to erase
        4: "ben@example.org",  # another person's
        5: None,  # Carl's landline
    }
    assert _cells(new_uow, "other", reports["other"]) == before  # another tenant's report
