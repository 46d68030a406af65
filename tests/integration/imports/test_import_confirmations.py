"""An import into a topic that requires confirmed opt-in sends each pending address its
confirmation request once the import has committed; sending again reaches only those still
pending, and the rule of confirmation requests (no all-scope block) holds for every one."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from email import message_from_bytes
from email.policy import default as default_policy

import pytest
from tests.integration.helpers import UowFactory, disclosure, shop
from tests.integration.imports.helpers import attestation, confirmed_opt_in_import, run, spec

from consentry.domain.consent import ConsentAction, ConsentMethod, Evidence
from consentry.domain.delivery import EmailMessage, OutboundMessage, PermanentDeliveryError
from consentry.domain.model import Channel, TenantStatus
from consentry.domain.suppression import SuppressionReason
from consentry.services import confirming, import_confirmations
from consentry.services.clock import utcnow
from consentry.services.compose.confirmation import ConfirmationTokens
from consentry.services.confirmations import ConfirmationConfig
from consentry.services.consent import consent_history
from consentry.services.import_confirmations import ConfirmationsSent, send_import_confirmations
from consentry.services.suppressions import add_suppression

LIST = (
    b"email,name\n"
    b"ana@example.com,Ana\n"
    b"ben@example.org,Ben\n"
    b"chloe@example.net,Chloe\n"
    b"dev@example.com,Dev\n"
)
TOKENS = ConfirmationTokens(b"\x07" * 32, lifetime=timedelta(days=7))
CONFIG = ConfirmationConfig(public_base_url="https://consent.example", sms_sender="+15005550006")


class Outbox:
    """The channel: keeps what it is given, refusing the addresses in ``refuse``."""

    def __init__(self, refuse: frozenset[str] = frozenset()) -> None:
        self.sent: list[EmailMessage] = []
        self.refuse = refuse

    def __call__(self, message: OutboundMessage) -> None:
        assert isinstance(message, EmailMessage)
        if message.rcpt_to in self.refuse:
            raise PermanentDeliveryError("550 5.1.1 no such user")
        self.sent.append(message)

    def link_for(self, address: str) -> str:
        [message] = [m for m in self.sent if m.rcpt_to == address]
        parsed = message_from_bytes(message.data, policy=default_policy)
        found = re.search(r"https://consent\.example/c/([A-Za-z0-9_-]+)", str(parsed.get_content()))
        assert found is not None
        return found.group(1)


def _import(new_uow: UowFactory) -> tuple[str, uuid.UUID]:
    slug, import_id, pending = confirmed_opt_in_import(new_uow, LIST)
    assert pending == 4
    return slug, import_id


def test_every_pending_address_gets_one_request_and_confirming_it_counts(
    new_uow: UowFactory,
) -> None:
    slug, import_id = _import(new_uow)
    add_suppression(
        new_uow(), slug, address="ben@example.org", channels=[Channel.EMAIL],
        reason=SuppressionReason.HARD_BOUNCE,
    )  # fmt: skip
    outbox = Outbox(refuse=frozenset({"dev@example.com"}))

    done = send_import_confirmations(new_uow, TOKENS, CONFIG, outbox, slug, import_id)

    assert done == ConfirmationsSent(sent=2, refused=1, failed=1)
    assert sorted(m.rcpt_to for m in outbox.sent) == ["ana@example.com", "chloe@example.net"]
    with new_uow() as uow:
        tenant = uow.tenants.by_slug(slug)
        assert uow.imports.get(tenant.id, import_id).counts.confirmations_sent == 2

    evidence = Evidence(
        method=ConsentMethod.WEB_FORM, source="https://consent.example/c",
        ip_address="203.0.113.5", user_agent="Mozilla/5.0",
    )  # fmt: skip
    confirming.confirm(new_uow(), TOKENS, outbox.link_for("ana@example.com"), evidence)
    actions = [h.event.action for h in consent_history(new_uow(), slug, "ana@example.com")]
    assert actions == [ConsentAction.REQUESTED, ConsentAction.CONFIRMED]

    again = Outbox()
    second = send_import_confirmations(new_uow, TOKENS, CONFIG, again, slug, import_id)

    # Ana confirmed and Ben is blocked: Chloe (asked before) and Dev (failed before) are asked.
    assert sorted(m.rcpt_to for m in again.sent) == ["chloe@example.net", "dev@example.com"]
    assert second == ConfirmationsSent(sent=2, refused=1, failed=0)
    with new_uow() as uow:
        assert uow.imports.get(tenant.id, import_id).counts.confirmations_sent == 4


def test_an_import_into_a_topic_without_confirmation_sends_nothing(new_uow: UowFactory) -> None:
    slug = shop(new_uow)
    cites = disclosure(new_uow, slug)
    outcome = run(new_uow, slug, LIST, spec(attestation(cites.policy_document_id)))
    outcome.close()
    assert outcome.record is not None
    outbox = Outbox()

    done = send_import_confirmations(new_uow, TOKENS, CONFIG, outbox, slug, outcome.record.id)

    assert done == ConfirmationsSent()
    assert outbox.sent == []


def test_a_suspension_during_the_run_stops_the_batches_after_it(
    new_uow: UowFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    slug, import_id = _import(new_uow)
    monkeypatch.setattr(import_confirmations, "BATCH", 1)
    outbox = Outbox()

    def suspend_after_the_first(_done: int) -> None:
        with new_uow() as uow:
            tenant = uow.tenants.by_slug(slug)
            uow.tenants.set_status(tenant.id, TenantStatus.SUSPENDED.value, utcnow())
            uow.commit()

    done = send_import_confirmations(
        new_uow, TOKENS, CONFIG, outbox, slug, import_id, progress=suspend_after_the_first
    )
    assert done == ConfirmationsSent(sent=1, refused=3, failed=0)
    assert len(outbox.sent) == 1
