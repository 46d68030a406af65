"""Deliveries: planned set-based from the gate's SQL twin, claimed in batches, settled in bulk.

Claiming takes rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (SQLite has one writer, whose
``BEGIN IMMEDIATE`` serialises claims) and marks them with a lease: the owner and until when.
Every later transition is a compare-and-set on the status (and the owner where it matters), so a
worker whose lease was reaped cannot overwrite what the reaper decided.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

from sqlalchemy import (
    BigInteger,
    Connection,
    DateTime,
    String,
    TableValuedAlias,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tablesample,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.util import ClauseAdapter
from sqlalchemy.types import NullType, TypeEngine

from consentry.domain.campaigns import (
    AudienceFilter,
    Campaign,
    ClaimedDelivery,
    Delivery,
    DeliveryNotFound,
    Outcome,
    PlanCounts,
    RefusedSample,
    Simulation,
)
from consentry.domain.delivery import CampaignStatus, DeliveryStatus
from consentry.domain.errors import AlreadyExists
from consentry.domain.gate import Intent, Verdict
from consentry.domain.model import Category, Channel, Tenant
from consentry.domain.suppression import SuppressionReason, reason_code
from consentry.persistence.eligibility import (
    PLANNING_WORK_MEM,
    audience_settings,
    eligibility_select,
    primary_reason,
    summary_select,
)
from consentry.persistence.rows import FieldCrypto
from consentry.persistence.tables import (
    campaigns,
    captured_messages,
    contact_list_members,
    contacts,
    deliveries,
)
from consentry.persistence.types import pg_ints, pg_stamps, pg_texts, pg_uuids, uuid_among

D = deliveries.c
S = DeliveryStatus
_PENDING = (S.PLANNED.value, S.QUEUED.value, S.DEFERRED.value, S.SENDING.value)


# The element types of ``_unnest``'s arrays, built once: a type made per statement is walked
# again for every statement's cache key.
_BIGINT, _TEXT, _UUID, _STAMP = BigInteger(), String(), Uuid(), DateTime(timezone=True)
_ARRAYS: dict[int, ARRAY[Any]] = {id(t): ARRAY(t) for t in (_BIGINT, _TEXT, _UUID, _STAMP)}
_UNTYPED = NullType()
_LITERALS: dict[int, Callable[[list[Any]], str]] = {
    id(_BIGINT): pg_ints,
    id(_TEXT): pg_texts,
    id(_UUID): pg_uuids,
    id(_STAMP): pg_stamps,
}


def _unnest(**columns: tuple[TypeEngine[Any], list[Any]]) -> TableValuedAlias:
    """PostgreSQL: rows from parallel arrays, ``unnest(CAST(:a AS t[]), ...) AS v(a, ...)``:
    one statement updates a window's rows, where an executemany sends one UPDATE per row. Each
    array goes as one literal string (``persistence.types.pg_ints`` and its siblings) and the
    CAST gives it its type (a list of ints would otherwise arrive as ``numeric[]``, and
    ``id = numeric`` cannot use the primary key)."""
    arrays = []
    for name, (type_, values) in columns.items():
        literal_of = _LITERALS[id(type_)]
        arrays.append(
            cast(bindparam(f"u_{name}", literal_of(values), type_=_UNTYPED), _ARRAYS[id(type_)])
        )
    return func.unnest(*arrays).table_valued(*columns).render_derived()


def _by_primary_key(conn: Connection) -> None:
    """For the rest of this transaction (a window's own, on PostgreSQL): rows by primary key,
    joined to the window's arrays by hash. Estimating no row of the lease owner (statistics
    taken while none had a lease, or none taken since the table was refilled), the planner
    scanned 40,000 deliveries rather than look up 256, and compared every row with every element
    of the arrays in a nested loop: 15-20 ms a statement (65,280 comparisons) where this takes 2."""
    conn.exec_driver_sql("SET LOCAL enable_seqscan = off; SET LOCAL enable_nestloop = off")


def _among_ids(ids: list[int]) -> ColumnElement[bool]:
    """``id = ANY(ids)``, beside the join with a window's arrays: it makes the primary key the
    way to the window's rows whatever the statistics say. Without it, statistics taken while no
    row had a lease (right after a plan) let PostgreSQL expect no row of the lease owner, scan
    the pending deliveries first and compare each with every element of the arrays: 50-90 ms a
    window of 256 where the primary key takes 5."""
    return D.id == any_(
        cast(bindparam("u_ids", pg_ints(ids), type_=_UNTYPED), _ARRAYS[id(_BIGINT)])
    )


def _reasons(text: str | None) -> tuple[str, ...]:
    return tuple(text.split(",")[:-1]) if text else ()


def _delivery(row: Any) -> Delivery:
    return Delivery(
        id=row.id,
        tenant_id=row.tenant_id,
        campaign_id=row.campaign_id,
        contact_id=row.contact_id,
        topic_id=row.topic_id,
        template_id=row.template_id,
        channel=Channel(row.channel),
        status=DeliveryStatus(row.status),
        reasons=_reasons(row.reasons),
        attempts=row.attempts,
        planned_at=row.planned_at,
        updated_at=row.updated_at,
        consent_event_id=row.consent_event_id,
        next_attempt_at=row.next_attempt_at,
        message_id=row.message_id,
        provider_message_id=row.provider_message_id,
        error_code=row.error_code,
        error_detail=row.error_detail,
        sent_at=row.sent_at,
        idempotency_key=row.idempotency_key,
    )


@dataclass(frozen=True, slots=True)
class PlanSplit:
    """How a large campaign is planned in parts on PostgreSQL (``SqlDeliveries.plan``): at most
    ``parts`` connections at once (1: one statement), none of them for fewer than
    ``min_part_rows`` recipients, the audience's size and pivots taken from a
    ``sample_percent`` sample of its contacts."""

    parts: int = 1
    min_part_rows: int = 100_000
    sample_percent: float = 1.0


ONE_STATEMENT = PlanSplit()


class SqlDeliveries:
    def __init__(
        self, conn: Connection, crypto: FieldCrypto, split: PlanSplit = ONE_STATEMENT
    ) -> None:
        self._conn = conn
        self._crypto = crypto
        self._split = split
        self._postgres = conn.dialect.name == "postgresql"

    # -- planning ------------------------------------------------------------------------------

    @staticmethod
    def audience(list_id: uuid.UUID | None, audience: AudienceFilter) -> ColumnElement[bool] | None:
        """The SQL condition on ``contacts`` for a campaign's list and field filter."""
        parts: list[ColumnElement[bool]] = []
        if list_id is not None:
            parts.append(
                exists().where(
                    contact_list_members.c.list_id == list_id,
                    contact_list_members.c.contact_id == contacts.c.id,
                )
            )
        for name, values in sorted(audience.fields.items()):
            parts.append(contacts.c[name].in_(list(values)))
        return and_(*parts) if parts else None

    def plan(
        self,
        tenant: Tenant,
        campaign: Campaign,
        intent: Intent,
        now: datetime,
        *,
        queue: bool = False,
    ) -> PlanCounts:
        """Every audience member's delivery with its decision, set-based; returns recipients
        per primary reason ("ALLOW" for those planned to go) and rows per status. With
        ``queue`` the rows that may go are written ``queued`` at once (a campaign launched
        now), which spares an UPDATE of every one of them.

        Rows a planning of this campaign left behind without launching it (below) go first.
        On PostgreSQL a large audience is planned in parts (``PlanSplit``): contact-id ranges
        cut at pivots from a sample, one ``INSERT ... SELECT`` each, at the same time. The
        first range is planned in the caller's transaction; the others each commit on a
        connection of their own, since PostgreSQL runs an ``INSERT ... SELECT`` on one core.
        The campaign is launched only by the caller's commit, which also holds the campaign's
        row locked throughout: claims take only running campaigns' rows, so rows of parts
        whose launch then failed are never sent, and the next launch removes them here."""
        audience = self.audience(campaign.list_id, campaign.audience)
        ranges = self._ranges(tenant.id, audience) if self._postgres else []
        if len(ranges) < 2:
            self.discard(campaign.id)
            return self._plan_rows(self._conn, tenant, campaign, intent, now, queue, audience)
        engine = self._conn.engine
        # Committed before the parts start (the caller's lock on the campaign keeps any other
        # launch out meanwhile): a part inserting a key this transaction had deleted would wait
        # for this transaction, which waits for the part.
        with engine.begin() as conn:
            SqlDeliveries(conn, self._crypto).discard(campaign.id)

        def part(within: ColumnElement[bool]) -> PlanCounts:
            with engine.connect() as conn, conn.begin():
                return self._plan_rows(conn, tenant, campaign, intent, now, queue, within)

        with ThreadPoolExecutor(len(ranges) - 1, thread_name_prefix="plan-part") as pool:
            others = [pool.submit(part, within) for within in ranges[1:]]
            try:
                counts = [
                    self._plan_rows(self._conn, tenant, campaign, intent, now, queue, ranges[0])
                ]
            finally:
                wait(others)  # no part outlives the caller's transaction (and its lock)
            counts += [future.result() for future in others]
        by_reason: Counter[str] = Counter()
        by_status: Counter[str] = Counter()
        for each in counts:
            by_reason.update(each.by_reason)
            by_status.update(each.by_status)
        return PlanCounts(dict(by_reason), dict(by_status))

    def _ranges(
        self, tenant_id: uuid.UUID, audience: ColumnElement[bool] | None
    ) -> list[ColumnElement[bool]]:
        """The audience cut into contact-id ranges of about equal size, from a sample of its
        ids (``TABLESAMPLE SYSTEM``: whole pages, a few milliseconds for a million contacts);
        one range, or none, when the audience is too small to be worth more connections."""
        split = self._split
        if split.parts < 2:
            return []
        sample = tablesample(contacts, func.system(split.sample_percent), name="sampled")
        query = select(sample.c.id).where(sample.c.tenant_id == tenant_id)
        if audience is not None:
            query = query.where(ClauseAdapter(sample).traverse(audience))
        ids = sorted(self._conn.execute(query).scalars())
        estimate = len(ids) * 100 / split.sample_percent
        parts = min(split.parts, int(estimate // max(split.min_part_rows, 1)))
        if parts < 2:
            return []
        pivots = sorted({ids[len(ids) * i // parts] for i in range(1, parts)})
        cid = contacts.c.id
        bounds: list[ColumnElement[bool]] = [cid < pivots[0]]
        bounds += [and_(cid >= low, cid < high) for low, high in pairwise(pivots)]
        bounds.append(cid >= pivots[-1])
        return [bound if audience is None else and_(audience, bound) for bound in bounds]

    def _plan_rows(  # noqa: PLR0917  (the plan's facts, for one range of it)
        self,
        conn: Connection,
        tenant: Tenant,
        campaign: Campaign,
        intent: Intent,
        now: datetime,
        queue: bool,
        audience: ColumnElement[bool] | None,
    ) -> PlanCounts:
        """One INSERT ... SELECT of the deliveries of ``audience`` on ``conn``."""
        audience_settings(conn, work_mem=PLANNING_WORK_MEM)
        campaign_id, template_id = campaign.id, campaign.template_id
        gate = eligibility_select(conn, tenant, intent, now, audience=audience).subquery("g")
        # allow -> planned (queued); defer -> the same, due at its time; deny -> suppressed.
        going = S.QUEUED if queue else S.PLANNED
        status = case((gate.c.verdict == Verdict.DENY.value, S.SUPPRESSED.value), else_=going.value)
        defer_until: ColumnElement[Any] = gate.c.defer_until
        if self._postgres:  # the quiet-hours lookup joins in text; SQLite stores text anyway
            defer_until = cast(defer_until, DateTime(timezone=True))
        source = select(
            literal(tenant.id, deliveries.c.tenant_id.type),
            literal(campaign_id, deliveries.c.campaign_id.type),
            gate.c.contact_id,
            literal(intent.topic_id, deliveries.c.topic_id.type),
            literal(template_id, deliveries.c.template_id.type),
            literal(intent.channel.value),
            literal(intent.category.value),
            status,
            gate.c.reasons,
            gate.c.consent_event_id,
            defer_until,
            literal(0),
            literal(now, deliveries.c.planned_at.type),
            literal(now, deliveries.c.updated_at.type),
        )
        columns = ["tenant_id", "campaign_id", "contact_id", "topic_id", "template_id",
                   "channel", "category", "status", "reasons", "consent_event_id",
                   "next_attempt_at", "attempts", "planned_at", "updated_at"]  # fmt: skip
        planned = insert(deliveries).from_select(columns, source)
        if self._postgres:
            # Counted from what the INSERT returns, in the same statement: no second pass over
            # the million rows just written.
            written = planned.returning(D.status, D.reasons).cte("written")
            rows = conn.execute(
                select(written.c.status, written.c.reasons, func.count()).group_by(
                    written.c.status, written.c.reasons
                )
            )
        else:
            conn.execute(planned)
            rows = conn.execute(
                select(D.status, D.reasons, func.count())
                .where(D.campaign_id == campaign_id)
                .group_by(D.status, D.reasons)
            )
        by_reason: dict[str, int] = {}
        by_status: dict[str, int] = {}
        for status_value, reasons, n in rows:
            first = _reasons(reasons)[:1]  # deferred rows carry QUIET_HOURS
            key = first[0] if first else "ALLOW"
            by_reason[key] = by_reason.get(key, 0) + int(n)
            by_status[status_value] = by_status.get(status_value, 0) + int(n)
        return PlanCounts(by_reason, by_status)

    def simulate(
        self,
        tenant: Tenant,
        intent: Intent,
        now: datetime,
        campaign: Campaign,
        sample: int = 20,
    ) -> Simulation:
        """Counts by primary reason and a sample of refused recipients; writes nothing."""
        audience_settings(self._conn)
        audience = self.audience(campaign.list_id, campaign.audience)
        prefix, query = summary_select(self._conn, tenant, intent, now, audience)
        by_reason: dict[str, int] = {}
        for row in self._conn.execute(query):
            reason = primary_reason(prefix, row.reason)
            by_reason[reason] = by_reason.get(reason, 0) + int(row.contacts)
        gate = eligibility_select(self._conn, tenant, intent, now, audience=audience).subquery()
        refused = self._conn.execute(
            select(gate.c.contact_id, gate.c.reasons)
            .where(gate.c.verdict == Verdict.DENY.value)
            .order_by(gate.c.contact_id)
            .limit(sample)
        )
        return Simulation(
            total=sum(by_reason.values()),
            eligible=by_reason.get("ALLOW", 0),
            deferred=by_reason.get("QUIET_HOURS", 0),
            by_reason=by_reason,
            refused_sample=tuple(RefusedSample(r.contact_id, _reasons(r.reasons)) for r in refused),
        )

    def queue_planned(self, campaign_id: uuid.UUID, now: datetime) -> int:
        result = self._conn.execute(
            update(deliveries)
            .where(D.campaign_id == campaign_id, D.status == S.PLANNED.value)
            .values(status=S.QUEUED.value, updated_at=now)
        )
        return int(result.rowcount)

    def discard(self, campaign_id: uuid.UUID) -> int:
        """Every delivery row of a campaign that was never launched: what a launch that failed
        after some of its parts committed left behind (see ``plan``)."""
        return int(
            self._conn.execute(delete(deliveries).where(D.campaign_id == campaign_id)).rowcount
        )

    def cancel_pending(self, campaign_id: uuid.UUID, now: datetime) -> int:
        """Everything not yet in flight is cancelled; in-flight messages finish."""
        result = self._conn.execute(
            update(deliveries)
            .where(
                D.campaign_id == campaign_id,
                D.status.in_([S.PLANNED.value, S.QUEUED.value, S.DEFERRED.value]),
            )
            .values(
                status=S.CANCELLED.value,
                next_attempt_at=None,
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            )
        )
        return int(result.rowcount)

    def forget_contact(self, tenant_id: uuid.UUID, contact_id: uuid.UUID, now: datetime) -> int:
        """Erasure: the contact's messages not yet in flight are suppressed (reason
        ``SUPPRESSED_ERASED``), the data sealed in their transactional messages goes, and so do
        the copies the embedded ``capture`` channel kept of what was sent to them. Returns how
        many messages were stopped. Found through ``(campaign_id, contact_id)`` for each of the
        tenant's campaigns and the transactional index, not by scanning every delivery."""
        campaign_ids = list(
            self._conn.execute(
                select(campaigns.c.id).where(campaigns.c.tenant_id == tenant_id)
            ).scalars()
        )
        found = select(D.id).where(
            D.tenant_id == tenant_id, D.contact_id == contact_id, D.campaign_id.is_(None)
        )
        ids = list(self._conn.execute(found).scalars())
        if campaign_ids:
            in_campaigns = select(D.id).where(
                D.campaign_id.in_(campaign_ids), D.contact_id == contact_id
            )
            ids += self._conn.execute(in_campaigns).scalars()
        if not ids:
            return 0
        stopped = self._conn.execute(
            update(deliveries)
            .where(
                D.id.in_(ids),
                D.status.in_([S.PLANNED.value, S.QUEUED.value, S.DEFERRED.value]),
            )
            .values(
                status=S.SUPPRESSED.value,
                reasons=f"{reason_code(SuppressionReason.ERASED)},",
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            )
        ).rowcount
        self._conn.execute(
            update(deliveries)
            .where(D.id.in_(ids), D.variables_enc.is_not(None))
            .values(variables_enc=None)
        )
        self._conn.execute(
            captured_messages.delete().where(
                captured_messages.c.tenant_id == tenant_id,
                captured_messages.c.delivery_id.in_(ids),
            )
        )
        return int(stopped)

    def forget_captured_to(self, tenant_id: uuid.UUID, point_keys: Sequence[bytes]) -> int:
        """The tenant's captured copies of what was sent to these addresses go, also those of
        messages that belong to no delivery (confirmation requests, preference links)."""
        if not point_keys:
            return 0
        c = captured_messages.c
        return int(
            self._conn.execute(
                captured_messages.delete().where(
                    c.tenant_id == tenant_id, c.recipient_key.in_(list(point_keys))
                )
            ).rowcount
        )

    # -- transactional messages ----------------------------------------------------------------

    def add_message(
        self,
        *,
        tenant_id: uuid.UUID,
        contact_id: uuid.UUID,
        topic_id: uuid.UUID,
        template_id: uuid.UUID,
        channel: Channel,
        category: Category,
        idempotency_key: str | None,
        variables: Mapping[str, Any],
        status: DeliveryStatus,
        reasons: Sequence[str],
        consent_event_id: uuid.UUID | None,
        next_attempt_at: datetime | None,
        now: datetime,
    ) -> int:
        sealed = self._crypto.seal(tenant_id, "deliveries.variables", json.dumps(dict(variables)))
        try:
            result = self._conn.execute(
                insert(deliveries)
                .values(
                    tenant_id=tenant_id,
                    contact_id=contact_id,
                    topic_id=topic_id,
                    template_id=template_id,
                    channel=channel.value,
                    category=category.value,
                    status=status.value,
                    reasons="".join(f"{r}," for r in reasons),
                    consent_event_id=consent_event_id,
                    next_attempt_at=next_attempt_at,
                    attempts=0,
                    idempotency_key=idempotency_key,
                    variables_enc=sealed,
                    planned_at=now,
                    updated_at=now,
                )
                .returning(D.id)
            )
        except IntegrityError as exc:
            raise AlreadyExists("a message with this idempotency key exists") from exc
        return int(result.scalar_one())

    def by_idempotency_key(self, tenant_id: uuid.UUID, key: str) -> Delivery | None:
        row = self._conn.execute(
            select(deliveries).where(D.tenant_id == tenant_id, D.idempotency_key == key)
        ).one_or_none()
        return None if row is None else _delivery(row)

    def get(self, tenant_id: uuid.UUID, delivery_id: int) -> Delivery:
        row = self._conn.execute(
            select(deliveries).where(D.tenant_id == tenant_id, D.id == delivery_id)
        ).one_or_none()
        if row is None:
            raise DeliveryNotFound(f"delivery {delivery_id} not found", field="delivery")
        return _delivery(row)

    def of_campaign(
        self, campaign_id: uuid.UUID, status: DeliveryStatus | None, after: int, limit: int
    ) -> list[Delivery]:
        query = select(deliveries).where(D.campaign_id == campaign_id, D.id > after)
        if status is not None:
            query = query.where(D.status == status.value)
        return [_delivery(r) for r in self._conn.execute(query.order_by(D.id).limit(limit))]

    # -- dispatch ------------------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        now: datetime,
        lease_until: datetime,
        limit: int,
        campaign_id: uuid.UUID | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries of running campaigns (or transactional ones):
        retries, deferrals whose time has come and rows whose lease ran out first, oldest first;
        then transactional messages not yet tried; then each running campaign's untried
        deliveries in contact order, from where its last claim stopped.

        The first steps walk ``ix_deliveries_due`` (status, next_attempt_at) and stop at their
        limit; the last walks ``(campaign_id, contact_id)`` from the campaign's cursor
        (``campaigns.claimed_through``). So a claim costs the same at the end of a
        million-recipient campaign as at its start, and a plan writes no due entry for a row
        that has not been tried. Every claimed row's next attempt is its lease's end: should its
        worker stop, the row is due again then, by time, behind the cursor."""
        running = select(campaigns.c.id).where(campaigns.c.status == CampaignStatus.RUNNING.value)
        free = or_(D.lease_until.is_(None), D.lease_until < now)
        if campaign_id is not None:
            scope = and_(D.campaign_id == campaign_id, D.campaign_id.in_(running))
        else:
            scope = or_(D.campaign_id.is_(None), D.campaign_id.in_(running))
        steps = [
            and_(D.status == S.QUEUED.value, D.next_attempt_at <= now),  # retries, lapsed leases
            and_(D.status == S.DEFERRED.value, D.next_attempt_at <= now),  # quiet hours, caps
        ]
        if campaign_id is None:  # transactional messages not yet tried
            steps.append(
                and_(
                    D.status.in_([S.QUEUED.value, S.DEFERRED.value]),
                    D.next_attempt_at.is_(None),
                    D.campaign_id.is_(None),
                )
            )
        if self._postgres:
            # Each step must walk its index in its order and stop at its limit. Right after a
            # large plan the statistics do not know the new rows yet (until autovacuum has
            # analysed them), and the planner then sorted every pending delivery of the campaign
            # to take 2,000 (1.5 s a claim on a 975,000-recipient campaign). For this
            # transaction (the claim's own), a sort is the last resort.
            self._conn.exec_driver_sql("SET LOCAL enable_sort = off")
        rows: list[Any] = []
        for step in steps:
            if len(rows) >= limit:
                break
            rows += self._claim_step(owner, lease_until, and_(step, free, scope), limit - len(rows))
        if len(rows) < limit:
            rows += self._claim_untried(owner, lease_until, free, limit - len(rows), campaign_id)
        claimed = []
        for r in sorted(rows, key=lambda r: r.id):
            variables = self._crypto.open(r.tenant_id, "deliveries.variables", r.variables_enc)
            claimed.append(
                ClaimedDelivery(
                    id=r.id,
                    tenant_id=r.tenant_id,
                    campaign_id=r.campaign_id,
                    contact_id=r.contact_id,
                    topic_id=r.topic_id,
                    template_id=r.template_id,
                    channel=Channel(r.channel),
                    category=Category(r.category),
                    attempts=r.attempts,
                    message_id=r.message_id,
                    variables=json.loads(variables) if variables else {},
                )
            )
        return claimed

    def _claim_untried(
        self,
        owner: str,
        lease_until: datetime,
        free: ColumnElement[bool],
        limit: int,
        campaign_id: uuid.UUID | None,
    ) -> list[Any]:
        """Running campaigns' deliveries not yet tried, each campaign from its cursor on: the
        campaign's row is locked while its cursor moves, so claims of one campaign take turns
        here and none passes a row another left behind."""
        c = campaigns.c
        query = select(c.id).where(c.status == CampaignStatus.RUNNING.value)
        if campaign_id is not None:
            query = query.where(c.id == campaign_id)
        rows: list[Any] = []
        for cid in list(self._conn.execute(query.order_by(c.id)).scalars()):
            if len(rows) >= limit:
                break
            locked = select(c.claimed_through).where(
                c.id == cid, c.status == CampaignStatus.RUNNING.value
            )
            if self._postgres:
                locked = locked.with_for_update()
            cursor = self._conn.execute(locked).one_or_none()
            if cursor is None:  # no longer running
                continue
            untried = and_(
                D.campaign_id == cid,
                D.status.in_([S.QUEUED.value, S.DEFERRED.value]),
                D.next_attempt_at.is_(None),
                free,
            )
            if cursor.claimed_through is not None:
                untried = and_(untried, D.contact_id > cursor.claimed_through)
            taken = self._claim_step(
                owner, lease_until, untried, limit - len(rows), by_contact=True
            )
            if taken:
                self._conn.execute(
                    update(campaigns)
                    .where(c.id == cid)
                    .values(claimed_through=max(r.contact_id for r in taken))
                )
            rows += taken
        return rows

    def _claim_step(
        self,
        owner: str,
        lease_until: datetime,
        due: ColumnElement[bool],
        limit: int,
        *,
        by_contact: bool = False,
    ) -> list[Any]:
        """Lease the first ``limit`` rows matching ``due``: by the due index's order, skipping
        rows another transaction holds; or, ``by_contact`` (a campaign's untried rows, claimed
        under its cursor's lock), in contact order, waiting for a row held elsewhere rather than
        leaving it behind the cursor."""
        order = (D.contact_id,) if by_contact else (D.status, D.next_attempt_at)
        pick = select(D.id).where(due).order_by(*order).limit(limit)
        if self._postgres:
            pick = pick.with_for_update(skip_locked=not by_contact)
        return list(
            self._conn.execute(
                update(deliveries)
                .where(D.id.in_(pick.scalar_subquery()))
                .values(lease_owner=owner, lease_until=lease_until, next_attempt_at=lease_until)
                .returning(
                    D.id,
                    D.tenant_id,
                    D.campaign_id,
                    D.contact_id,
                    D.topic_id,
                    D.template_id,
                    D.channel,
                    D.category,
                    D.attempts,
                    D.message_id,
                    D.variables_enc,
                )
            ).all()
        )

    def _held(self, owner: str) -> ColumnElement[bool]:
        return and_(
            D.id == bindparam("b_id"),
            D.lease_owner == owner,
            # No IN (...): expanding parameters cannot be used with executemany.
            or_(D.status == S.QUEUED.value, D.status == S.DEFERRED.value),
        )

    def refuse(self, owner: str, refused: Mapping[int, tuple[str, ...]], now: datetime) -> None:
        """The gate said no at dispatch: suppressed, with its reasons."""
        if not refused:
            return
        self._conn.execute(
            update(deliveries)
            .where(self._held(owner))
            .values(
                status=S.SUPPRESSED.value,
                reasons=bindparam("b_reasons"),
                next_attempt_at=None,
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            ),
            [{"b_id": i, "b_reasons": "".join(f"{r}," for r in rs)} for i, rs in refused.items()],
        )

    def defer(
        self,
        owner: str,
        deferred: Mapping[int, tuple[datetime, tuple[str, ...]]],
        now: datetime,
    ) -> None:
        if not deferred:
            return
        self._conn.execute(
            update(deliveries)
            .where(self._held(owner))
            .values(
                status=S.DEFERRED.value,
                next_attempt_at=bindparam("b_until"),
                reasons=bindparam("b_reasons"),
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            ),
            [
                {"b_id": i, "b_until": until, "b_reasons": "".join(f"{r}," for r in rs)}
                for i, (until, rs) in deferred.items()
            ],
        )

    def fail_unsent(self, owner: str, failed: Mapping[int, tuple[str, str]], now: datetime) -> None:
        """Failed before leaving (a template that does not render for this contact)."""
        if not failed:
            return
        self._conn.execute(
            update(deliveries)
            .where(self._held(owner))
            .values(
                status=S.FAILED.value,
                error_code=bindparam("b_code"),
                error_detail=bindparam("b_detail"),
                next_attempt_at=None,
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            ),
            [{"b_id": i, "b_code": c, "b_detail": d[:500]} for i, (c, d) in failed.items()],
        )

    def mark_sending(
        self,
        owner: str,
        batch: Mapping[int, tuple[str, uuid.UUID | None]],
        now: datetime,
        lease_until: datetime,
    ) -> set[int]:
        """In flight from now on, committed before the channel is called. ``batch`` maps each
        delivery to its Message-ID and authorising consent event. Returns the ids marked (a
        delivery cancelled or reaped meanwhile is not)."""
        if not batch:
            return set()
        if self._postgres:
            return self._mark_sending_pg(owner, batch, now, lease_until)
        ids = list(batch)
        self._conn.execute(
            update(deliveries)
            .where(self._held(owner))
            .values(
                status=S.SENDING.value,
                message_id=bindparam("b_message_id"),
                consent_event_id=bindparam("b_event"),
                reasons="",
                attempts=D.attempts + 1,
                updated_at=now,
                lease_until=lease_until,
            ),
            [{"b_id": i, "b_message_id": m, "b_event": e} for i, (m, e) in batch.items()],
        )
        marked = self._conn.execute(
            select(D.id).where(D.id.in_(ids), D.status == S.SENDING.value, D.lease_owner == owner)
        ).scalars()
        return set(marked)

    def _mark_sending_pg(
        self,
        owner: str,
        batch: Mapping[int, tuple[str, uuid.UUID | None]],
        now: datetime,
        lease_until: datetime,
    ) -> set[int]:
        """``mark_sending`` in one statement; RETURNING names the rows it marked."""
        _by_primary_key(self._conn)
        v = _unnest(
            id=(_BIGINT, list(batch)),
            message_id=(_TEXT, [m for m, _ in batch.values()]),
            event=(_UUID, [e for _, e in batch.values()]),
        )
        marked = self._conn.execute(
            update(deliveries)
            .where(
                D.id == v.c.id,
                _among_ids(list(batch)),
                D.lease_owner == owner,
                or_(D.status == S.QUEUED.value, D.status == S.DEFERRED.value),
            )
            .values(
                status=S.SENDING.value,
                message_id=v.c.message_id,
                consent_event_id=v.c.event,
                reasons="",
                attempts=D.attempts + 1,
                updated_at=now,
                lease_until=lease_until,
            )
            .returning(D.id)
        ).scalars()
        return set(marked)

    def record(self, owner: str, outcomes: Iterable[Outcome]) -> None:
        """The channel's answers: each row still in flight under ``owner`` takes its outcome
        (one the reaper settled meanwhile keeps what the reaper decided)."""
        outcomes = list(outcomes)
        if self._postgres and outcomes and self._all_sent_at_once(outcomes):
            self._record_sent_pg(owner, outcomes)
            return
        rows = [
            {
                "b_id": o.delivery_id,
                "b_status": o.status.value,
                "b_provider": o.provider_message_id,
                "b_code": o.error_code,
                "b_detail": None if o.error_detail is None else o.error_detail[:500],
                "b_next": o.next_attempt_at,
                "b_sent": o.at if o.status is S.SENT else None,
                "b_at": o.at,
            }
            for o in outcomes
        ]
        if not rows:
            return
        if self._postgres:
            self._record_pg(owner, rows)
            return
        self._conn.execute(
            update(deliveries)
            .where(
                D.id == bindparam("b_id"),
                D.lease_owner == owner,
                D.status == S.SENDING.value,
            )
            .values(
                status=bindparam("b_status"),
                provider_message_id=bindparam("b_provider"),
                error_code=bindparam("b_code"),
                error_detail=bindparam("b_detail"),
                next_attempt_at=bindparam("b_next"),
                sent_at=bindparam("b_sent"),
                updated_at=bindparam("b_at"),
                lease_owner=None,
                lease_until=None,
            ),
            rows,
        )

    @staticmethod
    def _all_sent_at_once(outcomes: list[Outcome]) -> bool:
        at = outcomes[0].at
        return all(
            o.status is S.SENT
            and o.at == at
            and o.error_code is None
            and o.error_detail is None
            and o.next_attempt_at is None
            for o in outcomes
        )

    def _record_sent_pg(self, owner: str, outcomes: list[Outcome]) -> None:
        """``record`` of a window that went out whole, the usual case: two arrays to send
        instead of eight (psycopg dumps every element of an array in Python)."""
        at = outcomes[0].at
        _by_primary_key(self._conn)
        v = _unnest(
            id=(_BIGINT, [o.delivery_id for o in outcomes]),
            provider=(_TEXT, [o.provider_message_id for o in outcomes]),
        )
        self._conn.execute(
            update(deliveries)
            .where(
                D.id == v.c.id,
                _among_ids([o.delivery_id for o in outcomes]),
                D.lease_owner == owner,
                D.status == S.SENDING.value,
            )
            .values(
                status=S.SENT.value,
                provider_message_id=v.c.provider,
                error_code=None,
                error_detail=None,
                next_attempt_at=None,
                sent_at=at,
                updated_at=at,
                lease_owner=None,
                lease_until=None,
            )
        )

    def _record_pg(self, owner: str, rows: list[dict[str, Any]]) -> None:
        """``record`` in one statement."""
        _by_primary_key(self._conn)
        stamp = _STAMP
        v = _unnest(
            id=(_BIGINT, [r["b_id"] for r in rows]),
            status=(_TEXT, [r["b_status"] for r in rows]),
            provider=(_TEXT, [r["b_provider"] for r in rows]),
            code=(_TEXT, [r["b_code"] for r in rows]),
            detail=(_TEXT, [r["b_detail"] for r in rows]),
            next=(stamp, [r["b_next"] for r in rows]),
            sent=(stamp, [r["b_sent"] for r in rows]),
            at=(stamp, [r["b_at"] for r in rows]),
        )
        self._conn.execute(
            update(deliveries)
            .where(
                D.id == v.c.id,
                _among_ids([r["b_id"] for r in rows]),
                D.lease_owner == owner,
                D.status == S.SENDING.value,
            )
            .values(
                status=v.c.status,
                provider_message_id=v.c.provider,
                error_code=v.c.code,
                error_detail=v.c.detail,
                next_attempt_at=v.c.next,
                sent_at=v.c.sent,
                updated_at=v.c.at,
                lease_owner=None,
                lease_until=None,
            )
        )

    def reap(self, now: datetime) -> tuple[int, int]:
        """Expired leases: in-flight marketing → unknown (never re-sent), in-flight service →
        queued again (re-sent with the same Message-ID); claimed but not yet in flight →
        released. Returns (unknown, re-queued)."""
        expired = and_(D.lease_until.is_not(None), D.lease_until < now)
        unknown = self._conn.execute(
            update(deliveries)
            .where(expired, D.status == S.SENDING.value, D.category == Category.MARKETING.value)
            .values(
                status=S.UNKNOWN.value,
                error_code="OUTCOME_UNKNOWN",
                updated_at=now,
                lease_owner=None,
                lease_until=None,
            )
        ).rowcount
        requeued = self._conn.execute(
            update(deliveries)
            .where(expired, D.status == S.SENDING.value, D.category == Category.SERVICE.value)
            .values(status=S.QUEUED.value, updated_at=now, lease_owner=None, lease_until=None)
        ).rowcount
        self._conn.execute(
            update(deliveries)
            .where(expired, D.status.in_([S.QUEUED.value, S.DEFERRED.value]))
            .values(lease_owner=None, lease_until=None)
        )
        return int(unknown), int(requeued)

    def recent_sends(
        self, contact_ids: Sequence[uuid.UUID], since: datetime
    ) -> dict[uuid.UUID, tuple[datetime, ...]]:
        """Marketing messages that left for each contact since ``since``, newest first: sent
        ones at their send time, and those in flight in another window or left ``unknown`` by
        a crash (probably delivered) at the time they were handed over."""
        found: dict[uuid.UUID, list[datetime]] = {}
        if not contact_ids:
            return {}
        ids = list(contact_ids)
        dialect = self._conn.dialect.name
        sent = select(D.contact_id, D.sent_at).where(
            uuid_among(dialect, D.contact_id, ids, "sent_ids"),
            D.category == Category.MARKETING.value,
            D.sent_at.is_not(None),
            D.sent_at >= since,
        )
        # Few rows are ever in these states: found through the (status, ...) index.
        leaving = select(D.contact_id, D.updated_at).where(
            D.status.in_([S.SENDING.value, S.UNKNOWN.value]),
            D.category == Category.MARKETING.value,
            uuid_among(dialect, D.contact_id, ids, "leaving_ids"),
            D.updated_at >= since,
        )
        for query in (sent, leaving):
            for contact_id, at in self._conn.execute(query):
                found.setdefault(contact_id, []).append(at)
        return {c: tuple(sorted(v, reverse=True)) for c, v in found.items()}

    def has_sent(self, contact_id: uuid.UUID, channel: Channel) -> bool:
        """Whether any message on ``channel`` has left for the contact (first-message rules)."""
        found = self._conn.execute(
            select(D.id)
            .where(D.contact_id == contact_id, D.channel == channel.value, D.sent_at.is_not(None))
            .limit(1)
        ).first()
        return found is not None

    # -- progress ------------------------------------------------------------------------------

    def progress(self, campaign_id: uuid.UUID) -> dict[str, int]:
        rows = self._conn.execute(
            select(D.status, func.count()).where(D.campaign_id == campaign_id).group_by(D.status)
        )
        return {status: int(n) for status, n in rows}

    def complete_finished(self, now: datetime) -> list[uuid.UUID]:
        """Running campaigns with nothing left to send become completed."""
        pending = exists().where(D.campaign_id == campaigns.c.id, D.status.in_(_PENDING))
        done = self._conn.execute(
            update(campaigns)
            .where(campaigns.c.status == CampaignStatus.RUNNING.value, ~pending)
            .values(status=CampaignStatus.COMPLETED.value, finished_at=now)
            .returning(campaigns.c.id)
        ).scalars()
        return list(done)

    def pending_count(self) -> int:
        """Deliveries a worker could pick up now or later (for the in-process runner)."""
        running = select(campaigns.c.id).where(campaigns.c.status == CampaignStatus.RUNNING.value)
        return int(
            self._conn.execute(
                select(func.count()).where(
                    D.status.in_([S.QUEUED.value, S.DEFERRED.value, S.SENDING.value]),
                    or_(D.campaign_id.is_(None), D.campaign_id.in_(running)),
                )
            ).scalar_one()
        )
