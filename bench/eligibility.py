"""Time the gate's set-based twin on a prepared audience.

For each intent (marketing email, marketing SMS) ``SqlGateQueries.eligibility_summary`` runs once
to warm caches, then ``runs`` times timed, each in its own read-only unit of work, as
``services.gate.audience_summary`` would call it. The statements it sends are timed separately
(the quiet-hours lookup and the summary query), and the summary query is explained once
(``EXPLAIN (ANALYZE, BUFFERS)`` on PostgreSQL, ``EXPLAIN QUERY PLAN`` on SQLite). Streaming every
row through ``SqlGateQueries.eligibility`` is timed once, for information.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

import population as pop
from audience import KEYS, TENANT_SLUG, TOPIC_KEY
from consentry.domain.gate import Intent
from consentry.domain.model import Channel, Tenant
from consentry.persistence.eligibility import audience_settings
from consentry.persistence.uow import SqlUnitOfWork
from consentry.services.gate import intent_for

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHANNELS = {"marketing email": Channel.EMAIL, "marketing sms": Channel.SMS}

Log = Callable[[str], None]


class StatementLog:
    """The statements an engine sends while ``capture()`` is open, with the moment each started.

    A statement's time runs until the next one starts (or the call ends): SQLite returns the first
    row before the rest are computed, so the time of ``execute`` alone would hide the fetching.
    """

    def __init__(self, engine: Engine) -> None:
        self.entries: list[tuple[str, Any, float]] = []
        self._engine = engine
        self._active = False
        event.listen(engine, "before_cursor_execute", self._before)

    def _before(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        # SQLite's BEGIN goes through the cursor too; it is the unit of work's, not the query's.
        if self._active and statement != "BEGIN":
            self.entries.append((statement, parameters, time.perf_counter()))

    @contextmanager
    def capture(self) -> Iterator[list[tuple[str, Any, float]]]:
        self.entries = []
        self._active = True
        try:
            yield self.entries
        finally:
            self._active = False

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._before)


def _intents(engine: Engine) -> tuple[Tenant, dict[str, Intent]]:
    with SqlUnitOfWork(engine, KEYS, read_only=True) as uow:
        tenant = uow.tenants.by_slug(TENANT_SLUG)
        topic = uow.topics.by_key(tenant.id, TOPIC_KEY)
        return tenant, {
            name: intent_for(uow, tenant, topic, channel) for name, channel in CHANNELS.items()
        }


def _summary_once(
    engine: Engine, tenant: Tenant, intent: Intent, statements: StatementLog
) -> tuple[float, dict[str, int], list[float], list[tuple[str, Any, float]]]:
    with statements.capture() as sent, SqlUnitOfWork(engine, KEYS, read_only=True) as uow:
        started = time.perf_counter()
        summary = uow.gate.eligibility_summary(tenant, intent, pop.NOW)
        ended = time.perf_counter()
    starts = [s[2] for s in sent] + [ended]
    durations = [b - a for a, b in itertools.pairwise(starts)]
    return ended - started, dict(sorted(summary.by_reason.items())), durations, list(sent)


def _explain(engine: Engine, statement: str, parameters: Any) -> str:
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            # The settings the summary runs under, for this transaction only, as it sets them.
            audience_settings(conn)
            rows = conn.exec_driver_sql(
                "EXPLAIN (ANALYZE, BUFFERS, SETTINGS) " + statement, parameters
            )
            return "\n".join(r[0] for r in rows)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters)
        return "\n".join(f"{r[0]:>4} {r[1]:>4} {r[3]}" for r in rows)


def _stream(engine: Engine, tenant: Tenant, intent: Intent) -> dict[str, Any]:
    verdicts: Counter[str] = Counter()
    with SqlUnitOfWork(engine, KEYS, read_only=True) as uow:
        started = time.perf_counter()
        for row in uow.gate.eligibility(tenant, intent, pop.NOW):
            verdicts[row.decision.verdict.value] += 1
        elapsed = time.perf_counter() - started
    rows = sum(verdicts.values())
    return {
        "rows": rows,
        "seconds": elapsed,
        "rows_per_second": rows / elapsed,
        "verdicts": dict(sorted(verdicts.items())),
    }


def measure(
    engine: Engine, *, runs: int, log: Log, label: str = "", stream: bool = True
) -> dict[str, Any]:
    """Summaries per intent (min and median of ``runs`` warm runs) and one full stream."""
    tenant, intents = _intents(engine)
    dialect = engine.dialect.name
    statements = StatementLog(engine)
    out: dict[str, Any] = {"summaries": {}}
    RESULTS_DIR.mkdir(exist_ok=True)
    try:
        for name, intent in intents.items():
            _summary_once(engine, tenant, intent, statements)  # warm-up, not counted
            times: list[float] = []
            per_statement: list[list[float]] = []
            counts: dict[str, int] = {}
            sent: list[tuple[str, Any, float]] = []
            for _ in range(runs):
                elapsed, counts, statement_times, sent = _summary_once(
                    engine, tenant, intent, statements
                )
                times.append(elapsed)
                per_statement.append(statement_times)
            plan = _explain(engine, sent[-1][0], sent[-1][1])
            suffix = f"-{label}" if label else ""
            plan_path = RESULTS_DIR / f"explain-{dialect}-{name.replace(' ', '-')}{suffix}.txt"
            plan_path.write_text(sent[-1][0] + "\n\n" + plan + "\n")
            medians = [statistics.median(col) for col in zip(*per_statement, strict=True)]
            out["summaries"][name] = {
                "runs": runs,
                "seconds": times,
                "min": min(times),
                "median": statistics.median(times),
                "statement_median_seconds": medians,
                "statements": len(medians),
                "by_reason": counts,
                "total": sum(counts.values()),
                "plan": str(plan_path.relative_to(RESULTS_DIR.parent)),
            }
            log(
                f"{dialect}{suffix}: {name}: min {min(times):.3f} s, median "
                f"{statistics.median(times):.3f} s over {runs} runs"
            )
    finally:
        statements.close()
    if stream:
        email = intents["marketing email"]
        out["stream"] = {"intent": "marketing email", **_stream(engine, tenant, email)}
        streamed = out["stream"]
        log(f"{dialect}: streamed {streamed['rows']:,} rows in {streamed['seconds']:.2f} s")
    return out
