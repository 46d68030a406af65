"""Run the benchmarks, print a table, and write bench/results/latest.json.

    .venv/bin/python bench/run.py [--only decide|eligibility] [--contacts N] [--rebuild]
                                  [--skip-postgres] [--profile]

See docs/performance.md for what is measured and the latest figures.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

import audience
import eligibility
import gate_decide
import machine

DECIDE_TARGET_PER_SECOND = 200_000
SUMMARY_TARGET_SECONDS = {"postgresql": 1.5, "sqlite": 3.0}
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"

# A wide table when the output is a file or a pipe (rich assumes 80 columns there).
console = Console(width=None if sys.stdout.isatty() else 150)


def _log(message: str) -> None:
    console.log(message)


def run_decide(args: argparse.Namespace) -> dict[str, Any]:
    _log(f"decide: {args.decisions:,} decisions, best of {args.repeats}")
    before = machine.load_average()
    result = gate_decide.measure(args.decisions, args.repeats, profile=False)
    result["target_per_second"] = DECIDE_TARGET_PER_SECOND
    result["met"] = result["per_second"] >= DECIDE_TARGET_PER_SECOND
    if args.profile or not result["met"]:
        result["profile"] = gate_decide.measure(args.decisions, 1, profile=True)["profile"]
    result["load_average"] = {"before": before, "after": machine.load_average()}
    return result


def run_eligibility(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"contacts": args.contacts, "databases": {}}
    prepare = {"sqlite": audience.prepare_sqlite, "postgresql": audience.prepare_postgres}
    dialects = ["sqlite"] if args.skip_postgres else ["sqlite", "postgresql"]
    fingerprints = {}
    for dialect in dialects:
        aud = prepare[dialect](args.contacts, rebuild=args.rebuild, log=_log)
        before = machine.load_average()
        measured = eligibility.measure(aud.engine, runs=args.runs, log=_log)
        _judge(measured["summaries"], SUMMARY_TARGET_SECONDS[dialect])
        measured.update(
            rows=aud.counts,
            reused=aud.reused,
            load_seconds=aud.load_seconds,
            size_bytes=aud.size_bytes,
            load_average={"before": before, "after": machine.load_average()},
        )
        if dialect == "postgresql":
            measured["server"] = machine.postgres_version(aud.engine)
            measured["jit_off"] = _postgres_without_jit(args)
        fingerprints[dialect] = audience.fingerprint(aud.engine)
        measured["audience"] = fingerprints[dialect]
        out["databases"][dialect] = measured
        aud.engine.dispose()
    if len(fingerprints) == 2:
        dbs = out["databases"]
        out["same_audience"] = fingerprints["sqlite"] == fingerprints["postgresql"]
        out["same_counts"] = all(
            dbs["sqlite"]["summaries"][k]["by_reason"]
            == dbs["postgresql"]["summaries"][k]["by_reason"]
            for k in dbs["sqlite"]["summaries"]
        )
    return out


def _postgres_without_jit(args: argparse.Namespace) -> dict[str, Any]:
    """The same summaries with just-in-time compilation off for the session, for comparison."""
    engine = audience.postgres_engine("SET jit = off")
    try:
        measured = eligibility.measure(
            engine, runs=args.runs, log=_log, label="jit-off", stream=False
        )
    finally:
        engine.dispose()
    _judge(measured["summaries"], SUMMARY_TARGET_SECONDS["postgresql"])
    return {"session_settings": ["SET jit = off"], **measured}


def _judge(summaries: dict[str, Any], target: float) -> None:
    """A target is met when the median of the warm runs is within it."""
    for summary in summaries.values():
        summary["target_seconds"] = target
        summary["met"] = summary["median"] <= target


def _print_decide(result: dict[str, Any]) -> None:
    table = Table(title="decide(): decisions per second on one core (best run)")
    for column in ("scenario", "decisions", "µs each", "decisions/s", "outcomes"):
        table.add_column(column, justify="left" if column in {"scenario", "outcomes"} else "right")
    for name, s in result["scenarios"].items():
        outcomes = ", ".join(f"{k} {v:,}" for k, v in s["outcomes"].items())
        table.add_row(
            name,
            f"{s['decisions']:,}",
            f"{s['microseconds_each']:.2f}",
            f"{s['per_second']:,.0f}",
            outcomes,
        )
    for name, s in result.get("new_instant_each", {}).items():
        table.add_row(
            f"[dim]{name}[/]",
            f"{s['decisions']:,}",
            f"{s['microseconds_each']:.2f}",
            f"{s['per_second']:,.0f}",
            "[dim]not in the mix: shows the uncached quiet-hours work[/]",
        )
    met = "[green]met[/]" if result["met"] else "[red]missed[/]"
    table.add_row(
        "[bold]mixed (shuffled)[/]",
        f"{result['decisions']:,}",
        f"{result['microseconds_each']:.2f}",
        f"[bold]{result['per_second']:,.0f}[/]",
        f"target {result['target_per_second']:,}/s: {met} "
        f"({result['per_cpu_second']:,.0f} per CPU-second)",
    )
    console.print(table)
    if "profile" in result:
        profile = Table(title="cProfile of the mix: most own time")
        for column in ("function", "calls", "own s", "cumulative s"):
            profile.add_column(column, justify="left" if column == "function" else "right")
        for row in result["profile"][:12]:
            profile.add_row(
                row["function"],
                f"{row['calls']:,}",
                f"{row['own_seconds']:.3f}",
                f"{row['cumulative_seconds']:.3f}",
            )
        console.print(profile)


def _print_eligibility(result: dict[str, Any]) -> None:
    table = Table(title=f"eligibility_summary over {result['contacts']:,} contacts (warm runs)")
    for column in ("database", "intent", "min s", "median s", "target", "eligible", "top reasons"):
        table.add_column(column, justify="right" if column.endswith("s") else "left")
    rows = [(d, m["summaries"]) for d, m in result["databases"].items()]
    if "jit_off" in result["databases"].get("postgresql", {}):
        rows.append(
            ("postgresql, jit off", result["databases"]["postgresql"]["jit_off"]["summaries"])
        )
    for dialect, summaries in rows:
        for intent, s in summaries.items():
            met = "[green]met[/]" if s["met"] else "[red]missed[/]"
            reasons = sorted(s["by_reason"].items(), key=lambda kv: -kv[1])
            top = ", ".join(f"{k} {v:,}" for k, v in reasons[:4])
            table.add_row(
                dialect,
                intent,
                f"{s['min']:.3f}",
                f"{s['median']:.3f}",
                f"≤ {s['target_seconds']} s {met}",
                f"{s['by_reason'].get('ALLOW', 0):,} / {s['total']:,}",
                top,
            )
    console.print(table)
    data = Table(title="audience and streaming")
    for column in ("database", "rows", "size", "built in", "stream (email)"):
        data.add_column(column)
    for dialect, m in result["databases"].items():
        built = "reused" if m["reused"] else "built"
        stream = m["stream"]
        data.add_row(
            dialect,
            ", ".join(f"{k} {v:,}" for k, v in m["rows"].items()),
            f"{m['size_bytes'] / 2**20:,.0f} MiB",
            f"{m['load_seconds'].get('total', 0):.0f} s ({built})",
            f"{stream['rows']:,} rows in {stream['seconds']:.2f} s",
        )
    console.print(data)
    if "same_audience" in result:
        console.print(
            f"same audience on both databases: {result['same_audience']}; "
            f"same counts by reason: {result['same_counts']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("decide", "eligibility"))
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rebuild", action="store_true", help="regenerate cached databases")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--profile", action="store_true", help="profile decide() even if fast")
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7, help="decide(): runs, best counts")
    parser.add_argument("--runs", type=int, default=5, help="eligibility: timed warm runs")
    args = parser.parse_args()

    results: dict[str, Any] = {}
    if args.only and RESULTS.exists():
        # A partial run updates its own section and keeps the other benchmark's latest figures.
        results = json.loads(RESULTS.read_text())
    results["machine"] = machine.describe()
    if args.only in (None, "decide"):
        results["decide"] = run_decide(args) | {"measured_on": machine.describe()}
        _print_decide(results["decide"])
    if args.only in (None, "eligibility"):
        results["eligibility"] = run_eligibility(args) | {"measured_on": machine.describe()}
        _print_eligibility(results["eligibility"])
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    console.print(f"results written to {os.path.relpath(RESULTS)}")


if __name__ == "__main__":
    main()
