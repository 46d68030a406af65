"""SMS and WhatsApp dispatch end to end on PostgreSQL, through the gate, to a local provider stub.

    .venv/bin/python bench/phone_dispatch.py [--only sms|whatsapp] [--recipients 20000]
                                             [--windows 32,128] [--batches 500,2000] [--rebuild]
                                             [--workers 1,2] [--profile]

**What is measured.** A US tenant with a marketing topic "promotions" and ``--recipients``
contacts, each with a US mobile number (validated and typed by the product's own
``normalize_phone``), the same number for WhatsApp, and an active express consent to marketing on
the topic for SMS and for WhatsApp. There is an SMS marketing template (the brand and the STOP
instruction are added by the composer) and a WhatsApp template message naming an approved
template with two parameters. For each channel and each combination of window (messages in
flight) and claim size, a campaign to every contact is launched with
``services.campaigns.launch_campaign``, then a separate worker process (``bench/delivery.py``'s
``--dispatch-child``, run through this file) builds a ``Dispatcher`` the way a worker does
(``consentry.bootstrap`` from ``CONSENTRY_*`` settings, ``CONSENTRY_SMS_CHANNEL=twilio`` and
``CONSENTRY_WHATSAPP_CHANNEL=cloud`` with their base URLs pointed at 127.0.0.1) and runs
``run_until_idle``: claim, fence, the gate for each window, compose, mark in flight, send,
record. Messages leave only through the real ``TwilioSmsChannel`` and ``WhatsAppCloudChannel``
to the HTTP stub of ``bench/channels.py`` (uvicorn, one worker, in a third process), which
answers every request with the recorded provider fixture (so every message gets the same
provider id).

With ``--workers 1,2`` each combination also runs with that many worker processes sharing the
campaign (``delivery.run_workers``: they start together; the rate is over the time from the
first start to the last end, CPU seconds summed, the peak RSS the largest worker's).

Reported per run: sent messages per second of wall time, how many were sent, refused, deferred
and failed (sent equals ``--recipients`` when everything is set right), the worker's peak RSS
(``ru_maxrss``) and the CPU seconds of the worker, of its PostgreSQL backends and of the stub.

**Quiet hours.** The US rule pack allows marketing texts only from 8 a.m. to 9 p.m. at the
recipient's location. Before the runs every contact is given one time zone, chosen at run time:
the US zone where that window stays open longest from now, or, when no US zone has an hour of it
left, such a zone elsewhere (the contacts stay in the US, so the US pack applies). Deferrals
(``QUIET_HOURS``) are counted separately and are not in the rate.

The database ``consentry_phone_dispatch_bench`` on 127.0.0.1:5432 is built on the first run
(seconds for 20,000 contacts) and reused while its spec matches (a comment on the database:
contacts, a digest of the seeding code, the alembic head); ``--rebuild`` recreates it. Nothing
else on the server is touched. Prints a table and writes bench/results/phone_dispatch.json; the
target (2,000 requests/s for each of SMS and WhatsApp) is in docs/performance.md, section 4.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import inspect
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from rich.table import Table
from sqlalchemy import Engine, func, select, text

import channels
import delivery
import machine
import pg_load
from consentry.bootstrap import Container
from consentry.config import Settings
from consentry.domain.model import (
    BusinessProfile,
    Category,
    Channel,
    PhoneType,
    PointKind,
    point_index_value,
)
from consentry.domain.rules import US, quiet_until
from consentry.persistence.migrate import head_revision
from consentry.persistence.tables import dnc_entries, tenants
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.addresses import normalize_phone
from consentry.services.campaigns import CampaignInput, create_campaign, launch_campaign
from consentry.services.messages import TemplateInput, create_template
from consentry.services.tenancy import create_tenant, create_topic

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results" / "phone_dispatch.json"
DATABASE = "consentry_phone_dispatch_bench"
WORKER_APP = "consentry-phone-dispatch-bench-worker"  # application_name of the worker's backends
TENANT_SLUG = "bench-phone-retail"
TENANT_NAME = "Bench Retail"
TOPIC_KEY = "promotions"
PUBLIC_BASE_URL = delivery.PUBLIC_BASE_URL
KEYS, MASTER_KEY, INDEX_KEY = delivery.KEYS, delivery.MASTER_KEY, delivery.INDEX_KEY

TARGET_PER_SECOND = 2000.0  # requests/s to a local provider stub, each of SMS and WhatsApp

# Provider settings the worker gets; the stub accepts anything.
TWILIO_ACCOUNT_SID = "AC" + "3f1c2d4e5a6b7c8d9e0f1a2b3c4d5e6f"
TWILIO_AUTH_TOKEN = "bench-twilio-auth-token"  # noqa: S105  (sent to a local stub only)
SMS_SENDER = "+13125550199"
WHATSAPP_ACCESS_TOKEN = "bench-whatsapp-access-token"  # noqa: S105  (a local stub only)
WHATSAPP_APP_SECRET = "bench-whatsapp-app-secret"  # noqa: S105  (a local stub only)
WHATSAPP_PHONE_NUMBER_ID = "106540352242922"
WHATSAPP_TEMPLATE = "winter_offers"  # the approved template's name at Meta

SMS_TEMPLATE = TemplateInput(
    name="winter-offers-sms",
    topic=TOPIC_KEY,
    channel=Channel.SMS,
    text="Hi {{ contact.first_name }}, winter tyres are 20% off until Sunday, fitting "
    "included. Book: https://shop.bench-retail.example/winter",
)
WHATSAPP_TEMPLATE_INPUT = TemplateInput(
    name="winter-offers-whatsapp",
    topic=TOPIC_KEY,
    channel=Channel.WHATSAPP,
    text="",
    whatsapp_template=WHATSAPP_TEMPLATE,
    whatsapp_language="en_US",
    whatsapp_parameters=("contact.first_name", "business.name"),
)
TEMPLATES = {"sms": SMS_TEMPLATE, "whatsapp": WHATSAPP_TEMPLATE_INPUT}

# Numbers: real US area codes, exchanges 201-999 without N11 codes and 555.
AREA_CODES = ("212", "312", "415", "617", "206", "303", "404", "512", "602", "713", "305", "702")
EXCHANGES = tuple(e for e in range(201, 1000) if e % 100 != 11 and e != 555)
SEED_ZONE = "America/Chicago"  # replaced at run time (see _daytime_zone)
OTHER_SUPPRESSIONS = 25_000  # platform-wide SMS/WhatsApp suppressions of other people's numbers
OTHER_DNC = 25_000  # US-DNC entries of other people's numbers
ELSEWHERE = ("Pacific/Guam", "Europe/London", "Asia/Tokyo", "Asia/Kolkata", "Europe/Berlin")
DAYTIME_MARGIN = timedelta(hours=1)  # the chosen zone stays inside the window at least this long

console = delivery.console


def _log(message: str) -> None:
    console.log(message)


# ---------------------------------------------------------------- the database


def _number(n: int) -> tuple[str, PhoneType]:
    """Contact ``n``'s mobile number in E.164 and its line type, as the product reads it."""
    rest = n // len(AREA_CODES)
    raw = f"+1{AREA_CODES[n % len(AREA_CODES)]}{EXCHANGES[rest // 10_000]}{rest % 10_000:04d}"
    e164, kind = normalize_phone(raw, "US")
    if kind not in {PhoneType.MOBILE, PhoneType.FIXED_LINE_OR_MOBILE}:
        raise RuntimeError(f"{raw} is not a mobile number ({kind})")
    return e164, kind


