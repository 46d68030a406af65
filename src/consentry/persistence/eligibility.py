"""The gate's facts per recipient, and its set-based twin for whole audiences.

``eligibility_select`` expresses ``domain.gate.decide`` as one SQL query over every contact of a
tenant: the same rules, in the same order, producing the same verdict, reasons (comma-terminated,
in order) and authorising consent event. Property tests run both on random populations, on SQLite
and PostgreSQL. Values that depend on time zones (quiet hours) are computed by the pure rule pack
code once per distinct (country, time zone) pair and joined in, so the SQL never re-implements
time-zone arithmetic.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Date,
    Integer,
    String,
    and_,
    bindparam,
    case,
    false,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.sql import ColumnElement, Select

from consentry.domain.consent import EXPRESS_BASES, ConsentBasis, ConsentStatus
from consentry.domain.gate import (
    WHATSAPP_SERVICE_WINDOW,
    ConsentFact,
    Decision,
    Intent,
    Reason,
    RecipientFacts,
    SuppressionFact,
    Verdict,
    tenant_blocks,
)
from consentry.domain.model import (
    PHONE_CHANNELS,
    Category,
    Channel,
    Contact,
    PhoneType,
    Tenant,
)
from consentry.domain.rules import (
    CANADA,
    EU_COUNTRIES,
    INDIA,
    PACKS,
    US,
    RulePack,
    pack_for,
    quiet_until,
)
from consentry.domain.suppression import (
    REASON_PRIORITY,
    REASON_RANK,
    SuppressionReason,
    SuppressionScope,
    reason_code,
)
from consentry.persistence.contacts import SqlContactRepository, key_column
from consentry.persistence.driver import DriverStatement
from consentry.persistence.tables import consent_states, contacts, dnc_entries, suppressions
from consentry.persistence.types import UTCDateTime, uuid_among, uuid_among_value
from consentry.services.ports import EligibilityRow, EligibilitySummary

_PACK_COUNTRIES: dict[str, frozenset[str]] = {
    US.code: frozenset({"US"}),
    INDIA.code: frozenset({"IN"}),
    CANADA.code: frozenset({"CA"}),
    "EU": EU_COUNTRIES,
}


_CONSTANT = re.compile(r"[A-Za-z0-9_,.:+-]*")
# ``OFFSET 0`` keeps PostgreSQL from flattening a subquery into the query around it.
_OFFSET_FENCE = literal_column("0", Integer)
_STAMP = UTCDateTime()


def _const(value: str | int | bool) -> ColumnElement[Any]:
    """A constant of the rules written into the statement's text instead of bound.

    The statement then carries a handful of parameters instead of two hundred (reason codes,
    statuses, countries), which the driver would otherwise convert and send again for every
    dispatch window. Only the codes of this module pass, which need no quoting."""
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, int):
        return literal_column(str(value), Integer)
    if not _CONSTANT.fullmatch(value):
        raise ValueError(f"not a rule constant: {value!r}")
    return literal_column(f"'{value}'", String)


def _reason(code: str) -> ColumnElement[Any]:
    """A reason as the rule columns hold it: the code followed by a comma."""
    return _const(code + ",")


def _among(conn: Connection, column: Any, ids: Sequence[uuid.UUID], name: str) -> Any:
    """``column IN ids`` with a parameter named ``name`` (persistence.types.uuid_among)."""
    return uuid_among(conn.dialect.name, column, ids, name)


_LOOK_UP: Any = object()  # _components looks the quiet hours up itself


@dataclass(frozen=True, slots=True)
class _Clock:
    """The instants the rules compare with, as named parameters: a statement built once can be
    executed again at another time with ``params`` (see ``window_select``)."""

    now: Any
    today: Any
    inbound_since: Any

    @classmethod
    def at(cls, now: datetime) -> _Clock:
        values = cls.params(now)
        return cls(
            now=bindparam("gate_now", values["gate_now"], type_=_STAMP),
            today=bindparam("gate_today", values["gate_today"], type_=Date()),
            inbound_since=bindparam(
                "gate_inbound_since", values["gate_inbound_since"], type_=_STAMP
            ),
        )

    @staticmethod
    def params(now: datetime) -> dict[str, Any]:
        return {
            "gate_now": now,
            "gate_today": now.date(),
            "gate_inbound_since": now - WHATSAPP_SERVICE_WINDOW,
        }


def _address_invalid(channel: Channel, phone_type: PhoneType | None) -> bool:
    # A fixed line cannot receive a text message; calls and WhatsApp go to any valid number.
    return channel is Channel.SMS and phone_type is PhoneType.FIXED_LINE


# What the gate reads about one contact point besides the contact, in one statement built once
# (each statement costs a round trip and, built per call, as much CPU as it takes to run): the
# consent states of the topic and its umbrella (kind "c"), the active suppressions the tenant
# sees (kind "s") and, for phone channels, whether the number is on a do-not-contact list
# (kind "d").
_S = suppressions
_FACT_STATES = select(
    literal("c").label("kind"),
    consent_states.c.topic_id,
    consent_states.c.point_key,
    consent_states.c.status,
    consent_states.c.basis,
    consent_states.c.confirmed,
    consent_states.c.event_id,
    consent_states.c.seq,
    consent_states.c.expires_at,
    null().label("reason"),
    null().label("scope"),
    null().label("platform"),
).where(
    consent_states.c.tenant_id == bindparam("tenant"),
    consent_states.c.contact_id == bindparam("contact"),
    consent_states.c.channel == bindparam("channel"),
    or_(
        consent_states.c.topic_id == bindparam("topic"),
        consent_states.c.topic_id == bindparam("umbrella"),
    ),
)
_FACT_SUPPRESSIONS = select(
    literal("s"), *(null() for _ in range(8)), _S.c.reason, _S.c.scope, _S.c.tenant_id.is_(None)
).where(
    _S.c.point_key == bindparam("point_key"),
    _S.c.channel == bindparam("channel"),
    _S.c.lifted_at.is_(None),
    or_(_S.c.tenant_id == bindparam("tenant"), _S.c.tenant_id.is_(None)),
)
_FACT_DNC = select(literal("d"), *(null() for _ in range(11))).where(
    select(dnc_entries.c.id)
    .where(dnc_entries.c.point_key == bindparam("point_key"), dnc_entries.c.removed_at.is_(None))
    .exists()
)
_FACTS = DriverStatement(union_all(_FACT_STATES, _FACT_SUPPRESSIONS))
_FACTS_WITH_DNC = DriverStatement(union_all(_FACT_STATES, _FACT_SUPPRESSIONS, _FACT_DNC))


class SqlGateQueries:
    def __init__(self, conn: Connection, contacts_repo: SqlContactRepository) -> None:
        self._conn = conn
        self._contacts = contacts_repo

    # -- one recipient, at dispatch or for an explanation ------------------------------------

    def facts(
        self, tenant: Tenant, contact: Contact, intent: Intent, now: datetime
    ) -> RecipientFacts:
        """Everything the gate reads about one contact, from committed state."""
        del now  # facts are as committed; the gate applies the clock
        point_key = self._contacts.point_key(contact, intent.channel)
        base = RecipientFacts(
            contact_id=contact.id,
            tenant_status=tenant.status,
            tenant_country=tenant.country,
            point_key=point_key,
            address_valid=not _address_invalid(intent.channel, contact.phone_type),
            country=contact.country,
            time_zone=contact.time_zone,
            adult_on=contact.adult_on,
            last_inbound_at=contact.whatsapp_last_inbound_at,
        )
        if point_key is None:
            return base
        phone = intent.channel in PHONE_CHANNELS
        rows = (_FACTS_WITH_DNC if phone else _FACTS).rows(
            self._conn,
            {
                "tenant": tenant.id,
                "contact": contact.id,
                "channel": intent.channel.value,
                "topic": intent.topic_id,
                "umbrella": intent.umbrella_topic_id,
                "point_key": point_key,
            },
        )
        consents = tuple(
            ConsentFact(
                topic_id=r.topic_id,
                point_key=bytes(r.point_key),
                status=ConsentStatus(r.status),
                basis=ConsentBasis(r.basis),
                confirmed=r.confirmed,
                event_id=r.event_id,
                seq=r.seq,
                expires_at=r.expires_at,
            )
            for r in rows
            if r.kind == "c"
        )
        return RecipientFacts(
            contact_id=base.contact_id,
            tenant_status=base.tenant_status,
            tenant_country=base.tenant_country,
            point_key=point_key,
            address_valid=base.address_valid,
            country=base.country,
            time_zone=base.time_zone,
            adult_on=base.adult_on,
            suppressions=tuple(
                SuppressionFact(
                    SuppressionReason(r.reason), SuppressionScope(r.scope), bool(r.platform)
                )
                for r in rows
                if r.kind == "s"
            ),
            consents=consents,
            dnc_listed=any(r.kind == "d" for r in rows),
            last_inbound_at=base.last_inbound_at,
        )

    # -- a whole audience, set-based -----------------------------------------------------------

    def eligibility(
        self,
        tenant: Tenant,
        intent: Intent,
        now: datetime,
        contact_ids: Sequence[uuid.UUID] | None = None,
    ) -> Iterator[EligibilityRow]:
        """Every contact's decision, streamed from one query."""
        audience_settings(self._conn)
        if contact_ids is None:  # a whole audience streams through a server-side cursor
            query = eligibility_select(self._conn, tenant, intent, now)
            result = self._conn.execute(query, execution_options={"yield_per": 5000})
        else:
            # A dispatch window (a few hundred ids) does not: a cursor is planned for its first
            # rows (cursor_tuple_fraction), which chose nested loops over the whole audience.
            query, params = window_select(self._conn, tenant, intent, now, contact_ids)
            result = self._conn.execute(query, params)
        try:
            for row in result:
                reasons = tuple(row.reasons.split(",")[:-1]) if row.reasons else ()
                yield EligibilityRow(
                    contact_id=row.contact_id,
                    decision=Decision(
                        Verdict(row.verdict),
                        reasons,
                        row.consent_event_id,
                        row.defer_until,
                    ),
                )
        finally:
            result.close()  # a consumer that stops early must not leave a cursor open

    def eligibility_summary(
        self, tenant: Tenant, intent: Intent, now: datetime
    ) -> EligibilitySummary:
        """Counts by primary reason ("ALLOW" for allowed), computed in the database."""
        audience_settings(self._conn)
        prefix, query = summary_select(self._conn, tenant, intent, now)
        by_reason: dict[str, int] = {}
        for row in self._conn.execute(query):
            reason = primary_reason(prefix, row.reason)
            by_reason[reason] = by_reason.get(reason, 0) + int(row.contacts)
        total = sum(by_reason.values())
        return EligibilitySummary(
            total=total, eligible=by_reason.get("ALLOW", 0), by_reason=by_reason
        )


