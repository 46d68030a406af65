"""Repositories for what a send is made of: sender domains, templates, lists and campaigns."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from consentry.domain.campaigns import (
    AudienceFilter,
    Campaign,
    CampaignNotFound,
    ListNotFound,
    SenderDomain,
)
from consentry.domain.delivery import CampaignStatus
from consentry.domain.errors import AlreadyExists, ContactNotFound
from consentry.domain.model import Channel
from consentry.domain.templates import Template, TemplateNotFound
from consentry.persistence.driver import DriverStatement
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import (
    campaigns,
    contact_list_members,
    contact_lists,
    contacts,
    sender_domains,
    templates,
)

# Read for every confirmation request (which domain signs it), so built once.
_DOMAINS = DriverStatement(
    select(sender_domains)
    .where(sender_domains.c.tenant_id == bindparam("tenant"))
    .order_by(sender_domains.c.domain)
)


class SqlSenderDomains:
    def __init__(self, conn: Connection, crypto: FieldCrypto) -> None:
        self._conn = conn
        self._crypto = crypto

    def add(self, domain: SenderDomain, dkim_private_pem: str | None) -> None:
        try:
            self._conn.execute(
                insert(sender_domains).values(
                    id=domain.id,
                    tenant_id=domain.tenant_id,
                    domain=domain.domain,
                    dkim_selector=domain.dkim_selector,
                    dkim_key_enc=self._crypto.seal(
                        domain.tenant_id, "sender_domains.dkim_key", dkim_private_pem
                    ),
                    created_at=domain.created_at,
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists(f"{domain.domain} is already registered", field="domain") from exc

    @staticmethod
    def _domain(row: Any) -> SenderDomain:
        return SenderDomain(
            id=row.id,
            tenant_id=row.tenant_id,
            domain=row.domain,
            created_at=row.created_at,
            dkim_selector=row.dkim_selector,
            has_dkim_key=row.dkim_key_enc is not None,
        )

    def list(self, tenant_id: uuid.UUID) -> list[SenderDomain]:
        return [self._domain(r) for r in _DOMAINS.rows(self._conn, {"tenant": tenant_id})]

    def get(self, tenant_id: uuid.UUID, domain: str) -> tuple[SenderDomain, str | None] | None:
        """The registered domain and its DKIM private key (PEM), or None if not registered."""
        row = self._conn.execute(
            select(sender_domains).where(
                sender_domains.c.tenant_id == tenant_id, sender_domains.c.domain == domain
            )
        ).one_or_none()
        if row is None:
            return None
        pem = self._crypto.open(tenant_id, "sender_domains.dkim_key", row.dkim_key_enc)
        return self._domain(row), pem


class SqlTemplates:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, template: Template) -> None:
        try:
            self._conn.execute(
                insert(templates).values(
                    id=template.id,
                    tenant_id=template.tenant_id,
                    topic_id=template.topic_id,
                    channel=template.channel.value,
                    name=template.name,
                    subject=template.subject,
                    text=template.text,
                    html=template.html,
                    whatsapp_template=template.whatsapp_template,
                    whatsapp_language=template.whatsapp_language,
                    whatsapp_parameters=json.dumps(list(template.whatsapp_parameters)),
                    created_at=template.created_at,
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists(f"a template named {template.name!r} exists", field="name") from exc

    @staticmethod
    def _template(row: Any) -> Template:
        return Template(
            id=row.id,
            tenant_id=row.tenant_id,
            topic_id=row.topic_id,
            channel=Channel(row.channel),
            name=row.name,
            text=row.text,
            subject=row.subject,
            html=row.html,
            whatsapp_template=row.whatsapp_template,
            whatsapp_language=row.whatsapp_language,
            whatsapp_parameters=tuple(json.loads(row.whatsapp_parameters)),
            created_at=row.created_at,
        )

    def get(self, tenant_id: uuid.UUID, template_id: uuid.UUID) -> Template:
        row = self._conn.execute(
            select(templates).where(
                templates.c.tenant_id == tenant_id, templates.c.id == template_id
            )
        ).one_or_none()
        if row is None:
            raise TemplateNotFound(f"template {template_id} not found", field="template")
        return self._template(row)

    def by_name(self, tenant_id: uuid.UUID, name: str) -> Template:
        row = self._conn.execute(
            select(templates).where(templates.c.tenant_id == tenant_id, templates.c.name == name)
        ).one_or_none()
        if row is None:
            raise TemplateNotFound(f"template {name!r} not found", field="template")
        return self._template(row)

    def list(self, tenant_id: uuid.UUID) -> list[Template]:
        rows = self._conn.execute(
            select(templates).where(templates.c.tenant_id == tenant_id).order_by(templates.c.name)
        )
        return [self._template(r) for r in rows]


class SqlContactLists:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def create(self, tenant_id: uuid.UUID, list_id: uuid.UUID, name: str, at: datetime) -> None:
        try:
            self._conn.execute(
                insert(contact_lists).values(
                    id=list_id, tenant_id=tenant_id, name=name, created_at=at
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists(f"a list named {name!r} exists", field="name") from exc

    def get_id(self, tenant_id: uuid.UUID, name_or_id: str) -> uuid.UUID:
        query = select(contact_lists.c.id).where(contact_lists.c.tenant_id == tenant_id)
        try:
            found = self._conn.execute(
                query.where(contact_lists.c.id == uuid.UUID(name_or_id))
            ).scalar_one_or_none()
        except ValueError:
            found = None
        if found is None:
            found = self._conn.execute(
                query.where(contact_lists.c.name == name_or_id)
            ).scalar_one_or_none()
        if found is None:
            raise ListNotFound(f"list {name_or_id!r} not found", field="list")
        return uuid.UUID(str(found))

    def add_members(
        self, tenant_id: uuid.UUID, list_id: uuid.UUID, contact_ids: list[uuid.UUID]
    ) -> int:
        """Add contacts of this tenant; unknown ids raise, existing members are skipped."""
        wanted = set(contact_ids)
        known = set(
            self._conn.execute(
                select(contacts.c.id).where(
                    contacts.c.tenant_id == tenant_id, contacts.c.id.in_(list(wanted))
                )
            ).scalars()
        )
        missing = wanted - known
        if missing:
            raise ContactNotFound(f"contact {sorted(missing)[0]} not found", field="contacts")
        present = set(
            self._conn.execute(
                select(contact_list_members.c.contact_id).where(
                    contact_list_members.c.list_id == list_id,
                    contact_list_members.c.contact_id.in_(list(wanted)),
                )
            ).scalars()
        )
        new = [{"list_id": list_id, "contact_id": c} for c in sorted(wanted - present)]
        if new:
            self._conn.execute(insert(contact_list_members), new)
        return len(new)

    def forget_contact(self, tenant_id: uuid.UUID, contact_id: uuid.UUID) -> int:
        """Erasure: the contact leaves every list of its tenant."""
        lists = select(contact_lists.c.id).where(contact_lists.c.tenant_id == tenant_id)
        return int(
            self._conn.execute(
                delete(contact_list_members).where(
                    contact_list_members.c.contact_id == contact_id,
                    contact_list_members.c.list_id.in_(lists),
                )
            ).rowcount
        )


def _status_times(status: CampaignStatus, at: datetime) -> dict[str, Any]:
    if status is CampaignStatus.RUNNING:
        return {"launched_at": at}
    if status in (CampaignStatus.CANCELLED, CampaignStatus.COMPLETED):
        return {"finished_at": at}
    return {}


class SqlCampaigns:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, campaign: Campaign) -> None:
        try:
            self._conn.execute(
                insert(campaigns).values(
                    id=campaign.id,
                    tenant_id=campaign.tenant_id,
                    name=campaign.name,
                    topic_id=campaign.topic_id,
                    channel=campaign.channel.value,
                    template_id=campaign.template_id,
                    list_id=campaign.list_id,
                    audience_filter=json.dumps(
                        {k: list(v) for k, v in campaign.audience.fields.items()}
                    ),
                    from_address=campaign.from_address,
                    frequency_cap=campaign.frequency_cap,
                    status=campaign.status.value,
                    scheduled_at=campaign.scheduled_at,
                    created_by=campaign.created_by,
                    created_at=campaign.created_at,
                )
            )
        except IntegrityError as exc:
            raise AlreadyExists(f"a campaign named {campaign.name!r} exists", field="name") from exc

    @staticmethod
    def _campaign(row: Any) -> Campaign:
        return Campaign(
            id=row.id,
            tenant_id=row.tenant_id,
            name=row.name,
            topic_id=row.topic_id,
            channel=Channel(row.channel),
            template_id=row.template_id,
            status=CampaignStatus(row.status),
            created_by=row.created_by,
            created_at=row.created_at,
            list_id=row.list_id,
            audience=AudienceFilter(
                {k: tuple(v) for k, v in json.loads(row.audience_filter).items()}
            ),
            from_address=row.from_address,
            frequency_cap=row.frequency_cap,
            scheduled_at=row.scheduled_at,
            plan_counts=None if row.plan_counts is None else json.loads(row.plan_counts),
            planned_at=row.planned_at,
            launched_at=row.launched_at,
            finished_at=row.finished_at,
        )

    def get(
        self, tenant_id: uuid.UUID | None, ref: str | uuid.UUID, *, lock: bool = False
    ) -> Campaign:
        """By id or by name (names are unique per tenant); tenant None: any tenant, by id.
        ``lock``: the row stays locked until the transaction ends (PostgreSQL; SQLite's writer
        already holds the database)."""
        query = select(campaigns)
        if lock:
            query = query.with_for_update()
        if tenant_id is not None:
            query = query.where(campaigns.c.tenant_id == tenant_id)
        try:
            as_id = ref if isinstance(ref, uuid.UUID) else uuid.UUID(ref)
            row = self._conn.execute(query.where(campaigns.c.id == as_id)).one_or_none()
        except ValueError:
            row = None
        if row is None and tenant_id is not None and isinstance(ref, str):
            row = self._conn.execute(query.where(campaigns.c.name == ref)).one_or_none()
        if row is None:
            raise CampaignNotFound(f"campaign {ref} not found", field="campaign")
        return self._campaign(row)

    def set_status(
        self,
        campaign_id: uuid.UUID,
        expected: CampaignStatus,
        status: CampaignStatus,
        at: datetime,
    ) -> bool:
        """Compare-and-set: False if another actor changed the status first."""
        result = self._conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id, campaigns.c.status == expected.value)
            .values(status=status.value, **_status_times(status, at))
        )
        return result.rowcount == 1

    def set_planned(self, campaign_id: uuid.UUID, counts: dict[str, int], at: datetime) -> None:
        self._conn.execute(
            update(campaigns)
            .where(campaigns.c.id == campaign_id)
            .values(plan_counts=json.dumps(counts, sort_keys=True), planned_at=at)
        )

    def due(self, now: datetime) -> list[tuple[uuid.UUID, uuid.UUID]]:
        """(tenant, campaign) of scheduled campaigns whose time has come."""
        rows = self._conn.execute(
            select(campaigns.c.tenant_id, campaigns.c.id).where(
                campaigns.c.status == CampaignStatus.SCHEDULED.value,
                campaigns.c.scheduled_at <= now,
            )
        )
        return [(r.tenant_id, r.id) for r in rows]

    def running(self) -> list[uuid.UUID]:
        rows = self._conn.execute(
            select(campaigns.c.id).where(campaigns.c.status == CampaignStatus.RUNNING.value)
        )
        return [r.id for r in rows]

    def list(self, tenant_id: uuid.UUID) -> list[Campaign]:
        rows = self._conn.execute(
            select(campaigns)
            .where(campaigns.c.tenant_id == tenant_id)
            .order_by(campaigns.c.created_at.desc())
        )
        return [self._campaign(r) for r in rows]