def _contact_rows(tenant_id: uuid.UUID, wrapped: bytes, count: int) -> Iterator[tuple[Any, ...]]:
    """Rows as ``SqlContactRepository.add`` writes them: name and numbers sealed under the
    tenant's data key, the phone and WhatsApp blind indexes over the E.164 number."""
    start_ms = int(delivery.SEED_START.timestamp() * 1000)
    first_names, last_names = delivery.FIRST, delivery.LAST
    for n in range(1, count + 1):
        first = first_names[n % len(first_names)]
        last = last_names[(n // len(first_names)) % len(last_names)]
        phone, kind = _number(n)
        key = KEYS.blind_index(PointKind.PHONE, point_index_value(PointKind.PHONE, phone))
        millis = start_ms + n * delivery.SEED_SPACING_MS
        created = datetime.fromtimestamp(millis / 1000, UTC)
        yield (
            delivery._uuid7(millis, n),
            tenant_id,
            f"crm-{n}",
            KEYS.encrypt(tenant_id, wrapped, "contacts.name", f"{first} {last}"),
            KEYS.encrypt(tenant_id, wrapped, "contacts.phone", phone),
            key,
            kind.value,
            KEYS.encrypt(tenant_id, wrapped, "contacts.whatsapp", phone),
            key,  # the same number on WhatsApp: the same blind index (PointKind.PHONE)
            "US",
            SEED_ZONE,
            "en-US",
            False,
            created,
            created,
        )


def _seed_services(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    """Tenant, topic and the two templates, through the real services."""
    new_uow = lambda: SqlUnitOfWork(engine, KEYS)  # noqa: E731
    tenant = create_tenant(
        new_uow(),
        slug=TENANT_SLUG,
        name=TENANT_NAME,
        now=delivery.SEED_START,
        profile=BusinessProfile(
            legal_name="Bench Retail Inc.",
            country="US",
            postal_address="100 Commerce Way, Springfield, IL 62701",
            contact_email="hello@bench-retail.example",
        ),
    )
    topic = create_topic(
        new_uow(), TENANT_SLUG, key=TOPIC_KEY, name="Promotions", category=Category.MARKETING,
        now=delivery.SEED_START,
    )  # fmt: skip
    create_template(new_uow(), TENANT_SLUG, SMS_TEMPLATE)
    create_template(
        new_uow(),
        TENANT_SLUG,
        WHATSAPP_TEMPLATE_INPUT,
        known_whatsapp_templates=frozenset({WHATSAPP_TEMPLATE}),
    )
    return tenant.id, topic.id


def _copy_contacts(engine: Engine, tenant_id: uuid.UUID, count: int) -> float:
    started = time.perf_counter()
    with engine.connect() as conn:
        wrapped = conn.execute(select(tenants.c.data_key).where(tenants.c.id == tenant_id))
        data_key = wrapped.scalar_one()
        raw = conn.connection.driver_connection
        columns = ("id, tenant_id, external_ref, name_enc, phone_enc, phone_key, phone_type, "
                   "whatsapp_enc, whatsapp_key, country, time_zone, locale, age_attested, "
                   "created_at, updated_at")  # fmt: skip
        with raw.cursor() as cursor, cursor.copy(f"COPY contacts ({columns}) FROM STDIN") as copy:
            for row in _contact_rows(tenant_id, data_key, count):
                copy.write_row(row)
        raw.commit()
    return time.perf_counter() - started


def _seed_sql(tenant_id: uuid.UUID, topic_id: uuid.UUID) -> list[tuple[str, str]]:
    """Per contact one granted express consent event for SMS and one for WhatsApp, the states
    folded from them (``pg_load.consent_states_sql``), and suppressions and do-not-call entries
    of numbers that are not the tenant's contacts'."""
    event_id = pg_load._uuid7(
        "(extract(epoch FROM c.created_at) * 1000)::bigint + 3600000",
        "md5('ev:' || ch.channel || ':' || c.id::text)",
    )
    events = f"""
    INSERT INTO consent_events (id, tenant_id, seq, contact_id, point_key, topic_id, channel,
        action, basis, method, occurred_at, recorded_at, prev_hash, hash)
    SELECT {event_id}, c.tenant_id, row_number() OVER (ORDER BY c.id, ch.channel), c.id,
        CASE ch.channel WHEN 'sms' THEN c.phone_key ELSE c.whatsapp_key END,
        '{topic_id}', ch.channel, 'granted', 'express', 'import',
        c.created_at + interval '1 hour', c.created_at + interval '1 hour',
        repeat('0', 64), md5('h1:' || ch.channel || c.id::text) || md5('h2:' || c.id::text)
    FROM contacts c CROSS JOIN (VALUES ('sms'), ('whatsapp')) AS ch(channel)
    WHERE c.tenant_id = '{tenant_id}'
    """
    others = f"""
    INSERT INTO suppressions (id, tenant_id, point_key, channel, scope, reason, source,
        created_at)
    SELECT gen_random_uuid(), NULL, decode(md5('other-phone:' || j), 'hex'),
        CASE WHEN j % 2 = 0 THEN 'sms' ELSE 'whatsapp' END, 'all',
        CASE WHEN j % 3 = 0 THEN 'reassigned_number' ELSE 'provider' END, 'bench',
        timestamptz '{delivery.SEED_START.isoformat()}' + j * interval '1 hour'
    FROM generate_series(1, {OTHER_SUPPRESSIONS}) AS j
    """
    dnc = f"""
    INSERT INTO dnc_entries (id, registry, point_key, listed_at)
    SELECT gen_random_uuid(), 'US-DNC', decode(md5('dnc-phone:' || j), 'hex'),
        timestamptz '{delivery.SEED_START.isoformat()}' + j * interval '1 hour'
    FROM generate_series(1, {OTHER_DNC}) AS j
    """
    return [
        ("consent_events", events),
        ("consent_states", pg_load.consent_states_sql(tenant_id)),
        ("other suppressions", others),
        ("other do-not-call entries", dnc),
    ]


def _seed_version() -> str:
    """A digest of the code and data that decide what the database holds."""
    digest = hashlib.sha256()
    for part in (_number, _contact_rows, _seed_services, _seed_sql, pg_load.consent_states_sql):
        digest.update(inspect.getsource(part).encode())
    digest.update(repr((SMS_TEMPLATE, WHATSAPP_TEMPLATE_INPUT, AREA_CODES, SEED_ZONE)).encode())
    digest.update(repr((delivery.FIRST, delivery.LAST, OTHER_SUPPRESSIONS, OTHER_DNC)).encode())
    digest.update(KEYS.digest("k").encode())
    return digest.hexdigest()[:16]


def _spec(count: int) -> dict[str, Any]:
    return {"contacts": count, "seed": _seed_version(), "migration": head_revision()}


def _row_counts(engine: Engine) -> dict[str, int]:
    counts = delivery._row_counts(engine)
    with engine.connect() as conn:
        counts["dnc_entries"] = conn.execute(
            select(func.count()).select_from(dnc_entries)
        ).scalar_one()
    return counts


def prepare(count: int, *, rebuild: bool) -> tuple[Engine, dict[str, Any]]:
    """The benchmark database, reused when its spec and row counts match."""
    return delivery.prepare_database(
        DATABASE,
        _spec(count),
        rebuild=rebuild,
        log=_log,
        row_counts=_row_counts,
        seed_services=_seed_services,
        copy_contacts=lambda engine, tenant_id: _copy_contacts(engine, tenant_id, count),
        seed_sql=_seed_sql,
    )


# ---------------------------------------------------------------- quiet hours


def _room(zone: str, now: datetime) -> timedelta:
    """How long the US marketing-text window stays open from ``now`` in ``zone``; negative
    (minus the wait for it to open) when it is closed."""
    window = next(w for w in US.quiet_hours if Channel.SMS in w.channels)
    local = now.astimezone(ZoneInfo(zone))
    start = datetime.combine(local.date(), window.start, tzinfo=local.tzinfo)
    end = datetime.combine(local.date(), window.end, tzinfo=local.tzinfo)
    if local < start:
        return local - start
    if local >= end:
        return local - (start + timedelta(days=1))
    return end - local


def _daytime_zone(now: datetime) -> dict[str, Any]:
    """The US zone where the window stays open longest from ``now``; when that is under
    ``DAYTIME_MARGIN``, the zone where it does among the US ones and ``ELSEWHERE``."""
    zone = max(US.fallback_time_zones, key=lambda z: _room(z, now))
    if _room(zone, now) < DAYTIME_MARGIN:
        zone = max((*US.fallback_time_zones, *ELSEWHERE), key=lambda z: _room(z, now))
    allowed_for = _room(zone, now)
    later = now + min(DAYTIME_MARGIN, max(allowed_for, timedelta(0)))
    quiet = [quiet_until(US, Channel.SMS, Category.MARKETING, zone, at) for at in (now, later)]
    return {
        "time_zone": zone,
        "local_time": now.astimezone(ZoneInfo(zone)).strftime("%H:%M"),
        "minutes_inside_window": round(allowed_for.total_seconds() / 60),
        "quiet_now": quiet[0] is not None or quiet[1] is not None,
    }


def _set_time_zone(engine: Engine, zone: str) -> int:
    """Every contact of the tenant in ``zone``; the number of contacts changed."""
    with engine.begin() as conn:
        changed = conn.execute(
            text("UPDATE contacts SET time_zone = :zone WHERE time_zone IS DISTINCT FROM :zone"),
            {"zone": zone},
        ).rowcount
    if changed:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM (ANALYZE) contacts")
    return int(changed)


# ---------------------------------------------------------------- dispatch


def _launch(container: Container, channel: str, name: str) -> tuple[str, dict[str, Any]]:
    """A campaign on ``channel`` to every contact, launched; its id and what planning decided
    (rows by status, recipients by primary reason)."""
    campaign = create_campaign(
        container.uow(),
        TENANT_SLUG,
        CampaignInput(name=name, topic=TOPIC_KEY, template=TEMPLATES[channel].name),
        actor="bench",
    )
    progress = launch_campaign(
        container.uow(), TENANT_SLUG, str(campaign.id), container.composer().reviewer
    )
    planned = {"by_status": dict(progress.by_status),
               "by_reason": dict(progress.campaign.plan_counts or {})}  # fmt: skip
    return str(campaign.id), planned


def _outcome(engine: Engine, campaign_id: str) -> dict[str, Any]:
    """The campaign's deliveries after the worker: rows by status, and the unsent ones as
    refused (suppressed), deferred (due later: quiet hours, a frequency cap, a retry) and
    failed."""
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, count(*) FROM deliveries WHERE campaign_id = :c GROUP BY status"),
            {"c": uuid.UUID(campaign_id)},
        ).all()
    by_status = {status: int(n) for status, n in rows}
    return {
        "by_status": by_status,
        "refused": by_status.get("suppressed", 0),
        "deferred": sum(by_status.get(s, 0) for s in ("planned", "queued", "deferred")),
        "failed": sum(by_status.get(s, 0) for s in ("failed", "bounced", "unknown", "sending")),
    }


def _worker_env(stub_port: int, window: int, batch: int, connections: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONSENTRY_")}
    base = f"http://127.0.0.1:{stub_port}"
    env.update(
        CONSENTRY_DATABASE_URL=delivery._url(DATABASE, application_name=WORKER_APP),
        CONSENTRY_MASTER_KEY=base64.b64encode(MASTER_KEY).decode(),
        CONSENTRY_INDEX_KEY=base64.b64encode(INDEX_KEY).decode(),
        CONSENTRY_DATA_DIR=tempfile.gettempdir(),
        CONSENTRY_PUBLIC_BASE_URL=PUBLIC_BASE_URL,
        CONSENTRY_SMS_CHANNEL="twilio",
        CONSENTRY_TWILIO_ACCOUNT_SID=TWILIO_ACCOUNT_SID,
        CONSENTRY_TWILIO_AUTH_TOKEN=TWILIO_AUTH_TOKEN,
        CONSENTRY_TWILIO_BASE_URL=base,
        CONSENTRY_SMS_SENDER=SMS_SENDER,
        CONSENTRY_WHATSAPP_CHANNEL="cloud",
        CONSENTRY_WHATSAPP_ACCESS_TOKEN=WHATSAPP_ACCESS_TOKEN,
        CONSENTRY_WHATSAPP_APP_SECRET=WHATSAPP_APP_SECRET,
        CONSENTRY_WHATSAPP_BASE_URL=base,
        CONSENTRY_WHATSAPP_PHONE_NUMBER_ID=WHATSAPP_PHONE_NUMBER_ID,
        CONSENTRY_WHATSAPP_TEMPLATES=WHATSAPP_TEMPLATE,
        CONSENTRY_DELIVERY_WINDOW=str(window),
        CONSENTRY_DELIVERY_BATCH_SIZE=str(batch),
        CONSENTRY_PROVIDER_CONNECTIONS=str(connections),
    )
    return env


def _dispatch_once(
    engine: Engine,
    container: Container,
    stub: dict[str, Any],
    config: dict[str, Any],
    profile: str | None = None,
) -> dict[str, Any]:
    campaign_id, planned = _launch(container, config["channel"], config["name"])
    env = _worker_env(stub["port"], config["window"], config["batch"], config["connections"])
    # Profiled runs take each thread's own CPU time: what the worker computes per message.
    spec = {"campaign_id": campaign_id, "profile": profile, "timer": "cpu"}
    load_before = machine.load_average()
    stub_before = delivery._process_cpu(stub["pid"])
    workers = 1 if profile else config.get("workers", 1)
    result = delivery.run_workers(__file__, spec, env, workers, WORKER_APP)
    result.pop("settings", None)  # the email settings delivery.py reports
    result["stub_cpu_seconds"] = delivery._process_cpu(stub["pid"]) - stub_before
    result["per_second"] = result["sent"] / result["wall_seconds"]
    result["planned"] = planned
    result["outcome"] = _outcome(engine, campaign_id)
    result["load_average"] = {"before": load_before, "after": machine.load_average()}
    return {**config, **result}


def measure(engine: Engine, container: Container, args: argparse.Namespace) -> dict[str, Any]:
    zone = _daytime_zone(datetime.now(UTC))
    changed = _set_time_zone(engine, zone["time_zone"])
    _log(
        f"contacts' time zone: {zone['time_zone']} (local {zone['local_time']}, "
        f"{zone['minutes_inside_window']} min before the window closes; {changed:,} changed)"
    )
    stamp = datetime.now(UTC).strftime("%H%M%S")
    runs: list[dict[str, Any]] = []
    port = channels._free_port()
    command = [sys.executable, channels.__file__, "--serve-http", str(port)]
    with channels._child(command, port) as process:
        stub = {"port": port, "pid": process.pid}
        configs = [
            {
                "channel": channel,
                "window": window,
                "batch": batch,
                "workers": workers,
                "connections": connections,
            }
            for channel in args.channels
            for workers in args.workers
            for connections in args.connections
            for window in args.windows
            for batch in args.batches
        ]
        for i, config in enumerate(configs):
            config["name"] = f"phone-{stamp}-{i}"
            delivery._reset(engine)
            run = _dispatch_once(engine, container, stub, config)
            runs.append(run)
            _log(
                f"{run['channel']}: {run['workers']} worker(s), {run['connections']} "
                f"connection(s), window {run['window']}, "
                f"batch {run['batch']}: "
                f"{run['sent']:,} sent in {run['wall_seconds']:.2f} s = "
                f"{run['per_second']:,.0f}/s, peak RSS {run['peak_rss_mb']:.0f} MB; planned "
                f"{run['planned']['by_reason']}, afterwards {run['outcome']['by_status']}"
            )
        profiles = _profile_runs(engine, container, stub, args, stamp) if args.profile else {}
    delivery._reset(engine)
    return {
        "stub": "uvicorn (bench/channels.py --serve-http), one worker",
        "recipients": args.recipients,
        "quiet_hours": zone,
        "runs": runs,
        "profiles": profiles,
        "target_per_second": TARGET_PER_SECOND,
    }


def _profile_runs(engine: Engine, container: Container, stub: dict[str, Any],
                  args: argparse.Namespace, stamp: str) -> dict[str, Any]:  # fmt: skip
    """Per channel, the first window and claim size once more under cProfile, each thread's
    CPU time (main thread and sending threads apart); the statistics are written beside the
    results as ``phone-profile-<channel>-main.prof`` and ``-send-threads.prof``."""
    RESULTS.parent.mkdir(exist_ok=True)
    profiles: dict[str, Any] = {}
    for channel in args.channels:
        config = {"channel": channel, "window": args.windows[0], "batch": args.batches[0],
                  "connections": args.connections[0],
                  "name": f"phone-profile-{stamp}-{channel}"}  # fmt: skip
        delivery._reset(engine)
        path = str(RESULTS.parent / f"phone-profile-{channel}")
        run = _dispatch_once(engine, container, stub, config, path)
        profiles[channel] = run.get("profile", {})
        main = run["profile"]["main_total_seconds"]
        sends = run["profile"].get("send_threads_total_seconds", 0.0)
        _log(
            f"profiled {channel}: {run['per_second']:,.0f}/s under the profiler; thread CPU "
            f"{main:.2f} s main, {sends:.2f} s sending threads ({path}-*.prof)"
        )
    return profiles


# ---------------------------------------------------------------- output and main


def _print(result: dict[str, Any]) -> None:
    zone = result["quiet_hours"]
    table = Table(
        title=f"SMS (Twilio) and WhatsApp (Cloud API) dispatch, {result['recipients']:,} "
        f"recipients, to a local stub; contacts in {zone['time_zone']} ({zone['local_time']})"
    )
    for column in ("channel", "workers", "connections", "window", "batch", "sent", "refused",
                   "deferred", "failed",
                   "wall s", "messages/s", "peak RSS MB", "CPU s worker",
                   "of which main thread", "worker CPU ms/message", "CPU s PostgreSQL",
                   "CPU s stub", "load before"):  # fmt: skip
        table.add_column(column, justify="left" if column == "channel" else "right")
    for run in result["runs"]:
        table.add_row(
            run["channel"],
            str(run.get("workers", 1)),
            str(run.get("connections", 32)),
            str(run["window"]),
            str(run["batch"]),
            f"{run['sent']:,}",
            f"{run['outcome']['refused']:,}",
            f"{run['outcome']['deferred']:,}",
            f"{run['outcome']['failed']:,}",
            f"{run['wall_seconds']:.2f}",
            f"{run['per_second']:,.0f}",
            f"{run['peak_rss_mb']:.0f}",
            f"{run['worker_cpu_seconds']:.1f}",
            f"{run.get('main_thread_cpu_seconds', 0.0):.1f}",
            f"{1000 * run['worker_cpu_seconds'] / max(run['sent'], 1):.2f}",
            f"{run['backend_cpu_seconds']:.1f}",
            f"{run['stub_cpu_seconds']:.1f}",
            f"{run['load_average']['before'][0]:.2f}",
        )
    console.print(table)
    for channel in dict.fromkeys(r["channel"] for r in result["runs"]):
        best = max((r for r in result["runs"] if r["channel"] == channel),
                   key=lambda r: r["per_second"])  # fmt: skip
        verdict = "MET" if best["per_second"] >= TARGET_PER_SECOND else "MISSED"
        console.print(
            f"{channel}: best {best['per_second']:,.0f} messages/s ({best['workers']} worker(s), "
            f"{best.get('connections', 32)} connections, window {best['window']}, "
            f"batch {best['batch']}; target ≥ {TARGET_PER_SECOND:,.0f}: [bold]{verdict}[/])"
        )


def _source() -> dict[str, Any]:
    files = (
        "src/consentry/services/dispatch.py",
        "src/consentry/services/campaigns.py",
        "src/consentry/services/outbound.py",
        "src/consentry/services/sending.py",
        "src/consentry/persistence/deliveries.py",
        "src/consentry/persistence/eligibility.py",
        "src/consentry/channels/__init__.py",
        "src/consentry/channels/twilio_sms.py",
        "src/consentry/channels/whatsapp_cloud.py",
        "src/consentry/services/compose/sms.py",
        "src/consentry/services/compose/whatsapp.py",
        "src/consentry/services/compose/templates.py",
    )
    state = machine.source_state()
    state["sha256"] = {
        name: hashlib.sha256((machine.REPO / name).read_bytes()).hexdigest()[:12]
        for name in files
        if (machine.REPO / name).exists()
    }
    return state


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", choices=("sms", "whatsapp"))
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--windows", type=delivery._numbers, default=[32, 128])
    parser.add_argument("--batches", type=delivery._numbers, default=[500, 2000])
    parser.add_argument("--rebuild", action="store_true")
    parser.add_argument("--workers", type=delivery._numbers, default=[1],
                        help="worker processes sharing each campaign, e.g. 1,2")  # fmt: skip
    parser.add_argument(
        "--connections",
        type=delivery._numbers,
        default=[32],
        help="CONSENTRY_PROVIDER_CONNECTIONS per worker, e.g. 4,32",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also one run per channel under cProfile (thread CPU time)",
    )
    parser.add_argument("--dispatch-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dispatch_child is not None:
        delivery.dispatch_child(args.dispatch_child)
        return
    args.channels = [args.only] if args.only else ["sms", "whatsapp"]

    out: dict[str, Any] = {"machine": machine.describe(), "source": _source()}
    out["machine"]["load_average_start"] = machine.load_average()
    engine, database = prepare(args.recipients, rebuild=args.rebuild)
    out["database"] = {"name": DATABASE, **database, "server": machine.postgres_version(engine)}
    with engine.connect() as conn:
        out["database"]["server"]["synchronous_commit"] = conn.exec_driver_sql(
            "SHOW synchronous_commit"
        ).scalar_one()
    settings = Settings(
        public_base_url=PUBLIC_BASE_URL,
        whatsapp_templates=WHATSAPP_TEMPLATE,
        whatsapp_phone_number_id=WHATSAPP_PHONE_NUMBER_ID,
    )
    container = Container(settings=settings, engine=engine, keys=KEYS)
    try:
        out["dispatch"] = measure(engine, container, args)
    finally:
        container.close()
    out["machine"]["load_average_end"] = machine.load_average()
    out["machine"]["date_utc_end"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2, default=str) + "\n")
    _print(out["dispatch"])
    console.print(f"wrote {RESULTS.relative_to(BENCH_DIR.parent)}")


if __name__ == "__main__":
    main()