PLANNING_WORK_MEM = "64MB"


def audience_settings(conn: Connection, *, work_mem: str | None = None) -> None:
    """For this transaction only: no JIT (PostgreSQL would spend seconds compiling the rule
    expressions of a large audience with LLVM, longer than evaluating them), and optionally more
    memory for hash joins.

    The read-only summaries leave ``work_mem`` at the server's setting: raised far enough for the
    hash tables of a million consent states to fit, the planner gives up the parallel plan for a
    serial one that was 40% slower on the benchmark audience. Planning a campaign raises it
    (``PLANNING_WORK_MEM``): an ``INSERT ... SELECT`` runs serially anyway, and its joins then stay
    in memory instead of spilling in sixteen batches (docs/performance.md, sections 2 and 4)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        if work_mem is not None:
            conn.exec_driver_sql(f"SET LOCAL work_mem = '{work_mem}'")


def _countries_where(predicate: Any) -> tuple[bool, frozenset[str]]:
    """(negate, countries) such that "country IN countries" (or NOT IN, when negate) selects the
    countries whose pack satisfies ``predicate``."""
    allowed = {code for code, pack in PACKS.items() if predicate(pack)}
    if PACKS["DEFAULT"].code in allowed:
        excluded: set[str] = set()
        for code, countries in _PACK_COUNTRIES.items():
            if code not in allowed:
                excluded |= countries
        return True, frozenset(excluded)
    included: set[str] = set()
    for code in allowed:
        included |= _PACK_COUNTRIES[code]
    return False, frozenset(included)


def _country_in(country: ColumnElement[Any], predicate: Any) -> ColumnElement[bool]:
    negate, countries = _countries_where(predicate)
    if not countries:
        return _const(negate)
    test = country.in_([_const(code) for code in sorted(countries)])
    return ~test if negate else test


def _quiet_lookup(
    conn: Connection,
    tenant: Tenant,
    intent: Intent,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None = None,
) -> Any | None:
    """A small derived table (country, time_zone, quiet_until) for the pairs that are quiet now
    (among ``contact_ids`` when given, else among the tenant's contacts)."""

    def has_windows(pack: RulePack) -> bool:
        return any(
            intent.channel in w.channels and intent.category in w.categories
            for w in pack.quiet_hours
        )

    if not any(has_windows(p) for p in PACKS.values()):
        return None
    pairs_query = (
        select(func.coalesce(contacts.c.country, ""), func.coalesce(contacts.c.time_zone, ""))
        .where(contacts.c.tenant_id == tenant.id)
        .distinct()
    )
    if contact_ids is not None:
        pairs_query = pairs_query.where(_among(conn, contacts.c.id, contact_ids, "quiet_ids"))
    pairs = conn.execute(pairs_query).all()
    selects = []
    for country, zone in pairs:
        until = quiet_until(
            pack_for(country or None, tenant.country),
            intent.channel,
            intent.category,
            zone or None,
            now,
        )
        if until is not None:
            selects.append(
                select(
                    literal(country, String).label("country"),
                    literal(zone, String).label("time_zone"),
                    literal(until, _STAMP).label("quiet_until"),
                )
            )
    if not selects:
        return None
    return (selects[0] if len(selects) == 1 else union_all(*selects)).subquery("quiet")


def _suppression_rank_case() -> ColumnElement[int]:
    return case(
        *((_const(reason.value), _const(rank)) for reason, rank in REASON_RANK.items()),
        value=suppressions.c.reason,
    )


def _suppression_reason(
    tenant: Tenant, intent: Intent, window_keys: Any | None = None
) -> tuple[Any, ColumnElement[str]]:
    """The weightiest active suppression covering the category, tenant or platform-wide.

    ``window_keys`` (a subquery of point keys) narrows it to a dispatch window's addresses:
    grouped, the subquery cannot take the join's keys, and every window would otherwise
    aggregate the whole suppression list."""
    supp_query = select(
        suppressions.c.point_key, func.min(_suppression_rank_case()).label("rank")
    ).where(
        suppressions.c.channel == intent.channel.value,
        suppressions.c.lifted_at.is_(None),
        or_(suppressions.c.tenant_id == tenant.id, suppressions.c.tenant_id.is_(None)),
    )
    if intent.category is not Category.MARKETING:
        supp_query = supp_query.where(suppressions.c.scope == _const("all"))
    if window_keys is not None:
        supp_query = supp_query.where(suppressions.c.point_key.in_(window_keys))
    supp = supp_query.group_by(suppressions.c.point_key).subquery("supp")
    reason = case(
        *((_const(rank), _const(reason_code(r) + ",")) for rank, r in enumerate(REASON_PRIORITY)),
        value=supp.c.rank,
        else_=_const(""),
    )
    return supp, reason


def _consent_reason(
    intent: Intent, clock: _Clock, point: Any, country: ColumnElement[Any]
) -> tuple[list[tuple[Any, ColumnElement[bool]]], ColumnElement[Any], ColumnElement[str]]:
    """The consent rule: (state joins, authorising event id, reason)."""
    channel = intent.channel
    marketing = intent.category is Category.MARKETING
    # The newest state on the topic or its umbrella, for the current address, governs.
    ts = consent_states.alias("ts")
    us = consent_states.alias("us")

    def state_join(alias: Any, topic_id: uuid.UUID) -> ColumnElement[bool]:
        return and_(
            alias.c.contact_id == contacts.c.id,
            alias.c.topic_id == topic_id,
            alias.c.channel == channel.value,
            alias.c.point_key == point,
        )

    use_u = and_(us.c.seq.is_not(None), or_(ts.c.seq.is_(None), us.c.seq > ts.c.seq))

    def governing(name: str) -> ColumnElement[Any]:
        return case((use_u, us.c[name]), else_=ts.c[name])

    g_status, g_basis = governing("status"), governing("basis")
    g_confirmed, g_expires, g_event = (
        governing("confirmed"),
        governing("expires_at"),
        governing("event_id"),
    )

    express = [_const(b.value) for b in EXPRESS_BASES]
    if channel is Channel.WHATSAPP:
        basis_ok: ColumnElement[bool] = g_basis.in_(express)
    elif not marketing:
        basis_ok = _const(True)
    else:
        basis_ok = or_(
            g_basis.in_(express),
            and_(
                g_basis == _const(ConsentBasis.IMPLIED_RELATIONSHIP.value),
                _country_in(country, lambda p: p.implied_allowed(channel)),
            ),
            and_(
                g_basis == _const(ConsentBasis.SOFT_OPT_IN.value),
                _country_in(country, lambda p: p.soft_opt_in_allowed(channel)),
            ),
        )

    def status_is(status: ConsentStatus) -> ColumnElement[bool]:
        return g_status == _const(status.value)

    active_whens: list[tuple[Any, Any]] = [
        (and_(g_expires.is_not(None), g_expires <= clock.now), _reason(Reason.CONSENT_LAPSED)),
        (~basis_ok, _reason(Reason.NO_CONSENT)),
    ]
    if intent.requires_confirmation:
        active_whens.append((~g_confirmed, _reason(Reason.CONSENT_PENDING)))
    consent_reason = case(
        (g_status.is_(None), _reason(Reason.NO_CONSENT)),
        (status_is(ConsentStatus.ACTIVE), case(*active_whens, else_=_const(""))),
        (status_is(ConsentStatus.PENDING), _reason(Reason.CONSENT_PENDING)),
        (status_is(ConsentStatus.WITHDRAWN), _reason(Reason.CONSENT_WITHDRAWN)),
        (status_is(ConsentStatus.LAPSED), _reason(Reason.CONSENT_LAPSED)),
        else_=_reason(Reason.CONSENT_VOID_REASSIGNED),
    )
    if intent.whatsapp_free_form and channel is Channel.WHATSAPP:
        window_open = and_(
            contacts.c.whatsapp_last_inbound_at.is_not(None),
            contacts.c.whatsapp_last_inbound_at > clock.inbound_since,
        )
        outside = _reason(Reason.OUTSIDE_SERVICE_WINDOW)
        if marketing:  # consent first, then the window
            consent_reason = case(
                (consent_reason != _const(""), consent_reason),
                (window_open, _const("")),
                else_=outside,
            )
        else:  # a service reply inside the window needs no opt-in, unless it was withdrawn
            consent_reason = case(
                (status_is(ConsentStatus.WITHDRAWN), _reason(Reason.CONSENT_WITHDRAWN)),
                (window_open, _const("")),
                else_=outside,
            )

    joins = [
        (ts, state_join(ts, intent.topic_id)),
        (us, state_join(us, intent.umbrella_topic_id)),
    ]
    return joins, g_event, consent_reason


def _components(  # noqa: PLR0917  (the gate's inputs, as in eligibility_select)
    conn: Connection,
    tenant: Tenant,
    intent: Intent,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None = None,
    audience: ColumnElement[bool] | None = None,
    *,
    with_event: bool = True,
    quiet: Any = _LOOK_UP,
) -> tuple[str, Any]:
    """(reasons every row shares, a subquery with one row per contact and one column per rule).

    ``quiet`` is the quiet-hours table of ``_quiet_lookup``, looked up here when ``_LOOK_UP``.

    Each rule column holds its reason followed by a comma, or "" when it passes; ``address`` is
    NULL when the address is usable (an unusable address stops the remaining rules).
    """
    channel = intent.channel
    marketing = intent.category is Category.MARKETING
    c = contacts
    point = key_column(channel)
    clock = _Clock.at(now)

    prefix = ""
    if tenant_blocks(tenant.status, intent.category):
        prefix += Reason.TENANT_NOT_ACTIVE + ","
    if not intent.content_compliant:
        prefix += Reason.CONTENT_NOT_COMPLIANT + ","

    window_keys = None
    if contact_ids is not None:
        # The window's own addresses (an alias: the outer query selects from ``contacts``).
        wc = contacts.alias("window_contacts")
        wpoint = wc.c[point.key]
        window_keys = (
            select(wpoint)
            .where(
                wc.c.tenant_id == tenant.id,
                _among(conn, wc.c.id, contact_ids, "window_ids"),
                wpoint.is_not(None),
            )
            .correlate(None)
        )
    supp, supp_reason = _suppression_reason(tenant, intent, window_keys)

    country = func.coalesce(c.c.country, tenant.country)
    checks_dnc = marketing and channel in PHONE_CHANNELS
    dnc = None
    if checks_dnc:
        dnc_query = select(dnc_entries.c.point_key).where(dnc_entries.c.removed_at.is_(None))
        if window_keys is not None:
            dnc_query = dnc_query.where(dnc_entries.c.point_key.in_(window_keys))
        dnc = dnc_query.distinct().subquery("dnc")
    dnc_reason: ColumnElement[str] = (
        case((dnc.c.point_key.is_not(None), _reason(Reason.DNC_REGISTERED)), else_=_const(""))
        if dnc is not None
        else _const("")
    )
    minor_reason: ColumnElement[str] = (
        case(
            (and_(c.c.adult_on.is_not(None), c.c.adult_on > clock.today), _reason(Reason.MINOR)),
            else_=_const(""),
        )
        if marketing
        else _const("")
    )

    state_joins, g_event, consent_reason = _consent_reason(intent, clock, point, country)
    # A service free-form WhatsApp reply is authorised by the window, not by a consent event.
    free_form = intent.whatsapp_free_form and channel is Channel.WHATSAPP and not marketing

    if channel is Channel.SMS:
        address = case(
            (point.is_(None), _reason(Reason.ADDRESS_MISSING)),
            (c.c.phone_type == _const(PhoneType.FIXED_LINE.value), _reason(Reason.ADDRESS_INVALID)),
        )
    else:
        address = case((point.is_(None), _reason(Reason.ADDRESS_MISSING)))

    if quiet is _LOOK_UP:
        quiet = _quiet_lookup(conn, tenant, intent, now, contact_ids)
    quiet_until_col: ColumnElement[Any] = quiet.c.quiet_until if quiet is not None else null()

    frm: Any = c.outerjoin(supp, supp.c.point_key == point)
    if dnc is not None:
        frm = frm.outerjoin(dnc, dnc.c.point_key == point)
    for alias, on in state_joins:
        frm = frm.outerjoin(alias, on)
    if quiet is not None:
        frm = frm.outerjoin(
            quiet,
            and_(
                quiet.c.country == func.coalesce(c.c.country, _const("")),
                quiet.c.time_zone == func.coalesce(c.c.time_zone, _const("")),
            ),
        )
    inner = (
        select(
            c.c.id.label("contact_id"),
            address.label("address"),
            supp_reason.label("suppression"),
            dnc_reason.label("registry"),
            minor_reason.label("age"),
            consent_reason.label("consent"),
            (g_event if with_event and not free_form else null()).label("g_event"),
            quiet_until_col.label("quiet_until"),
        )
        .select_from(frm)
        .where(c.c.tenant_id == tenant.id, c.c.erased_at.is_(None))
    )
    if contact_ids is not None:
        inner = inner.where(_among(conn, c.c.id, contact_ids, "ids"))
    if audience is not None:
        inner = inner.where(audience)
    return prefix, inner.subquery("rules")


def eligibility_select(  # noqa: PLR0917  (decide()'s inputs plus an audience)
    conn: Connection,
    tenant: Tenant,
    intent: Intent,
    now: datetime,
    contact_ids: Sequence[uuid.UUID] | None = None,
    audience: ColumnElement[bool] | None = None,
    *,
    quiet: Any = _LOOK_UP,
) -> Select[Any]:
    """The gate as one SELECT: contact_id, verdict, reasons, consent_event_id, defer_until.

    ``audience`` narrows the contacts (a condition on the ``contacts`` table)."""
    prefix, r = _components(conn, tenant, intent, now, contact_ids, audience, quiet=quiet)
    rest = r.c.suppression + r.c.registry + r.c.age + r.c.consent
    deny = (_const(prefix) + func.coalesce(r.c.address, rest)).label("deny")
    # OFFSET 0 fences the subquery: flattened, PostgreSQL would copy the whole rule expression
    # into each of the four columns below that test ``deny``, and evaluate it four times a row.
    d = (
        select(r.c.contact_id, deny, r.c.g_event, r.c.quiet_until)
        .offset(_OFFSET_FENCE)
        .subquery("decided")
    )
    no_deny = d.c.deny == _const("")
    return select(
        d.c.contact_id,
        case(
            (~no_deny, _const(Verdict.DENY.value)),
            (d.c.quiet_until.is_not(None), _const(Verdict.DEFER.value)),
            else_=_const(Verdict.ALLOW.value),
        ).label("verdict"),
        case(
            (~no_deny, d.c.deny),
            (d.c.quiet_until.is_not(None), _reason(Reason.QUIET_HOURS)),
            else_=_const(""),
        ).label("reasons"),
        case((no_deny, d.c.g_event), else_=null()).label("consent_event_id"),
        case((no_deny, d.c.quiet_until), else_=null()).label("defer_until"),
    )


_WINDOW_STATEMENTS: OrderedDict[tuple[Any, ...], Select[Any]] = OrderedDict()
_WINDOW_STATEMENTS_LOCK = threading.Lock()
_WINDOW_STATEMENTS_KEPT = 256


def window_select(
    conn: Connection,
    tenant: Tenant,
    intent: Intent,
    now: datetime,
    contact_ids: Sequence[uuid.UUID],
) -> tuple[Select[Any], dict[str, Any]]:
    """``eligibility_select`` for a dispatch window, and the parameters to execute it with.

    A worker checks window after window of the same campaign: the statement is built once per
    tenant (its id, status and country) and intent, and executed with this window's ids and
    clock. Windows in which someone is within quiet hours get a statement of their own (the
    quiet-hours table holds this instant's times)."""
    ids = list(contact_ids)
    bound = uuid_among_value(conn.dialect.name, ids)
    params = {**_Clock.params(now), "ids": bound, "window_ids": bound}
    quiet = _quiet_lookup(conn, tenant, intent, now, ids)
    if quiet is not None:
        return eligibility_select(conn, tenant, intent, now, ids, quiet=quiet), params
    key = (conn.dialect.name, tenant.id, tenant.status, tenant.country, intent)
    with _WINDOW_STATEMENTS_LOCK:
        statement = _WINDOW_STATEMENTS.get(key)
        if statement is not None:
            _WINDOW_STATEMENTS.move_to_end(key)
            return statement, params
    statement = eligibility_select(conn, tenant, intent, now, ids, quiet=None)
    with _WINDOW_STATEMENTS_LOCK:
        _WINDOW_STATEMENTS[key] = statement
        while len(_WINDOW_STATEMENTS) > _WINDOW_STATEMENTS_KEPT:
            _WINDOW_STATEMENTS.popitem(last=False)
    return statement, params


def summary_select(
    conn: Connection,
    tenant: Tenant,
    intent: Intent,
    now: datetime,
    audience: ColumnElement[bool] | None = None,
) -> tuple[str, Select[Any]]:
    """(reasons every contact shares, counts per first reason): the first reason each contact's
    rules give ("QUIET_HOURS," when only the clock holds it back, "ALLOW," when nothing does),
    grouped in the database. A single short grouping key keeps the aggregation cheap: PostgreSQL
    hashes a handful of groups, SQLite sorts one short string per contact instead of six."""
    prefix, r = _components(conn, tenant, intent, now, audience=audience, with_event=False)
    # OFFSET 0 keeps PostgreSQL from flattening the subquery: it then sees the few distinct
    # rule outcomes and aggregates by hashing instead of sorting a million rows on disk.
    r = r.element.offset(_OFFSET_FENCE).subquery("rules")
    first = func.coalesce(
        r.c.address,
        case(
            (r.c.suppression != _const(""), r.c.suppression),
            (r.c.registry != _const(""), r.c.registry),
            (r.c.age != _const(""), r.c.age),
            (r.c.consent != _const(""), r.c.consent),
            (r.c.quiet_until.is_not(None), _reason(Reason.QUIET_HOURS)),
            else_=_const("ALLOW,"),
        ),
    ).label("reason")
    return prefix, select(first, func.count().label("contacts")).group_by(first)


def primary_reason(prefix: str, reason: str) -> str:
    """The first reason a row of ``summary_select`` stands for ("ALLOW" when there is none)."""
    return (prefix or reason).split(",", 1)[0]
