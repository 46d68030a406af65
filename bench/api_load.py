"""The HTTP API under load: decisions and consent writes, PostgreSQL, several uvicorn workers.

    .venv/bin/python bench/api_load.py [--workers 4] [--contacts 10000] [--duration 20]
                                       [--warmup 5] [--no-search] [--rebuild]

Builds (or reuses) the seeded database of ``api_server.py``, starts ``consentry serve --workers N``
and drives it from a second process on 127.0.0.1 (this file run with ``--generate``: aiohttp on
one event loop). The load is open-loop: requests leave on a fixed schedule (constant arrival
rate) whatever the answers, and each latency counts from the scheduled instant, so a server that
falls behind shows its queue instead of slowing the generator down. Each scenario runs at its
target rate, then (unless ``--no-search``) at stepped rates to find the highest rate that still
meets the latency target. Prints a table and writes bench/results/api.json; see
docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import api_server
import machine

RESULTS = Path(__file__).resolve().parent / "results" / "api.json"
P99_TARGET_MS = 50.0
TARGETS = {"decisions": 500, "consent": 300}  # requests per second at p99 < 50 ms
MAX_ERROR_SHARE = 0.001
GIVE_UP_SECONDS = 2.0
DECISION_TOPICS = ("appointment-reminders", "promotions", "newsletter", "all-marketing")
DECISION_CHANNELS = ("email", "sms")

console = Console(width=None if sys.stdout.isatty() else 150)


# ---------------------------------------------------------------- the generator (2nd process)


def _bodies(scenario: str, contacts: list[str], count: int, first: int, seed: int) -> list[bytes]:
    """Request bodies, built before the clock starts so the schedule pays no encoding."""
    rng = random.Random(seed)
    out = []
    for i in range(first, first + count):
        if scenario == "decisions":
            body = {
                "contact": rng.choice(contacts),
                "topic": rng.choice(DECISION_TOPICS),
                "channel": rng.choice(DECISION_CHANNELS),
            }
        else:
            # Every contact in turn, withdrawn on one pass and granted again on the next: the
            # state really changes, and consecutive writes hit different contacts.
            granting = (i // len(contacts)) % 2 == 1
            body = {
                "contact": contacts[i % len(contacts)],
                "topic": "all-service",
                "channel": "email",
                "action": "granted" if granting else "withdrawn",
                "basis": "service_necessity",
                "evidence": {"method": "api"},
            }
        out.append(json.dumps(body).encode())
    return out


Request = tuple[str, dict[str, str], bytes]  # path, headers of its own, body


def _requests(spec: dict[str, Any], total: int) -> tuple[dict[str, str], list[Request]]:
    """Common headers and every request of the run, in order.

    A spec with ``requests_file`` brings its requests prepared (signed webhooks, unsubscribe
    links: see signals_load.py), a JSON list of ``[path, headers, body]``; they are reused in
    turn when the run needs more than the file holds.
    """
    if "requests_file" in spec:
        prepared = json.loads(Path(spec["requests_file"]).read_text())
        first = spec["first"]
        chosen = [prepared[(first + i) % len(prepared)] for i in range(total)]
        return {}, [(path, headers, body.encode()) for path, headers, body in chosen]
    contacts = json.loads(Path(spec["contacts_file"]).read_text())[spec["scenario"]]
    bodies = _bodies(spec["scenario"], contacts, total, spec["first"], spec["seed"])
    path = "/v1/decisions" if spec["scenario"] == "decisions" else "/v1/consent"
    headers = {"Authorization": f"Bearer {spec['token']}", "Content-Type": "application/json"}
    return headers, [(path, {}, body) for body in bodies]


async def _drive(spec: dict[str, Any]) -> dict[str, Any]:
    """One keep-alive connection per sender; a schedule feeds them (wrk2's model).

    A request waits in the queue when every connection is busy, and that wait counts in its
    latency. One that could not leave within ``GIVE_UP_SECONDS`` of its instant is not sent and
    counts as an error, which keeps an overloaded run from taking minutes to drain.
    """
    import aiohttp

    rate, warmup, duration = spec["rate"], spec["warmup"], spec["duration"]
    total = int(rate * (warmup + duration))
    headers, requests = _requests(spec, total)
    loop = asyncio.get_running_loop()
    measured: list[tuple[float, float, int]] = []  # (latency s, service s, status)
    failures: dict[str, int] = {}
    lateness: list[float] = []
    skipped: list[int] = []
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    start = loop.time() + 0.2
    window_start = start + warmup

    def fail(kind: str, due: float) -> None:
        if due >= window_start:
            failures[kind] = failures.get(kind, 0) + 1

    async def sender(session: aiohttp.ClientSession) -> None:
        while (item := await queue.get()) is not None:
            i, due = item
            sent = loop.time()
            if sent - due > GIVE_UP_SECONDS:
                fail("not sent: queued too long", due)
                skipped.append(i)
                continue
            lateness.append(sent - due)
            try:
                path, own_headers, body = requests[i]
                async with session.post(path, data=body, headers=own_headers) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                fail(type(exc).__name__, due)
                continue
            done = loop.time()
            if due >= window_start:
                measured.append((done - due, done - sent, status))

    connector = aiohttp.TCPConnector(limit=spec["connections"], ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=10)
    cpu_before = time.process_time()
    async with aiohttp.ClientSession(
        spec["url"], connector=connector, timeout=timeout, headers=headers
    ) as session:
        senders = [asyncio.create_task(sender(session)) for _ in range(spec["connections"])]
        for i in range(total):
            due = start + i / rate
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            queue.put_nowait((i, due))
        for _ in senders:
            queue.put_nowait(None)
        await asyncio.gather(*senders)
        finished = loop.time()
    return {
        "measured": measured,
        "failures": failures,
        "window": [window_start, start + total / rate, finished],
        "max_lateness_ms": 1000 * max(lateness, default=0.0),
        "generator_cpu_seconds": time.process_time() - cpu_before,
        "sent": total - len(skipped),
    }


def generate(spec_path: str) -> None:
    """``--generate``: run one schedule and print the raw measurements as JSON."""
    spec = json.loads(Path(spec_path).read_text())
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the plain loop works too, at a higher cost per request
        pass
    result = json.dumps(asyncio.run(_drive(spec)))
    # The event loop may leave the inherited stdout pipe non-blocking: a write larger than the
    # pipe then stops short (EAGAIN) and the orchestrator reads a truncated result.
    os.set_blocking(sys.stdout.fileno(), True)
    sys.stdout.write(result + "\n")
    sys.stdout.flush()


# ---------------------------------------------------------------- the orchestrator


def _cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def _summarise(raw: dict[str, Any], rate: float, duration: float) -> dict[str, Any]:
    measured = raw["measured"]
    latencies = sorted(m[0] * 1000 for m in measured)
    service = sorted(m[1] * 1000 for m in measured)
    statuses: dict[str, int] = {}
    for _, _, status in measured:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    ok = sum(v for k, v in statuses.items() if k.startswith("2"))
    errors = len(measured) - ok + sum(raw["failures"].values())
    window_start, last_due, finished = raw["window"]
    p99 = _percentile(latencies, 0.99)
    scheduled = round(rate * duration)
    error_share = errors / max(1, scheduled)
    return {
        "offered_per_second": rate,
        "achieved_per_second": round(ok / max(1e-9, finished - window_start), 1),
        "requests": scheduled,
        "ok": ok,
        "errors": errors,
        "statuses": statuses,
        "transport_failures": raw["failures"],
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50), 2),
            "p95": round(_percentile(latencies, 0.95), 2),
            "p99": round(p99, 2),
            "max": round(latencies[-1], 2) if latencies else float("nan"),
        },
        "service_p99_ms": round(_percentile(service, 0.99), 2),
        "drain_seconds": round(finished - last_due, 2),
        "generator_max_lateness_ms": round(raw["max_lateness_ms"], 2),
        "generator_cpu_seconds": round(raw["generator_cpu_seconds"], 2),
        "met": p99 <= P99_TARGET_MS and error_share <= MAX_ERROR_SHARE,
    }


class Waits:
    """Samples what this database's backends are doing, ten times a second, during a run."""

    QUERY = (
        "SELECT coalesce(wait_event_type, 'CPU') AS kind, count(*) FROM pg_stat_activity "
        "WHERE datname = %s AND state = 'active' AND pid <> pg_backend_pid() GROUP BY 1"
    )

    def __init__(self) -> None:
        self.totals: dict[str, int] = {}
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Waits:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psycopg

        url = api_server.database_url().replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url, autocommit=True) as conn:
            while not self._stop.wait(0.1):
                for kind, count in conn.execute(self.QUERY, (api_server.DATABASE,)):
                    self.totals[kind] = self.totals.get(kind, 0) + count
                self.samples += 1

    def mean(self) -> dict[str, float]:
        """Average number of backends per wait kind ('CPU': running, 'Lock': row locks, ...)."""
        return {k: round(v / max(1, self.samples), 2) for k, v in sorted(self.totals.items())}


