"""Email sent outside campaigns (confirmation requests here) is DKIM-signed with the key of the
tenant's sender domain it comes from, like campaign email."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import dkim
import pytest
from sqlalchemy import Engine
from tests.integration.helpers import NOW, disclosure, person, shop

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.domain.consent import ConsentAction, ConsentBasis
from consentry.domain.delivery import EmailMessage
from consentry.domain.model import Category, Channel
from consentry.persistence.crypto import FileKeyRing
from consentry.services import confirmations
from consentry.services.compose.confirmation import ConfirmationTokens
from consentry.services.consent import ConsentRequest
from consentry.services.courtesy_signing import DomainSigners, from_domain
from consentry.services.messages import register_sender_domain
from consentry.services.tenancy import create_topic

CONFIG = confirmations.ConfirmationConfig(
    public_base_url="https://consentry.example", sms_sender="+15005550006"
)


@pytest.fixture
def container(engine: Engine, keys: FileKeyRing, tmp_path: Path) -> Container:
    return Container(
        settings=Settings(data_dir=tmp_path, public_base_url=CONFIG.public_base_url),
        engine=engine,
        keys=keys,
    )


def _request_confirmation(container: Container) -> bytes:
    """A confirmation request for the shop's double opt-in topic, as captured."""
    new_uow = container.uow
    create_topic(
        new_uow(), "shop", key="news", name="Weekly news", category=Category.MARKETING,
        requires_double_opt_in=True, now=NOW,
    )  # fmt: skip
    contact = person(new_uow, "shop")
    confirmations.request_consent(
        new_uow(),
        confirmations.Confirmers(
            ConfirmationTokens(b"\x07" * 32, lifetime=timedelta(days=7)),
            CONFIG,
            confirmations.ResendLimits(CONFIG.resend_interval),
            container.send_now,
        ),
        "shop",
        ConsentRequest(
            str(contact.id),
            "news",
            Channel.EMAIL,
            ConsentAction.REQUESTED,
            ConsentBasis.EXPRESS,
            disclosure(new_uow, "shop"),
        ),
        now=NOW,
    )
    outbox = container.outbox()
    (captured,) = outbox.list(None)
    return outbox.get(captured.id).raw


def test_a_confirmation_request_is_signed_with_the_sender_domains_key(
    container: Container,
) -> None:
    shop(container.uow)
    registered = register_sender_domain(
        container.uow(), "shop", "shop.example", dkim_selector="s2026"
    )
    record = registered.dkim_dns_record
    assert record is not None
    raw = _request_confirmation(container)

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return record.encode() if name == b"s2026._domainkey.shop.example." else None

    assert raw.startswith(b"DKIM-Signature:")
    assert b"d=shop.example" in raw.split(b"\r\n\r\n")[0]
    assert dkim.verify(raw, dnsfunc=dns)
    tampered = raw.replace(b"Weekly news", b"Weekly deals", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_without_a_dkim_key_the_message_goes_unsigned(container: Container) -> None:
    shop(container.uow)
    register_sender_domain(container.uow(), "shop", "shop.example")  # no selector: no key
    raw = _request_confirmation(container)
    assert b"DKIM-Signature" not in raw
    assert b"From: " in raw


def test_a_from_domain_the_tenant_did_not_register_is_not_signed(container: Container) -> None:
    shop(container.uow)
    register_sender_domain(container.uow(), "shop", "shop.example", dkim_selector="s2026")
    with container.uow() as uow:
        tenant_id = uow.tenants.by_slug("shop").id
    signers = DomainSigners(container.read_uow)
    message = EmailMessage(
        0, tenant_id, "bounces@other.example", "ana@example.com",
        b"From: Shop <shop@other.example>\nTo: ana@example.com\nSubject: Hi\n\nHello\n",
        "x@other.example",
    )  # fmt: skip
    assert signers.sign(message) is message
    assert signers.signer(uuid.uuid4(), "shop.example") is None  # another tenant's domain


def test_the_from_domain_is_read_from_the_header() -> None:
    assert from_domain(b'From: "A, B" <a@Shop.Example>\r\nTo: x@y.z\r\n\r\nbody') == "shop.example"
    assert from_domain(b"To: x@y.z\n\nbody") is None
