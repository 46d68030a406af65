"""What the delivery-guarantee tests share: a fresh PostgreSQL database per test, a tenant ready to
send marketing and service email, a fast seeded audience, an SMTP server that records when each
message arrived, and ``consentry`` subprocesses that are always stopped."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aiosmtpd.smtp import SMTP, Envelope, Session
from sqlalchemy import create_engine, func, insert, select, text, update
from sqlalchemy.engine import make_url
from tests.integration.channels.servers import SmtpSink

from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.domain.chain import link_hash
from consentry.domain.consent import (
    ConsentAction,
    ConsentBasis,
    ConsentEvent,
    ConsentMethod,
    Evidence,
    EvidenceDigests,
    apply_event,
    canonical_event,
)
from consentry.domain.ids import new_id
from consentry.domain.model import BusinessProfile, Category, Channel, PolicyKind
from consentry.persistence.crypto import FileKeyRing, keyring_from_secrets
from consentry.persistence.engine import make_engine
from consentry.persistence.migrate import upgrade
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import (
    chain_heads,
    consent_events,
    consent_states,
    contacts,
    deliveries,
)
from consentry.persistence.tenancy import CONSENT_CHAIN
from consentry.services.campaigns import CampaignInput, create_campaign
from consentry.services.clock import utcnow
from consentry.services.consent import ConsentRequest, record_consent
from consentry.services.contacts import ContactInput, build_contact
from consentry.services.ledger import verify_ledger
from consentry.services.messages import TemplateInput, create_template, register_sender_domain
from consentry.services.tenancy import create_tenant, create_topic, draft_policy, publish_policy
from consentry.services.tenants_ref import find_tenant

SLUG = "harbour"
MASTER_KEY = base64.b64encode(b"\x01" * 32).decode()
INDEX_KEY = base64.b64encode(b"\x02" * 32).decode()
CONSENTRY = str(Path(sys.executable).with_name("consentry"))


def keyring() -> FileKeyRing:
    """The key ring the ``consentry`` subprocesses build from CONSENTRY_MASTER_KEY/INDEX_KEY."""
    return keyring_from_secrets(MASTER_KEY, INDEX_KEY)


# -- a database of its own ---------------------------------------------------------------------


@contextmanager
def fresh_database(server_url: str, admin_url: str) -> Iterator[str]:
    """A new database on ``server_url``'s server, migrated to head, dropped afterwards."""
    name = f"consentry_guarantee_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# -- a tenant ready to send --------------------------------------------------------------------


@dataclass
class Shop:
    container: Container
    evidence: Evidence

    def uow(self) -> Any:
        return self.container.uow()

    def statuses(self, campaign_id: uuid.UUID | None = None) -> dict[uuid.UUID, tuple[str, str]]:
        """contact id -> (status, reasons) of its delivery (of one campaign, or transactional)."""
        d = deliveries.c
        query = select(d.contact_id, d.status, d.reasons)
        query = query.where(
            d.campaign_id == campaign_id if campaign_id is not None else d.campaign_id.is_(None)
        )
        with self.container.engine.connect() as conn:
            return {r.contact_id: (r.status, r.reasons or "") for r in conn.execute(query)}

    def status_counts(self) -> Counter[str]:
        d = deliveries.c
        with self.container.engine.connect() as conn:
            rows = conn.execute(select(d.status, func.count()).group_by(d.status))
            return Counter({status: int(n) for status, n in rows})


