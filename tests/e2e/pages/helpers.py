"""Seeding for the page tests: captured messages, operators, consenting contacts."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from email.utils import make_msgid

import pytest
from tests.e2e.pages.conftest import Api, Seeded

from consentry.domain.access import Role
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    Evidence,
)
from consentry.domain.delivery import EmailMessage, SmsMessage
from consentry.domain.model import Channel
from consentry.domain.suppression import Suppression
from consentry.services import access
from consentry.services.compose.tokens import TokenClaims
from consentry.services.consent import ConsentRequest, record_consent
from consentry.services.contacts import ContactInput, add_contact
from consentry.services.gate import explain_decision

PASSWORD = "correct horse battery staple"
LOG_WAIT_SECONDS = 5.0


def capture_email(
    api: Api, tenant: Seeded, *, to: str, subject: str, body: str, delivery: int
) -> int:
    mime = MimeMessage()
    mime["From"] = f"{tenant.name} <news@{tenant.slug}.example>"
    mime["To"] = to
    mime["Subject"] = subject
    mime["Message-ID"] = make_msgid(domain=f"{tenant.slug}.example")
    mime.set_content(body)
    message = EmailMessage(
        delivery_id=delivery,
        tenant_id=tenant.id,
        mail_from=f"bounces@{tenant.slug}.example",
        rcpt_to=to,
        data=bytes(mime),
        message_id=mime["Message-ID"].strip("<>"),
    )
    return api.container.outbox().capture(message, datetime.now(UTC))


def capture_sms(api: Api, tenant: Seeded, *, to: str, body: str, delivery: int) -> int:
    message = SmsMessage(delivery, tenant.id, to, "+15005550006", body, uuid.uuid4().hex)
    return api.container.outbox().capture(message, datetime.now(UTC))


def operator(api: Api, *, tenant: Seeded | None = None) -> tuple[str, str]:
    """A user (platform operator, or a tenant operator of ``tenant``): (email, password)."""
    email = f"op-{uuid.uuid4().hex[:8]}@operators.example"
    access.create_user(
        api.container.uow(),
        email=email,
        password=PASSWORD,
        role=Role.TENANT_OPERATOR if tenant else Role.PLATFORM_OPERATOR,
        tenant_slug=tenant.slug if tenant else None,
    )
    return email, PASSWORD


def session_token(api: Api, email: str) -> str:
    return access.login(api.container.uow(), email, PASSWORD).token


WEB_EVIDENCE = Evidence(
    method=ConsentMethod.WEB_FORM,
    source="https://shop.example/signup",
    ip_address="198.51.100.20",
    user_agent="Mozilla/5.0 (seed)",
)


def consenting_contact(
    api: Api,
    tenant: Seeded,
    *,
    email: str,
    phone: str | None = None,
    topics: tuple[str, ...] = ("offers",),
) -> uuid.UUID:
    """A contact who gave express consent to ``topics`` by email (and SMS with a phone)."""
    contact = add_contact(
        api.container.uow(),
        tenant.slug,
        ContactInput(name="Jane Roe", email=email, phone=phone, country="GB"),
    )
    evidence = Evidence(
        method=WEB_EVIDENCE.method,
        source=WEB_EVIDENCE.source,
        ip_address=WEB_EVIDENCE.ip_address,
        user_agent=WEB_EVIDENCE.user_agent,
        policy_document_id=tenant.disclosure_id,
    )
    channels = [Channel.EMAIL] + ([Channel.SMS] if phone else [])
    for topic in topics:
        for channel in channels:
            record_consent(
                api.container.uow(),
                tenant.slug,
                ConsentRequest(
                    str(contact.id),
                    topic,
                    channel,
                    ConsentAction.GRANTED,
                    ConsentBasis.EXPRESS,
                    evidence,
                ),
            )
    return contact.id


def link_token(
    api: Api,
    tenant: Seeded,
    contact_id: uuid.UUID,
    topic: str = "offers",
    channel: Channel = Channel.EMAIL,
) -> str:
    """The token a message's unsubscribe and preference links carry, minted as the composer does."""
    with api.container.uow() as uow:
        topic_id = uow.topics.by_key(tenant.id, topic).id
        contact = uow.contacts.get(tenant.id, contact_id)
        point_key = uow.contacts.point_key(contact, channel)
    assert point_key is not None
    claims = TokenClaims(tenant.id, contact_id, topic_id, channel, point_key, datetime.now(UTC))
    return api.container.unsubscribe_tokens().mint(claims)


def verdict(
    api: Api, tenant: Seeded, contact_id: uuid.UUID, topic: str, channel: Channel
) -> tuple[str, tuple[str, ...]]:
    """What the gate decides now for this topic and channel: (verdict, reasons)."""
    found = explain_decision(api.container.uow(), tenant.slug, str(contact_id), topic, channel)
    decision = found.explanation.decision
    return decision.verdict.value, decision.reasons


def ledger(api: Api, tenant: Seeded, contact_id: uuid.UUID) -> list[ConsentEvent]:
    with api.container.uow() as uow:
        return uow.ledger.history(tenant.id, contact_id)


def suppressions(api: Api, tenant: Seeded) -> list[Suppression]:
    """The tenant's own suppressions. Platform-wide ones (SMS keywords) also bind the tenant,
    but on the shared PostgreSQL database other tests' keywords add those at any time."""
    with api.container.uow() as uow:
        return [s for s in uow.suppressions.list(tenant.id) if s.tenant_id == tenant.id]


def logged_paths(caplog: pytest.LogCaptureFixture, expected: int) -> list[str | None]:
    """The paths of the request log lines captured so far, waiting (briefly) for ``expected``
    of them: the server logs a request once it has answered it, on its own thread, so the
    line can arrive just after the client has its response."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        paths = [getattr(r, "path", None) for r in caplog.records if r.name == "consentry.http"]
        if len(paths) >= expected or time.monotonic() > deadline:
            return paths
        time.sleep(0.01)