class Run:
    def __init__(self, args: argparse.Namespace, server: api_server.Server, token: str) -> None:
        self.args = args
        self.server = server
        self.token = token
        self.contacts_file = Path(tempfile.mkstemp(prefix="api-load-", suffix=".json")[1])
        self.consent_sent = 0  # global index, so withdraw/grant keeps alternating across runs
        self.seed = 0

    def measure(self, scenario: str, rate: float, duration: float) -> dict[str, Any]:
        self.seed += 1
        spec = {
            "scenario": scenario,
            "rate": rate,
            "warmup": self.args.warmup,
            "duration": duration,
            "url": self.server.url,
            "token": self.token,
            "contacts_file": str(self.contacts_file),
            "connections": self.args.connections,
            "first": self.consent_sent if scenario == "consent" else 0,
            "seed": self.seed,
        }
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(spec, f)
        load_before = os.getloadavg()
        busy0, total0 = _cpu_busy()
        cpu0 = self.server.cpu_seconds()
        try:
            with Waits() as waits:
                out = subprocess.run(  # noqa: S603  (this file, our own interpreter)
                    [sys.executable, __file__, "--generate", f.name],
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout
        finally:
            Path(f.name).unlink()
        busy1, total1 = _cpu_busy()
        cpu1 = self.server.cpu_seconds()
        if scenario == "consent":
            self.consent_sent += int(rate * (self.args.warmup + duration))
        first, _, rest = out.partition("\n")
        raw = json.loads(first)  # the generator's result is its first line
        if rest.strip():
            console.log(f"the generator also wrote: {rest.strip()[:300]!r}")
        result = _summarise(raw, rate, duration)
        result["postgres_backends_by_wait"] = waits.mean()
        result["machine_cpu_busy"] = round((busy1 - busy0) / max(1.0, total1 - total0), 3)
        sent = max(1, raw["sent"])
        used = {k: api_server.cpu_between(cpu0[k], cpu1[k]) for k in ("server", "postgres")}
        result["cpu_ms_per_request"] = {
            "server": round(1000 * used["server"] / sent, 2),
            "postgres": round(1000 * used["postgres"] / sent, 2),
            "generator": round(1000 * result["generator_cpu_seconds"] / sent, 2),
        }
        result["load_average_before"] = load_before
        mark = "[green]met[/]" if result["met"] else "[red]missed[/]"
        lat = result["latency_ms"]
        console.log(
            f"{scenario} @ {rate:,.0f}/s: {result['achieved_per_second']:,.0f}/s ok, "
            f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, errors {result['errors']} {mark}"
        )
        return result

    def search(self, scenario: str, target: float, first: dict[str, Any]) -> dict[str, Any]:
        """Bisect for the highest rate that meets the target, starting from the target's run."""
        steps = [first]
        met: float | None = target if first["met"] else None
        missed: float | None = None if first["met"] else target
        for _ in range(self.args.search_steps):
            if missed is None:
                rate = 1.5 * (met or target)
            elif met is None:
                rate = missed / 2
            else:
                rate = (met + missed) / 2
            if rate < 10 or (met and missed and missed - met <= max(10.0, 0.1 * missed)):
                break
            result = self.measure(scenario, round(rate), self.args.step_duration)
            steps.append(result)
            if result["met"]:
                met = rate
            else:
                missed = rate
        return {"steps": steps[1:], "max_sustainable_per_second": met}


def _table(results: dict[str, Any]) -> None:
    table = Table(
        title=f"HTTP API, {results['workers']} workers, PostgreSQL "
        f"(open loop, latency from the scheduled instant; target p99 ≤ {P99_TARGET_MS:.0f} ms)"
    )
    for column in (
        "scenario",
        "offered/s",
        "achieved/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        "CPU ms/req srv+pg",
        "machine busy",
        "verdict",
    ):
        table.add_column(column, justify="left" if column in {"scenario", "verdict"} else "right")
    for name, scenario in results["scenarios"].items():
        rows = [("target", scenario["at_target"])]
        rows += [("step", s) for s in scenario.get("search", {}).get("steps", [])]
        for label, r in rows:
            lat = r["latency_ms"]
            verdict = "[green]met[/]" if r["met"] else "[red]missed[/]"
            table.add_row(
                f"{name} ({label})",
                f"{r['offered_per_second']:,.0f}",
                f"{r['achieved_per_second']:,.0f}",
                f"{lat['p50']:.1f}",
                f"{lat['p95']:.1f}",
                f"{lat['p99']:.1f}",
                f"{lat['max']:.0f}",
                f"{r['errors']:,}",
                f"{r['cpu_ms_per_request']['server']:.1f}+{r['cpu_ms_per_request']['postgres']:.1f}",
                f"{100 * r['machine_cpu_busy']:.0f}%",
                verdict,
            )
        best = scenario.get("search", {}).get("max_sustainable_per_second")
        if "search" in scenario:
            table.add_row(f"[bold]{name}: highest rate met[/]", f"{best or 0:,.0f}", *[""] * 9)
    console.print(table)


def _versions() -> dict[str, str]:
    """Versions of what serves and what loads, and where consentry was imported from (a
    ``PYTHONPATH`` pointing elsewhere measures other code than the commit in ``machine``)."""
    from importlib.metadata import version

    import consentry

    found = {name: version(name) for name in ("fastapi", "uvicorn", "psycopg", "aiohttp")}
    found["consentry_imported_from"] = str(Path(consentry.__file__).resolve().parent)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generate", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--contacts", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds measured")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--step-duration", type=float, default=10.0)
    parser.add_argument("--search-steps", type=int, default=5, help="bisection steps")
    parser.add_argument("--connections", type=int, default=64, help="generator's connections")
    parser.add_argument("--only", choices=tuple(TARGETS))
    parser.add_argument("--rate", type=float, help="measure this rate instead of the target")
    parser.add_argument("--no-search", action="store_true", help="only the target rates")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the seeded database")
    args = parser.parse_args()
    if args.generate:
        generate(args.generate)
        return

    seeded = api_server.prepare(args.contacts, rebuild=args.rebuild, log=console.log)
    results: dict[str, Any] = {
        "machine": machine.describe(),
        "versions": _versions(),
        "workers": args.workers,
        "database": {"rows": seeded.rows, "reused": seeded.reused},
        "settings": {
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "step_duration_s": args.step_duration,
            "generator_connections": args.connections,
            "p99_target_ms": P99_TARGET_MS,
        },
        "scenarios": {},
    }
    log_path = RESULTS.parent / "api-server.log"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    server = api_server.Server(args.workers, log_path)
    console.log(f"starting consentry serve --workers {args.workers} on {server.url}")
    server.start()
    run = Run(args, server, seeded.token)
    run.contacts_file.write_text(
        json.dumps({"decisions": seeded.contact_ids, "consent": seeded.emailable_ids})
    )
    try:
        from sqlalchemy import create_engine

        engine = create_engine(api_server.database_url())
        results["database"]["server"] = machine.postgres_version(engine)
        engine.dispose()
        for scenario, target in TARGETS.items():
            if args.only and scenario != args.only:
                continue
            out: dict[str, Any] = {"target_per_second": target}
            out["at_target"] = run.measure(scenario, args.rate or target, args.duration)
            if not args.no_search:
                out["search"] = run.search(scenario, args.rate or target, out["at_target"])
            results["scenarios"][scenario] = out
    finally:
        server.stop()
        run.contacts_file.unlink(missing_ok=True)
    results["load_average_after"] = os.getloadavg()
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    _table(results)
    console.print(f"results written to {RESULTS}")


if __name__ == "__main__":
    main()
