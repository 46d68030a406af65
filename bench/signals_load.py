"""Opt-outs under load: RFC 8058 one-click POSTs and signed provider webhooks, PostgreSQL.

    .venv/bin/python bench/signals_load.py [--workers 4] [--contacts 20000] [--duration 20]
                                           [--only one-click|twilio|whatsapp|sendgrid]

Uses the seeded database of ``api_server.py`` (every second contact has marketing consent to
"promotions" by email) and ``consentry serve --workers N`` with the provider secrets set, driven
from a second process on 127.0.0.1 by ``api_load.py --generate`` (open loop: latencies count from
each request's scheduled instant). Every request is prepared and signed before the clock starts:

- ``one-click``: ``POST /u/<token>`` with ``List-Unsubscribe=One-Click``, one link per consented
  contact, each a real withdrawal the first time (ledger event under the opt-out fence); once
  every link has been used, the same links again (the idempotent path). The result says how
  many were real withdrawals. Target 300/s with p99 under 30 ms.
- ``twilio``: inbound SMS from the seeded contacts' numbers, STOP and START in turn (each a
  platform-wide keyword suppression or its lifting, with a TwiML reply), one event per request,
  ``X-Twilio-Signature`` verified.
- ``whatsapp``: Cloud API status webhooks, ``STATUSES`` per request, ``X-Hub-Signature-256``.
- ``sendgrid``: Event Webhook batches of ``BOUNCES`` hard bounces, ECDSA-signed.
  Webhook target: 1,000 events/s kept up with (no errors, p99 under a second).

Status and bounce events name messages this database never sent: each is verified, parsed,
recorded once under its event id with its payload sealed, looked up, and settled
``unattributed``; applying a matched one adds a suppression or a delivery update. Writes
bench/results/signals.json; see docs/performance.md.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from rich.console import Console
from sqlalchemy import create_engine, func, select

import api_load
import api_server
import machine
from consentry.bootstrap import bootstrap
from consentry.domain.model import Channel
from consentry.persistence.tables import consent_events, inbound_events
from consentry.services.clock import utcnow
from consentry.services.compose.tokens import TokenClaims
from consentry.services.demo import DEMO_SLUG

RESULTS = Path(__file__).resolve().parent / "results" / "signals.json"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "bench-twilio-auth-token"  # noqa: S105  (a test secret)
WHATSAPP_SECRET = "bench-whatsapp-app-secret"  # noqa: S105
STATUSES = 10  # WhatsApp statuses per webhook
BOUNCES = 25  # SendGrid events per batch
# scenario: (events per request, target events/s, p99 target ms)
SCENARIOS = {
    "one-click": (1, 300, 30.0),
    "twilio": (1, 1000, 1000.0),
    "whatsapp": (STATUSES, 1000, 1000.0),
    "sendgrid": (BOUNCES, 1000, 1000.0),
}
Make = Callable[[int], list[list[Any]]]  # requests for a run of this many
console = Console(width=None if sys.stdout.isatty() else 150)


def _twilio_signature(url: str, params: dict[str, str]) -> str:
    data = url + "".join(k + params[k] for k in sorted(params))
    digest = hmac.new(TWILIO_TOKEN.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _phone(n: int) -> str:
    return f"+1617{200 + n // 10_000:03d}{n % 10_000:04d}"  # api_server._person's numbers


def one_click_requests(links: list[str]) -> list[list[Any]]:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    return [[f"/u/{token}", form, "List-Unsubscribe=One-Click"] for token in links]


def twilio_requests(url: str, people: int, count: int, first: int = 0) -> list[list[Any]]:
    """Every person in turn, STOP on one pass and START on the next (``first`` carries the turn
    on from the previous run), so every message changes something."""
    out = []
    for i in range(first, first + count):
        params = {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": TWILIO_SID,
            "From": _phone(i % people),
            "To": "+15005550006",
            "Body": "STOP" if (i // people) % 2 == 0 else "START",
            "NumMedia": "0",
        }
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": _twilio_signature(url + "/webhooks/twilio/sms", params),
        }
        out.append(["/webhooks/twilio/sms", headers, urlencode(params)])
    return out


class TwilioTurns:
    """Twilio requests for successive runs, carrying the STOP/START turn from one to the next."""

    def __init__(self, url: str, people: int) -> None:
        self.url, self.people, self.sent = url, people, 0

    def __call__(self, count: int) -> list[list[Any]]:
        out = twilio_requests(self.url, self.people, count, self.sent)
        self.sent += count
        return out


def whatsapp_requests(count: int) -> list[list[Any]]:
    out = []
    now = int(time.time())
    for i in range(count):
        statuses = [
            {
                "id": "wamid." + secrets.token_urlsafe(24),
                "status": ("sent", "delivered", "read")[j % 3],
                "timestamp": str(now),
                "recipient_id": _phone(i * STATUSES + j)[1:],
            }
            for j in range(STATUSES)
        ]
        value = {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "1065403522"},
            "statuses": statuses,
        }
        body = json.dumps(
            {
                "object": "whatsapp_business_account",
                "entry": [{"id": "1022901293", "changes": [{"value": value, "field": "messages"}]}],
            }
        )
        digest = hmac.new(WHATSAPP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
        out.append(["/webhooks/whatsapp", headers, body])
    return out


def sendgrid_requests(key: ec.EllipticCurvePrivateKey, count: int) -> list[list[Any]]:
    out = []
    now = int(time.time())
    for i in range(count):
        events = [
            {
                "email": f"person{i * BOUNCES + j}@bench.example",
                "timestamp": now,
                "smtp-id": f"<{secrets.token_hex(12)}@mail.harbourauto.example>",
                "event": "bounce",
                "type": "bounce",
                "status": "5.1.1",
                "reason": "550 5.1.1 The email account that you tried to reach does not exist.",
                "sg_event_id": secrets.token_urlsafe(16),
                "sg_message_id": secrets.token_urlsafe(16),
            }
            for j in range(BOUNCES)
        ]
        body = json.dumps(events)
        # The timestamp is signed with the body; the server refuses stale ones, so the run
        # signs with a time a little ahead of the prepared batch's use.
        stamp = str(now + 60)
        signature = key.sign((stamp + body).encode(), ec.ECDSA(hashes.SHA256()))
        headers = {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        }
        out.append(["/webhooks/sendgrid", headers, body])
    return out


def mint_links() -> list[str]:
    """One unsubscribe link per contact consented to "promotions" by email."""
    container = bootstrap(api_server._settings(), migrate=False)
    tokens = container.unsubscribe_tokens()
    links = []
    try:
        with container.read_uow() as uow:
            tenant = uow.tenants.by_slug(DEMO_SLUG)
            topic = uow.topics.by_key(tenant.id, "promotions")
            with container.engine.connect() as conn:
                ids = conn.execute(
                    select(consent_events.c.contact_id)
                    .where(consent_events.c.tenant_id == tenant.id)
                    .where(consent_events.c.topic_id == topic.id)
                    .distinct()
                ).scalars()
                contact_ids = sorted(ids, key=str)
            issued = utcnow() - timedelta(days=1)
            for contact_id in contact_ids:
                contact = uow.contacts.get(tenant.id, contact_id)
                key = uow.contacts.point_key(contact, Channel.EMAIL)
                if key is None:
                    continue
                claims = TokenClaims(tenant.id, contact.id, topic.id, Channel.EMAIL, key, issued)
                links.append(tokens.mint(claims))
    finally:
        container.close()
    return links


def _counts() -> dict[str, int]:
    engine = create_engine(api_server.database_url())
    try:
        with engine.connect() as conn:
            return {
                t.name: int(conn.execute(select(func.count()).select_from(t)).scalar_one())
                for t in (consent_events, inbound_events)
            }
    finally:
        engine.dispose()


class Run:
    def __init__(self, args: argparse.Namespace, server: api_server.Server) -> None:
        self.args = args
        self.server = server
        self.used: dict[str, int] = {}

    def measure(self, scenario: str, make: Make, events_per_second: float) -> dict[str, Any]:
        per_request, _, p99_target = SCENARIOS[scenario]
        rate = events_per_second / per_request
        count = int(rate * (self.args.warmup + self.args.duration)) + 1
        prepared = Path(tempfile.mkstemp(prefix=f"signals-{scenario}-", suffix=".json")[1])
        prepared.write_text(json.dumps(make(count)))
        spec = {
            "scenario": scenario,
            "rate": rate,
            "warmup": self.args.warmup,
            "duration": self.args.duration,
            "url": self.server.url,
            "connections": self.args.connections,
            "requests_file": str(prepared),
            "first": self.used.get(scenario, 0),
            "seed": 0,
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        before = _counts()
        cpu0 = self.server.cpu_seconds()
        busy0, total0 = api_load._cpu_busy()
        try:
            with api_load.Waits() as waits:
                out = subprocess.run(  # noqa: S603  (our own file and interpreter)
                    [sys.executable, api_load.__file__, "--generate", f.name],
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout
        finally:
            Path(f.name).unlink()
            prepared.unlink()
        busy1, total1 = api_load._cpu_busy()
        cpu1 = self.server.cpu_seconds()
        after = _counts()
        self.used[scenario] = self.used.get(scenario, 0) + int(
            rate * (self.args.warmup + self.args.duration)
        )
        try:
            raw = json.loads(out)
        except json.JSONDecodeError:
            kept = RESULTS.parent / "generator-output.txt"
            kept.write_text(out)
            raise SystemExit(f"the generator's output is not JSON; kept in {kept}") from None
        result = api_load._summarise(raw, rate, self.args.duration)
        p99 = result["latency_ms"]["p99"]
        result["met"] = (
            p99 <= p99_target and result["errors"] <= api_load.MAX_ERROR_SHARE * result["requests"]
        )
        result["events_per_request"] = per_request
        result["offered_events_per_second"] = events_per_second
        result["achieved_events_per_second"] = round(result["achieved_per_second"] * per_request)
        result["rows_added"] = {k: after[k] - before[k] for k in after}
        result["postgres_backends_by_wait"] = waits.mean()
        result["machine_cpu_busy"] = round((busy1 - busy0) / max(1.0, total1 - total0), 3)
        sent = max(1, raw["sent"])
        used = {k: api_server.cpu_between(cpu0[k], cpu1[k]) for k in ("server", "postgres")}
        result["cpu_ms_per_request"] = {k: round(1000 * v / sent, 2) for k, v in used.items()}
        mark = "[green]met[/]" if result["met"] else "[red]missed[/]"
        withdrew = result["rows_added"].get("consent_events", 0)
        if scenario == "one-click" and withdrew < 0.95 * sent:
            # A link withdraws once; repeats append nothing and cost less than a withdrawal.
            result["links_used_up"] = True
            console.log(
                f"[yellow]only {withdrew:,} of {sent:,} one-clicks withdrew a consent: the run's "
                "links are used up, so this step measured repeats (shorten --duration and "
                "--warmup, or seed more --contacts)[/]"
            )
        console.log(
            f"{scenario} @ {events_per_second:,.0f} events/s: "
            f"{result['achieved_events_per_second']:,} events/s ok, p50 "
            f"{result['latency_ms']['p50']} ms, p99 {p99} ms, errors {result['errors']}, "
            f"rows {result['rows_added']} {mark}"
        )
        return result

    def search(self, scenario: str, make: Make, first: dict[str, Any]) -> dict[str, Any]:
        """Halve or grow from the target to bracket the highest rate that meets it."""
        target = SCENARIOS[scenario][1]
        met = target if first["met"] else None
        missed = None if first["met"] else target
        steps = []
        for _ in range(self.args.search_steps):
            rate = (
                1.5 * met if missed is None else (missed / 2 if met is None else (met + missed) / 2)
            )
            if met and missed and missed - met <= max(10.0, 0.1 * missed):
                break
            result = self.measure(scenario, make, round(rate))
            steps.append(result)
            if result["met"]:
                met = rate
            else:
                missed = rate
        return {"steps": steps, "max_sustainable_events_per_second": met}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--contacts", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--search-steps", type=int, default=3)
    parser.add_argument("--no-search", action="store_true")
    parser.add_argument("--only", choices=tuple(SCENARIOS), action="append")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()

    seeded = api_server.prepare(args.contacts, rebuild=args.rebuild, log=console.log)
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    os.environ.update(
        {
            "CONSENTRY_TWILIO_ACCOUNT_SID": TWILIO_SID,
            "CONSENTRY_TWILIO_AUTH_TOKEN": TWILIO_TOKEN,
            "CONSENTRY_WHATSAPP_APP_SECRET": WHATSAPP_SECRET,
            "CONSENTRY_SENDGRID_WEBHOOK_PUBLIC_KEY": base64.b64encode(public).decode(),
        }
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    server = api_server.Server(args.workers, RESULTS.parent / "signals-server.log")
    chosen = args.only or list(SCENARIOS)
    console.log("preparing signed requests")
    links = mint_links() if "one-click" in chosen else []
    # Webhook events are fresh in every run (a replayed event id would only be de-duplicated);
    # the unsubscribe links are as many as the consented contacts, used in turn across runs.
    makers: dict[str, Make] = {
        "one-click": lambda _count: one_click_requests(links),
        "twilio": TwilioTurns(server.url, len(seeded.contact_ids)),
        "whatsapp": whatsapp_requests,
        "sendgrid": lambda count: sendgrid_requests(key, count),
    }
    results: dict[str, Any] = {
        "machine": machine.describe(),
        "workers": args.workers,
        "database": {"rows": seeded.rows, "reused": seeded.reused},
        "links": len(links),
        "settings": vars(args),
        "scenarios": {},
    }
    console.log(f"starting consentry serve --workers {args.workers} on {server.url}")
    server.start()
    run = Run(args, server)
    try:
        engine = create_engine(api_server.database_url())
        results["database"]["server"] = machine.postgres_version(engine)
        engine.dispose()
        for scenario in chosen:
            out: dict[str, Any] = {"target_events_per_second": SCENARIOS[scenario][1]}
            out["at_target"] = run.measure(scenario, makers[scenario], SCENARIOS[scenario][1])
            if not args.no_search:
                out["search"] = run.search(scenario, makers[scenario], out["at_target"])
            results["scenarios"][scenario] = out
    finally:
        server.stop()
    results["load_average_after"] = os.getloadavg()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    console.print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
