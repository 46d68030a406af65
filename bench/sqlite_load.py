"""Load the benchmark audience into SQLite with ``executemany`` in batches of 50,000 contacts.

The twin of ``pg_load.py``: the same dice and thresholds in Python, written in the storage formats
SQLAlchemy uses on SQLite (UUIDs as 32 hex digits, timestamps as naive UTC text, booleans as 0/1).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import population as pop
from population import SHARES as S
from population import dice, dice_of, md5_bytes, md5_hex, pick, uuid7_hex

BATCH = 50_000
Row = tuple[object, ...]


_EPOCH = pop.EPOCH.replace(tzinfo=None)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def _at(seconds: int) -> str:
    # Whole seconds from the epoch, as SQLAlchemy stores UTC timestamps on SQLite.
    return (_EPOCH + timedelta(seconds=seconds)).isoformat(" ") + ".000000"


@dataclass(frozen=True, slots=True)
class _Drawn:
    """What a contact's consents depend on."""

    n: int
    contact_id: str
    created_s: int
    country: str | None
    has_email: bool
    textable: bool
    email_key: bytes
    phone_key: bytes
    topic_newer: bool


def _contact_row(n: int, contacts: int, tenant: str) -> tuple[Row, _Drawn]:
    a_hex = md5_hex("contact-a", n)
    a0, a1, a2, a3 = dice_of(a_hex)
    b0, b1, b2, b3 = dice("contact-b", n)
    c0, c1, c2, c3 = dice("contact-c", n)
    created_s = (n - 1) * pop.CONTACT_SPAN_S // contacts
    pool = md5_bytes("pool", n) * pop.POOL_REPEAT
    enc = pop.ENC_OVERHEAD
    country = pick(a1, pop.COUNTRY_T)
    has_email, has_phone = a0 >= S.no_email, a3 < S.phone
    phone_type = pick(b0, pop.PHONE_TYPE_T) if has_phone else None
    textable = has_phone and phone_type != "fixed_line"
    whatsapp, postal, has_dob = textable and b1 < S.whatsapp, b2 < S.postal, c0 < S.dob
    drawn = _Drawn(
        n=n,
        contact_id=uuid7_hex(pop.EPOCH_MS + created_s * 1000, a_hex),
        created_s=created_s,
        country=country,
        has_email=has_email,
        textable=textable,
        email_key=md5_bytes("email", n),
        phone_key=md5_bytes("phone", n),
        topic_newer=dice("contact-d", n)[0] < S.topic_newer,
    )
    inbound = None
    if whatsapp and c3 < S.whatsapp_inbound:
        inbound = pop.NOW - timedelta(seconds=c3 % pop.WHATSAPP_INBOUND_S)
    created = _at(created_s)
    row: Row = (
        drawn.contact_id,
        tenant,
        f"bench-{n}",
        pool[: enc + 8 + b3 % 17],
        pool[: enc + 14 + (b3 >> 8) % 21] if has_email else None,
        drawn.email_key if has_email else None,
        pool[: enc + 12] if has_phone else None,
        drawn.phone_key if has_phone else None,
        phone_type,
        pool[: enc + 12] if whatsapp else None,
        drawn.phone_key if whatsapp else None,
        pool[: enc + 30 + (b3 >> 16) % 31] if postal else None,
        md5_bytes("postal", n) if postal else None,
        country,
        pick(a2, pop.TIME_ZONE_T[country]),
        "fr-CA" if country == "CA" and c2 < S.fr_ca else pop.LOCALE.get(country or ""),
        pool[: enc + 10] if has_dob else None,
        pop.adult_on(c0 < S.minor, c1).isoformat() if has_dob else None,
        0,
        _ts(inbound),
        created,
        created,
        None,
    )
    return row, drawn


def _basis(status: str | None, country: str | None, die: int) -> str:
    if status == "pending":
        return "double_opt_in"
    if country == "CA" and die < S.implied_ca:
        return "implied_relationship"
    if country == "DE" and die < S.soft_opt_in_de:
        return "soft_opt_in"
    return "express" if die < S.express else "double_opt_in"