def open_shop(database_url: str, data_dir: Path) -> Shop:
    """A US business with a marketing and a service topic, a sender domain (no DKIM: signing is
    not what these tests are about), a marketing and a service email template."""
    settings = Settings(
        database_url=database_url,
        data_dir=data_dir,
        public_base_url="https://consentry.example",
        broker_url=None,
        email_channel="capture",
    )
    container = Container(settings=settings, engine=make_engine(database_url), keys=keyring())
    new_uow = container.uow
    create_tenant(
        new_uow(),
        slug=SLUG,
        name="Harbour Auto",
        profile=BusinessProfile(
            legal_name="Harbour Auto LLC",
            country="US",
            postal_address="1 Dock Street, Boston, MA 02110",
            contact_email="hello@harbour.example",
        ),
    )
    create_topic(new_uow(), SLUG, key="reminders", name="Reminders", category=Category.SERVICE)
    create_topic(new_uow(), SLUG, key="promotions", name="Promotions", category=Category.MARKETING)
    register_sender_domain(new_uow(), SLUG, "harbour.example")
    create_template(
        new_uow(),
        SLUG,
        TemplateInput(
            name="spring",
            topic="promotions",
            channel=Channel.EMAIL,
            subject="Spring offer for {{ contact.first_name }}",
            text="Hello {{ contact.first_name }}, tyres are 10% off this month.",
        ),
    )
    create_template(
        new_uow(),
        SLUG,
        TemplateInput(
            name="reminder",
            topic="reminders",
            channel=Channel.EMAIL,
            subject="Your appointment",
            text="Your car is booked for {{ data.when }}.",
        ),
    )
    draft = draft_policy(
        new_uow(),
        SLUG,
        kind=PolicyKind.CONSENT_DISCLOSURE,
        title="Offers",
        body="Harbour Auto may email me offers. I can unsubscribe at any time.",
    )
    document = publish_policy(new_uow(), SLUG, draft.id, utcnow())
    evidence = Evidence(
        method=ConsentMethod.WEB_FORM,
        source="https://harbour.example/join",
        ip_address="203.0.113.9",
        user_agent="Mozilla/5.0 test",
        policy_document_id=document.id,
    )
    return Shop(container, evidence)


@dataclass(frozen=True)
class Recipient:
    contact_id: uuid.UUID
    email: str


def seed_opted_in(shop: Shop, count: int, prefix: str = "r") -> list[Recipient]:
    """``count`` contacts with express marketing email consent, written in bulk in one unit of
    work.

    The services commit one contact or one consent at a time, a few round trips each: far too
    slow for tens of thousands on a shared machine. This builds the same rows with the same code
    (``build_contact`` validation, the contact repository's sealed columns and blind indexes, the
    ledger's canonical hash chain, ``apply_event`` for the state the gate reads) and inserts them
    with one multi-row statement per table. ``ledger_verifies`` proves the result is a ledger the
    services would have written."""
    now = utcnow()
    seeded: list[Recipient] = []
    with shop.uow() as uow:
        conn = uow.connection
        tenant = find_tenant(uow, SLUG)
        topic = uow.topics.by_key(tenant.id, "promotions")
        assert shop.evidence.policy_document_id is not None
        document = uow.policies.get(tenant.id, shop.evidence.policy_document_id)
        evidence = replace(shop.evidence, disclosure_hash=document.content_hash)
        digest = uow.keys.digest
        digests = EvidenceDigests(
            source=digest(evidence.source),
            ip_address=digest(evidence.ip_address),
            user_agent=digest(evidence.user_agent),
            note=digest(evidence.note),
        )
        head_query = select(chain_heads.c.seq, chain_heads.c.hash).where(
            chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant.id
        )
        seq, prev_hash = conn.execute(head_query.with_for_update()).one()
        seal = FieldCrypto(conn, uow.keys).seal
        contact_rows, event_rows, state_rows = [], [], []
        for n in range(count):
            data = ContactInput(name=f"Person {n}", email=f"{prefix}{n}@example.com")
            contact = build_contact(tenant, data, now, new_id())
            contact_rows.append(
                {
                    "id": contact.id,
                    "tenant_id": tenant.id,
                    "created_at": now,
                    "updated_at": now,
                    **uow.contacts.columns(contact),  # the repository's own sealing
                }
            )
            point_key = uow.contacts.point_key(contact, Channel.EMAIL)
            assert point_key is not None
            seq += 1
            event = ConsentEvent(
                id=new_id(),
                tenant_id=tenant.id,
                contact_id=contact.id,
                point_key=point_key,
                topic_id=topic.id,
                channel=Channel.EMAIL,
                action=ConsentAction.GRANTED,
                basis=ConsentBasis.EXPRESS,
                evidence=evidence,
                occurred_at=now,
                recorded_at=now,
                seq=seq,
                prev_hash=prev_hash,
            )
            event = replace(event, hash=link_hash(prev_hash, canonical_event(event, digests)))
            prev_hash = event.hash
            event_rows.append(_event_row(event, digests, seal))
            state = apply_event(None, event)
            state_rows.append(
                {
                    "tenant_id": tenant.id,
                    "contact_id": contact.id,
                    "topic_id": topic.id,
                    "channel": Channel.EMAIL.value,
                    "point_key": point_key,
                    "status": state.status.value,
                    "basis": state.basis.value,
                    "confirmed": state.confirmed,
                    "event_id": state.event_id,
                    "seq": state.seq,
                    "granted_at": state.granted_at,
                    "expires_at": state.expires_at,
                    "updated_at": state.updated_at,
                }
            )
            assert contact.email is not None
            seeded.append(Recipient(contact.id, contact.email))
        conn.execute(insert(contacts), contact_rows)
        conn.execute(insert(consent_events), event_rows)
        conn.execute(insert(consent_states), state_rows)
        conn.execute(
            update(chain_heads)
            .where(chain_heads.c.chain == CONSENT_CHAIN, chain_heads.c.tenant_id == tenant.id)
            .values(seq=seq, hash=prev_hash)
        )
        uow.commit()
    return seeded


