"""Load the benchmark audience into PostgreSQL with ``INSERT ... SELECT generate_series(...)``.

The SQL below is the twin of ``sqlite_load.py``: same dice, same thresholds, same rows. Nested
subqueries end in ``OFFSET 0`` so PostgreSQL computes each md5 once per row instead of inlining
the expression into every column that reads it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from sqlalchemy import Connection, text

import population as pop
from population import SHARES as S

Timings = dict[str, float]


def _lit(value: str | None) -> str:
    return "NULL::text" if value is None else "'" + value.replace("'", "''") + "'"


def _die(hex_column: str, k: int) -> str:
    return f"('x' || substr({hex_column}, {8 * k + 1}, 8))::bit(32)::bigint"


def _pick(die: str, table: tuple[tuple[int, str | None], ...]) -> str:
    whens = " ".join(f"WHEN {die} < {limit} THEN {_lit(v)}" for limit, v in table[:-1])
    return f"CASE {whens} ELSE {_lit(table[-1][1])} END"


def _at(seconds: str) -> str:
    return f"(timestamptz '{pop.EPOCH.isoformat()}' + ({seconds}) * interval '1 second')"


def _uuid7(millis: str, hex_column: str) -> str:
    variant = f"substr('89ab', ((('x' || substr({hex_column}, 4, 1))::bit(4)::int) & 3) + 1, 1)"
    return (
        f"(lpad(to_hex({millis}), 12, '0') || '7' || substr({hex_column}, 1, 3) || {variant}"
        f" || substr({hex_column}, 5, 15))::uuid"
    )


def _key(tag: str, n: str) -> str:
    return f"decode(md5('{tag}:' || {n}), 'hex')"


def _dice(columns: dict[str, str]) -> str:
    return ", ".join(f"{_die(h, k)} AS {name}{k}" for name, h in columns.items() for k in range(4))


def contact_facts(contacts: int) -> str:
    """One row per contact number n with every draw the contact and its consents depend on."""
    hashes = ", ".join(f"md5('contact-{x}:' || n) AS h{x}" for x in "abcd")
    dice = _dice({"a": "ha", "b": "hb", "c": "hc", "d": "hd"})
    tz = " ".join(
        f"WHEN {_lit(country)} THEN {_pick('a2', table)}"
        for country, table in pop.TIME_ZONE_T.items()
        if country is not None
    )
    return f"""
    SELECT x.*, (has_phone AND phone_type <> 'fixed_line') AS textable,
           CASE country {tz} ELSE {_pick("a2", pop.TIME_ZONE_T[None])} END AS time_zone
    FROM (
      SELECT d.*, {_pick("a1", pop.COUNTRY_T)} AS country,
             a0 >= {S.no_email} AS has_email, a3 < {S.phone} AS has_phone,
             CASE WHEN a3 < {S.phone} THEN {_pick("b0", pop.PHONE_TYPE_T)} END AS phone_type
      FROM (
        SELECT n, ha, {dice}, (n - 1)::bigint * {pop.CONTACT_SPAN_S} / {contacts} AS created_s,
               decode(repeat(md5('pool:' || n), {pop.POOL_REPEAT}), 'hex') AS pool
        FROM (SELECT n, {hashes} FROM generate_series(1, {contacts}) AS n OFFSET 0) h
        OFFSET 0
      ) d
      OFFSET 0
    ) x
    """


def contacts_sql(contacts: int, tenant_id: uuid.UUID) -> str:
    locale = " ".join(f"WHEN {_lit(c)} THEN {_lit(v)}" for c, v in pop.LOCALE.items())
    whatsapp = f"(textable AND b1 < {S.whatsapp})"
    dob = f"c0 < {S.dob}"
    year = f"CASE WHEN c0 < {S.minor} THEN 2027 + c1 % 6 ELSE 1960 + c1 % 66 END"
    overhead = pop.ENC_OVERHEAD
    postal = f"substr(pool, 1, ({overhead} + 30 + (b3 >> 16) % 31)::int)"
    return f"""
    INSERT INTO contacts (id, tenant_id, external_ref, name_enc, email_enc, email_key,
        phone_enc, phone_key, phone_type, whatsapp_enc, whatsapp_key, postal_enc, postal_key,
        country, time_zone, locale, dob_enc, adult_on, age_attested, whatsapp_last_inbound_at,
        created_at, updated_at, erased_at)
    SELECT {_uuid7(f"{pop.EPOCH_MS} + created_s * 1000", "ha")}, '{tenant_id}', 'bench-' || n,
        substr(pool, 1, ({overhead} + 8 + b3 % 17)::int),
        CASE WHEN has_email THEN substr(pool, 1, ({overhead} + 14 + (b3 >> 8) % 21)::int) END,
        CASE WHEN has_email THEN {_key("email", "n")} END,
        CASE WHEN has_phone THEN substr(pool, 1, ({overhead} + 12)::int) END,
        CASE WHEN has_phone THEN {_key("phone", "n")} END,
        phone_type,
        CASE WHEN {whatsapp} THEN substr(pool, 1, ({overhead} + 12)::int) END,
        CASE WHEN {whatsapp} THEN {_key("phone", "n")} END,
        CASE WHEN b2 < {S.postal} THEN {postal} END,
        CASE WHEN b2 < {S.postal} THEN {_key("postal", "n")} END,
        country, time_zone,
        CASE WHEN country = 'CA' AND c2 < {S.fr_ca} THEN 'fr-CA'
             ELSE CASE country {locale} END END,
        CASE WHEN {dob} THEN substr(pool, 1, ({overhead} + 10)::int) END,
        CASE WHEN {dob} THEN make_date(({year})::int, (1 + (c1 >> 8) % 12)::int, 1) END,
        false,
        CASE WHEN {whatsapp} AND c3 < {S.whatsapp_inbound}
             THEN timestamptz '{pop.NOW.isoformat()}'
                  - (c3 % {pop.WHATSAPP_INBOUND_S}) * interval '1 second' END,
        {_at("created_s")}, {_at("created_s")}, NULL
    FROM ({contact_facts(contacts)}) f
    """


def consent_events_sql(contacts: int, ids: pop.AudienceIds) -> str:
    """One ledger event per consent state (the event that state was folded from)."""
    tenant_id = ids.tenant
    slots = (
        f"(VALUES ('t', '{ids.topic}'::uuid, {S.topic_state}::bigint),"
        f" ('u', '{ids.umbrella}'::uuid, {S.umbrella_state}::bigint))"
    )
    dice = _dice({"s": "hs1", "r": "hs2"})
    lifetime = pop.IMPLIED_LIFETIME_S
    implied_active = "status = 'active' AND basis = 'implied_relationship'"
    purchase_ends = _at(f"occurred_s + {lifetime['purchase']}")
    inquiry_ends = _at(f"occurred_s + {lifetime['inquiry']}")
    action = " ".join(f"WHEN '{s}' THEN '{a}'" for s, a in pop.ACTION.items())
    return f"""
    INSERT INTO consent_events (id, tenant_id, seq, contact_id, point_key, topic_id, channel,
        action, basis, method, relationship, occurred_at, recorded_at, expires_at,
        prev_hash, hash)
    SELECT {_uuid7(f"{pop.EPOCH_MS} + occurred_s * 1000", "hs1")}, '{tenant_id}', seq,
        contact_id,
        CASE WHEN r0 < {S.stale_address} THEN decode(md5('stale-' || tag || ':' || n), 'hex')
             WHEN channel = 'sms' THEN {_key("phone", "n")} ELSE {_key("email", "n")} END,
        topic_id, channel, CASE status {action} END, basis, 'import',
        CASE WHEN basis = 'implied_relationship'
             THEN CASE WHEN r2 < {S.purchase} THEN 'purchase' ELSE 'inquiry' END END,
        {_at("occurred_s")}, {_at("occurred_s")},
        CASE WHEN {implied_active} AND r2 < {S.purchase} THEN {purchase_ends}
             WHEN {implied_active} THEN {inquiry_ends} END,
        repeat('0', 64), md5('hash:' || seq) || md5('hash2:' || seq)
    FROM (
      SELECT e.*,
        CASE WHEN raw_status = 'void' AND channel = 'email' THEN 'withdrawn'
             ELSE raw_status END AS status,
        CASE WHEN raw_status = 'pending' THEN 'double_opt_in'
             WHEN country = 'CA' AND s3 < {S.implied_ca} THEN 'implied_relationship'
             WHEN country = 'DE' AND s3 < {S.soft_opt_in_de} THEN 'soft_opt_in'
             WHEN s3 < {S.express} THEN 'express' ELSE 'double_opt_in' END AS basis,
        CASE WHEN tag = 't' THEN 2 * n::bigint - 1 + newer ELSE 2 * n::bigint - newer END AS seq,
        created_s + r1 % {pop.CONSENT_DELAY_S} AS occurred_s
      FROM (
        SELECT g.*, {_pick("s2", pop.STATUS_T)} AS raw_status,
          CASE WHEN s0 >= share THEN NULL
               WHEN textable AND (s1 < {S.sms_state} OR NOT has_email) THEN 'sms'
               WHEN has_email THEN 'email' END AS channel,
          CASE WHEN d0 < {S.topic_newer} THEN 1 ELSE 0 END AS newer
        FROM (
          SELECT h.*, {dice}
          FROM (
            SELECT f.n, f.created_s, f.has_email, f.textable, f.country, f.d0,
                   {_uuid7(f"{pop.EPOCH_MS} + f.created_s * 1000", "f.ha")} AS contact_id,
                   slot.tag, slot.topic_id, slot.share,
                   md5(slot.tag || '1:' || f.n) AS hs1, md5(slot.tag || '2:' || f.n) AS hs2
            FROM ({contact_facts(contacts)}) f CROSS JOIN {slots} AS slot(tag, topic_id, share)
            OFFSET 0
          ) h
          OFFSET 0
        ) g
        OFFSET 0
      ) e
      OFFSET 0
    ) s
    WHERE channel IS NOT NULL
    """


def consent_states_sql(tenant_id: uuid.UUID) -> str:
    """Each state is the fold of its one event (``domain.consent.apply_event``)."""
    status = " ".join(f"WHEN '{a}' THEN '{s}'" for s, a in pop.ACTION.items())
    return f"""
    INSERT INTO consent_states (tenant_id, topic_id, channel, contact_id, point_key, status,
        basis, confirmed, event_id, seq, granted_at, expires_at, updated_at)
    SELECT tenant_id, topic_id, channel, contact_id, point_key, CASE action {status} END,
        basis, action = 'granted' AND basis = 'double_opt_in', id, seq,
        CASE WHEN action IN ('granted', 'requested') THEN occurred_at END,
        expires_at, occurred_at
    FROM consent_events WHERE tenant_id = '{tenant_id}'
    """


def suppressions_sql(contacts: int, tenant_id: uuid.UUID) -> str:
    count = pop.suppression_count(contacts)
    reason = (
        f"CASE WHEN platform THEN {_pick('p3', pop.PLATFORM_REASON_T)}"
        f" WHEN sms THEN {_pick('p3', pop.TENANT_SMS_REASON_T)}"
        f" ELSE {_pick('p3', pop.TENANT_EMAIL_REASON_T)} END"
    )
    marketing = ", ".join(f"'{r}'" for r in sorted(pop.MARKETING_SCOPED))
    liftable = ", ".join(f"'{r}'" for r in sorted(pop.LIFTABLE))
    lifted = f"reason IN ({liftable}) AND q2 < {S.lifted}"
    return f"""
    INSERT INTO suppressions (id, tenant_id, point_key, channel, scope, reason, source,
        created_at, lifted_at, lifted_by)
    SELECT {_uuid7(f"{pop.EPOCH_MS} + created_s * 1000", "hp")},
        CASE WHEN platform THEN NULL ELSE '{tenant_id}'::uuid END,
        CASE WHEN platform AND q0 < {S.foreign_key} THEN {_key("foreign", "j")}
             WHEN sms THEN {_key("phone", "k")} ELSE {_key("email", "k")} END,
        CASE WHEN sms THEN 'sms' ELSE 'email' END,
        CASE WHEN reason IN ({marketing}) THEN 'marketing'
             WHEN reason = 'manual' AND q1 < {S.manual_marketing} THEN 'marketing'
             ELSE 'all' END,
        reason, 'bench', {_at("created_s")},
        CASE WHEN {lifted} THEN {_at(f"created_s + {pop.DAY}")} END,
        CASE WHEN {lifted} THEN 'bench' END
    FROM (
      SELECT x.*, {reason} AS reason
      FROM (
        SELECT d.*, p2 < {S.platform_suppression} AS platform,
               p2 >= {S.platform_suppression} AND p0 < {S.sms_suppression} AS sms,
               1 + p1 % {contacts} AS k, q3 % {pop.SUPPRESSION_SPAN_S} AS created_s
        FROM (
          SELECT j, hp, {_dice({"p": "hp", "q": "hq"})}
          FROM (SELECT j, md5('supp-a:' || j) AS hp, md5('supp-b:' || j) AS hq
                FROM generate_series(1, {count}) AS j OFFSET 0) h
          OFFSET 0
        ) d
        OFFSET 0
      ) x
      OFFSET 0
    ) s
    """


def dnc_sql(contacts: int) -> str:
    count = pop.dnc_count(contacts)
    return f"""
    INSERT INTO dnc_entries (id, registry, point_key, listed_at, removed_at)
    SELECT {_uuid7(f"{pop.EPOCH_MS} + (r1 % {pop.SUPPRESSION_SPAN_S}) * 1000", "hr")}, 'US-DNC',
        {_key("phone", f"(1 + r0 % {contacts})")}, {_at(f"r1 % {pop.SUPPRESSION_SPAN_S}")}, NULL
    FROM (SELECT hr, {_die("hr", 0)} AS r0, {_die("hr", 1)} AS r1
          FROM (SELECT md5('dnc:' || r) AS hr FROM generate_series(1, {count}) AS r OFFSET 0) h
          OFFSET 0) d
    ON CONFLICT DO NOTHING
    """


def load(
    conn: Connection, contacts: int, ids: pop.AudienceIds, log: Callable[[str], None]
) -> Timings:
    """Insert the audience in one transaction per table; returns seconds per step."""
    steps: list[tuple[str, str]] = [
        ("contacts", contacts_sql(contacts, ids.tenant)),
        ("consent_events", consent_events_sql(contacts, ids)),
        ("consent_states", consent_states_sql(ids.tenant)),
        ("suppressions", suppressions_sql(contacts, ids.tenant)),
        ("dnc_entries", dnc_sql(contacts)),
    ]
    timings: Timings = {}
    for name, sql in steps:
        started = time.perf_counter()
        result = conn.execute(text(sql))
        conn.commit()
        timings[name] = time.perf_counter() - started
        log(f"postgresql: {name}: {result.rowcount:,} rows in {timings[name]:.1f} s")
    return timings