def _consent_rows(
    c: _Drawn, tag: str, topic_id: str, share: int, tenant: str
) -> tuple[Row, Row] | None:
    """The consent event of one slot (topic or umbrella) and the state folded from it."""
    s_hex = md5_hex(f"{tag}1", c.n)
    s0, s1, s2, s3 = dice_of(s_hex)
    r0, r1, r2, _ = dice(f"{tag}2", c.n)
    if s0 >= share:
        return None
    if c.textable and (s1 < S.sms_state or not c.has_email):
        channel = "sms"
    elif c.has_email:
        channel = "email"
    else:
        return None
    raw_status = str(pick(s2, pop.STATUS_T))
    status = "withdrawn" if raw_status == "void" and channel == "email" else raw_status
    basis = _basis(raw_status, c.country, s3)
    newer = int(c.topic_newer)
    seq = 2 * c.n - 1 + newer if tag == "t" else 2 * c.n - newer
    occurred_s = c.created_s + r1 % pop.CONSENT_DELAY_S
    occurred = _at(occurred_s)
    if r0 < S.stale_address:
        point_key = md5_bytes(f"stale-{tag}", c.n)
    else:
        point_key = c.phone_key if channel == "sms" else c.email_key
    relationship = expires = None
    if basis == "implied_relationship":
        relationship = "purchase" if r2 < S.purchase else "inquiry"
        if status == "active":
            expires = _at(occurred_s + pop.IMPLIED_LIFETIME_S[relationship])
    action = pop.ACTION[status]
    event_id = uuid7_hex(pop.EPOCH_MS + occurred_s * 1000, s_hex)
    digest = md5_hex("hash", seq) + md5_hex("hash2", seq)
    event: Row = (
        *(event_id, tenant, seq, c.contact_id, point_key, topic_id, channel, action, basis),
        *("import", relationship, occurred, occurred, expires, "0" * 64, digest),
    )
    granted = occurred if action in {"granted", "requested"} else None
    confirmed = int(action == "granted" and basis == "double_opt_in")
    state: Row = (
        *(tenant, topic_id, channel, c.contact_id, point_key, status, basis, confirmed),
        *(event_id, seq, granted, expires, occurred),
    )
    return event, state


def _suppression_rows(contacts: int, tenant: str) -> Iterator[Row]:
    for j in range(1, pop.suppression_count(contacts) + 1):
        p0, p1, p2, p3 = dice("supp-a", j)
        q0, q1, q2, q3 = dice("supp-b", j)
        platform = p2 < S.platform_suppression
        sms = not platform and p0 < S.sms_suppression
        k = 1 + p1 % contacts
        created_s = q3 % pop.SUPPRESSION_SPAN_S
        if platform:
            reason = pick(p3, pop.PLATFORM_REASON_T)
        elif sms:
            reason = pick(p3, pop.TENANT_SMS_REASON_T)
        else:
            reason = pick(p3, pop.TENANT_EMAIL_REASON_T)
        if platform and q0 < S.foreign_key:
            key = md5_bytes("foreign", j)
        else:
            key = md5_bytes("phone" if sms else "email", k)
        if reason in pop.MARKETING_SCOPED or (reason == "manual" and q1 < S.manual_marketing):
            scope = "marketing"
        else:
            scope = "all"
        lifted = reason in pop.LIFTABLE and q2 < S.lifted
        yield (
            uuid7_hex(pop.EPOCH_MS + created_s * 1000, md5_hex("supp-a", j)),
            None if platform else tenant,
            key,
            "sms" if sms else "email",
            scope,
            reason,
            "bench",
            _at(created_s),
            _at(created_s + pop.DAY) if lifted else None,
            "bench" if lifted else None,
        )