def analyze(shop: Shop) -> None:
    """Refresh the planner's statistics, as autovacuum does after a bulk load some time later:
    without them PostgreSQL plans the campaign over tens of thousands of fresh rows as if the
    tables were empty (planning 20,000 recipients took over a minute instead of seconds)."""
    with shop.container.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


def _event_row(
    event: ConsentEvent, digests: EvidenceDigests, seal: Callable[..., bytes | None]
) -> dict[str, object]:
    """A consent_events row as ``SqlConsentLedger.append`` writes it."""
    ev = event.evidence
    return {
        "id": event.id,
        "tenant_id": event.tenant_id,
        "seq": event.seq,
        "contact_id": event.contact_id,
        "point_key": event.point_key,
        "topic_id": event.topic_id,
        "channel": event.channel.value,
        "action": event.action.value,
        "basis": event.basis.value,
        "method": ev.method.value,
        "source_digest": digests.source,
        "ip_digest": digests.ip_address,
        "user_agent_digest": digests.user_agent,
        "note_digest": digests.note,
        "policy_document_id": ev.policy_document_id,
        "disclosure_hash": ev.disclosure_hash,
        "actor": ev.actor,
        "import_batch_id": ev.import_batch_id,
        "inbound_message_id": ev.inbound_message_id,
        "relationship": None if ev.relationship is None else ev.relationship.value,
        "occurred_at": event.occurred_at,
        "recorded_at": event.recorded_at,
        "expires_at": event.expires_at,
        "prev_hash": event.prev_hash,
        "hash": event.hash,
        "source_enc": seal(event.tenant_id, "consent_events.source_enc", ev.source),
        "ip_enc": seal(event.tenant_id, "consent_events.ip_enc", ev.ip_address),
        "user_agent_enc": seal(event.tenant_id, "consent_events.user_agent_enc", ev.user_agent),
        "note_enc": seal(event.tenant_id, "consent_events.note_enc", ev.note),
    }


def ledger_verifies(shop: Shop) -> bool:
    """The consent chain verifies and the states the gate reads are the fold of the ledger."""
    reports = verify_ledger(shop.container.read_uow(), SLUG)
    return all(r.intact for r in reports)


def withdraw(shop: Shop, recipient: Recipient) -> None:
    """The person says no to promotions by email (the service, which takes the fence)."""
    record_consent(
        shop.uow(),
        SLUG,
        ConsentRequest(
            contact=str(recipient.contact_id),
            topic="promotions",
            channel=Channel.EMAIL,
            action=ConsentAction.WITHDRAWN,
            basis=ConsentBasis.EXPRESS,
            evidence=Evidence(method=ConsentMethod.WEB_FORM, source="https://harbour.example/u"),
        ),
    )


def draft_campaign(shop: Shop, name: str) -> uuid.UUID:
    campaign = create_campaign(
        shop.uow(),
        SLUG,
        CampaignInput(name=name, topic="promotions", template="spring"),
        actor="test",
    )
    return campaign.id


# -- the SMTP server ---------------------------------------------------------------------------

_MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*<([^>\r\n]+)>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class Arrival:
    """One accepted message: when its DATA completed, on this machine's clocks."""

    rcpt: str
    message_id: str
    monotonic: float
    wall: float


