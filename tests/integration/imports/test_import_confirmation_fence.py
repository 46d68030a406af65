"""Import confirmations hold the opt-out fence while they send, like a campaign's dispatch: an
opt-out to an address in the batch waits until its request has left, and one that committed
before is honoured."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from tests.integration.helpers import UowFactory
from tests.integration.imports.helpers import confirmed_opt_in_import

from consentry.domain.consent import ConsentAction, ConsentBasis, ConsentMethod, Evidence
from consentry.domain.delivery import EmailMessage, OutboundMessage
from consentry.domain.model import Channel
from consentry.persistence.fences import lock_key
from consentry.services.compose.confirmation import ConfirmationTokens
from consentry.services.confirmations import ConfirmationConfig
from consentry.services.consent import ConsentRequest, record_consent
from consentry.services.import_confirmations import ConfirmationsSent, send_import_confirmations

LIST = b"email\nana@example.com\nben@example.org\nchloe@example.net\n"
TOKENS = ConfirmationTokens(b"\x07" * 32, lifetime=timedelta(days=7))
CONFIG = ConfirmationConfig(public_base_url="https://consent.example", sms_sender="+15005550006")


def _import(new_uow: UowFactory) -> tuple[str, uuid.UUID]:
    slug, import_id, pending = confirmed_opt_in_import(new_uow, LIST)
    assert pending == 3
    return slug, import_id


def _point_key(new_uow: UowFactory, slug: str, address: str) -> bytes:
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        contact = uow.contacts.find_by_address(tenant.id, Channel.EMAIL, address)
        assert contact is not None
        key = uow.contacts.point_key(contact, Channel.EMAIL)
    assert key is not None
    return key


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)  # SQLite: one writer at a time
def test_an_opt_out_cannot_slip_in_while_a_request_is_being_sent(
    new_uow: UowFactory, engine: Engine
) -> None:
    slug, import_id = _import(new_uow)
    keys = {
        a: lock_key(_point_key(new_uow, slug, a)) for a in ("ana@example.com", "ben@example.org")
    }
    taken_while_sending: dict[str, bool] = {}

    def send(message: OutboundMessage) -> None:
        assert isinstance(message, EmailMessage)
        with engine.connect() as other, other.begin():
            # What an opt-out's exclusive fence would do, without waiting.
            taken_while_sending[message.rcpt_to] = bool(
                other.execute(
                    text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": keys["ana@example.com"]}
                ).scalar_one()
            )

    done = send_import_confirmations(
        new_uow, TOKENS, CONFIG, send, slug, import_id, new_read_uow=new_uow
    )
    assert done == ConfirmationsSent(sent=3)
    assert taken_while_sending == {
        "ana@example.com": False,
        "ben@example.org": False,
        "chloe@example.net": False,
    }
    with engine.connect() as other, other.begin():  # released once the batch has left
        assert other.execute(
            text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": keys["ben@example.org"]}
        ).scalar_one()


def test_a_withdrawal_before_sending_is_honoured(new_uow: UowFactory) -> None:
    slug, import_id = _import(new_uow)
    record_consent(
        new_uow(),
        slug,
        ConsentRequest(
            "ben@example.org", "newsletter", Channel.EMAIL, ConsentAction.WITHDRAWN,
            ConsentBasis.EXPRESS, Evidence(method=ConsentMethod.API, actor="ben"),
        ),
    )  # fmt: skip
    sent: list[str] = []

    def send(message: OutboundMessage) -> None:
        assert isinstance(message, EmailMessage)
        sent.append(message.rcpt_to)

    done = send_import_confirmations(new_uow, TOKENS, CONFIG, send, slug, import_id)
    assert sorted(sent) == ["ana@example.com", "chloe@example.net"]
    assert done == ConfirmationsSent(sent=2)