def _dnc_rows(contacts: int) -> Iterator[Row]:
    for r in range(1, pop.dnc_count(contacts) + 1):
        r0, r1, _, _ = dice("dnc", r)
        listed_s = r1 % pop.SUPPRESSION_SPAN_S
        key = md5_bytes("phone", 1 + r0 % contacts)
        hex_id = uuid7_hex(pop.EPOCH_MS + listed_s * 1000, md5_hex("dnc", r))
        yield hex_id, "US-DNC", key, _at(listed_s), None


CONTACT_COLUMNS = (
    "id, tenant_id, external_ref, name_enc, email_enc, email_key, phone_enc, phone_key, "
    "phone_type, whatsapp_enc, whatsapp_key, postal_enc, postal_key, country, time_zone, locale, "
    "dob_enc, adult_on, age_attested, whatsapp_last_inbound_at, created_at, updated_at, erased_at"
)
EVENT_COLUMNS = (
    "id, tenant_id, seq, contact_id, point_key, topic_id, channel, action, basis, method, "
    "relationship, occurred_at, recorded_at, expires_at, prev_hash, hash"
)
STATE_COLUMNS = (
    "tenant_id, topic_id, channel, contact_id, point_key, status, basis, confirmed, event_id, "
    "seq, granted_at, expires_at, updated_at"
)
SUPPRESSION_COLUMNS = (
    "id, tenant_id, point_key, channel, scope, reason, source, created_at, lifted_at, lifted_by"
)


def _insert(table: str, columns: str, *, or_ignore: bool = False) -> str:
    # Only registry entries may repeat (two draws of one number); anything else must fail loudly.
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    marks = ", ".join("?" for _ in columns.split(","))
    return f"{verb} INTO {table} ({columns}) VALUES ({marks})"


def load(
    path: Path, contacts: int, ids: pop.AudienceIds, log: Callable[[str], None]
) -> dict[str, float]:
    """Insert the audience (foreign keys enforced) in one transaction, then ANALYZE; seconds per
    step."""
    tenant = ids.tenant.hex
    slots = (("t", ids.topic.hex, S.topic_state), ("u", ids.umbrella.hex, S.umbrella_state))
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA foreign_keys=ON")
    # A rollback journal instead of WAL while loading: new pages are written once, not copied
    # from the WAL at checkpoint. The database goes back to WAL (as the application runs it).
    db.execute("PRAGMA journal_mode=DELETE")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1048576")  # 1 GiB of page cache while loading
    timings: dict[str, float] = {}
    db.execute("BEGIN")
    started = time.perf_counter()
    counts = [0, 0]
    for start in range(1, contacts + 1, BATCH):
        rows, events, states = [], [], []
        for n in range(start, min(start + BATCH, contacts + 1)):
            contact, drawn = _contact_row(n, contacts, tenant)
            rows.append(contact)
            for tag, topic_id, share in slots:
                consent = _consent_rows(drawn, tag, topic_id, share, tenant)
                if consent is not None:
                    events.append(consent[0])
                    states.append(consent[1])
        db.executemany(_insert("contacts", CONTACT_COLUMNS), rows)
        db.executemany(_insert("consent_events", EVENT_COLUMNS), events)
        db.executemany(_insert("consent_states", STATE_COLUMNS), states)
        counts = [counts[0] + len(rows), counts[1] + len(events)]
    timings["contacts+consents"] = time.perf_counter() - started
    log(
        f"sqlite: {counts[0]:,} contacts, {counts[1]:,} consent events and as many states "
        f"in {timings['contacts+consents']:.1f} s"
    )
    for table, columns, source in (
        ("suppressions", SUPPRESSION_COLUMNS, _suppression_rows(contacts, tenant)),
        ("dnc_entries", "id, registry, point_key, listed_at, removed_at", _dnc_rows(contacts)),
    ):
        started = time.perf_counter()
        db.executemany(_insert(table, columns, or_ignore=table == "dnc_entries"), source)
        timings[table] = time.perf_counter() - started
        log(f"sqlite: {table} in {timings[table]:.1f} s")
    db.execute("COMMIT")
    started = time.perf_counter()
    db.execute("ANALYZE")
    timings["analyze"] = time.perf_counter() - started
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    return timings