class ArrivalLog:
    """An aiosmtpd handler that accepts everything and records each message's arrival.

    ``hold_after(n)``: from the n-th message on, the message is recorded (it has arrived) but the
    250 reply is held back until ``release()``: a client killed meanwhile never learns that its
    message was accepted, as when a worker dies between hand-over and acknowledgement."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._hold_from: int | None = None
        self._released = threading.Event()
        self.held = threading.Event()  # set once a reply is being held back

    def hold_after(self, n: int) -> None:
        self._hold_from = n

    def release(self) -> None:
        self._released.set()

    async def handle_DATA(  # noqa: N802  (aiosmtpd's hook name)
        self, _server: SMTP, _session: Session, envelope: Envelope
    ) -> str:
        mono, wall = time.monotonic(), time.time()
        data = bytes(envelope.original_content or b"")
        found = _MESSAGE_ID.search(data.split(b"\r\n\r\n", 1)[0])
        message_id = found.group(1).decode() if found else ""
        with self._lock:
            for rcpt in envelope.rcpt_tos:
                self.arrivals.append(Arrival(rcpt, message_id, mono, wall))
            count = len(self.arrivals)
        if self._hold_from is not None and count >= self._hold_from:
            self.held.set()
            while not self._released.is_set():
                await asyncio.sleep(0.05)
        return "250 2.0.0 OK queued"

    def count(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)

    def by_rcpt(self) -> dict[str, list[Arrival]]:
        found: dict[str, list[Arrival]] = {}
        for a in self.snapshot():
            found.setdefault(a.rcpt, []).append(a)
        return found


@contextmanager
def smtp_server() -> Iterator[tuple[ArrivalLog, int]]:
    """aiosmtpd on 127.0.0.1 with an ``ArrivalLog``; yields it and the port."""
    log = ArrivalLog()
    sink = SmtpSink(log)  # type: ignore[arg-type]
    sink.start()
    try:
        yield log, int(sink.port)
    finally:
        log.release()
        sink.stop()


# -- consentry subprocesses --------------------------------------------------------------------


def consentry_env(
    database_url: str, smtp_port: int, data_dir: Path, **settings: object
) -> dict[str, str]:
    """The environment of a ``consentry`` process: this database, this SMTP server, the test
    keys, and ``settings`` as CONSENTRY_<NAME>; nothing CONSENTRY_* inherited from the runner."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    env.update(
        PYTHONUNBUFFERED="1",
        CONSENTRY_DATABASE_URL=database_url,
        CONSENTRY_DATA_DIR=str(data_dir),
        CONSENTRY_MASTER_KEY=MASTER_KEY,
        CONSENTRY_INDEX_KEY=INDEX_KEY,
        CONSENTRY_PUBLIC_BASE_URL="https://consentry.example",
        CONSENTRY_EMAIL_CHANNEL="smtp",
        CONSENTRY_SMTP_URLS=f"smtp://127.0.0.1:{smtp_port}",
    )
    env.update({f"CONSENTRY_{k.upper()}": str(v) for k, v in settings.items()})
    return env


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def says(self, text: str) -> Callable[[], bool]:
        """A condition for ``wait_for``: its output contains ``text``."""
        return lambda: text in self.output()

    def alive(self) -> bool:
        """True while it runs; a process that exited early fails the test."""
        code = self.popen.poll()
        assert code is None, f"{self.name} exited {code} early"
        return True

    def signal(self, sig: int) -> None:
        """To the process group it leads (a Celery worker's pool children included)."""
        if self.popen.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(timeout=30)
        # Children that outlived their parent belong to the same group.
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    def stop(self, grace: float = 15.0) -> None:
        """Ask it to finish (SIGTERM to the leader only: a Celery worker then lets its pool
        finish the running task), then kill what is left."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=grace)
        self.kill()


class Processes:
    """``consentry`` subprocesses of one test: all killed on exit; on an error their output is
    printed (pytest shows it with the failure)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[Process] = []

    def start(
        self, name: str, args: list[str], env: dict[str, str], cwd: Path | None = None
    ) -> Process:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen(  # noqa: S603  (our own console script, fixed arguments)
                [CONSENTRY, *args],
                env=env,
                cwd=cwd or self.log_dir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = Process(name, popen, log_path)
        self.started.append(process)
        return process

    def run(self, name: str, args: list[str], env: dict[str, str], timeout: float) -> Process:
        """Start and wait for it; a non-zero exit or a timeout fails."""
        process = self.start(name, args, env)
        try:
            code = process.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError(
                f"consentry {' '.join(args)} did not finish in {timeout}s"
            ) from None
        assert code == 0, f"consentry {' '.join(args)} exited {code}:\n{process.output()}"
        return process

    def dump(self) -> None:
        for p in self.started:
            print(f"----- {p.name} (exit {p.popen.poll()}) -----\n{p.output()}")  # noqa: T201

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for p in self.started:
            p.kill()
        if exc_type is not None:
            self.dump()


def wait_for(condition: Callable[[], bool], timeout: float, what: str, every: float = 0.05) -> None:
    """Poll until ``condition()``; fail (never hang) after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
