"""What the figures were measured on: CPU, memory, versions, date and load."""

from __future__ import annotations

import hashlib
import os
import platform
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy
from sqlalchemy import Engine, text


def _cpu_model() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout  # noqa: S607  (lscpu from PATH, fixed arguments)
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in lscpu.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 1024 / 1024, 1)
    return 0.0


REPO = Path(__file__).resolve().parent.parent
MEASURED_SOURCES = (
    "src/consentry/domain/gate.py",
    "src/consentry/domain/rules.py",
    "src/consentry/persistence/eligibility.py",
)


def _git(*args: str) -> str:
    try:
        return subprocess.run(  # noqa: S603  (read-only git commands with fixed arguments)
            ["git", *args],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def source_state() -> dict[str, Any]:
    """Which code was measured: the commit, uncommitted changes under src/, and file digests."""
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_in_src": _git("status", "--porcelain", "--", "src").splitlines(),
        "sha256": {
            name: hashlib.sha256((REPO / name).read_bytes()).hexdigest()[:12]
            for name in MEASURED_SOURCES
        },
    }


def describe() -> dict[str, Any]:
    return {
        "source": source_state(),
        "date_utc": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_gib": _memory_gib(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
    }


def load_average() -> tuple[float, float, float]:
    """Other processes share the machine; the load average says how much."""
    return os.getloadavg()


def postgres_version(engine: Engine) -> dict[str, str]:
    with engine.connect() as conn:
        return {
            name: str(conn.execute(text(f"SHOW {name}")).scalar_one())
            for name in (
                "server_version",
                "work_mem",
                "shared_buffers",
                "effective_cache_size",
                "max_parallel_workers_per_gather",
                "jit",
            )
        }


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (user, nice, system, irq) since boot."""
    with open("/proc/stat") as stat:
        fields = stat.readline().split()[1:]
    ticks = [int(f) for f in fields]
    busy = ticks[0] + ticks[1] + ticks[2] + ticks[5] + ticks[6]
    return busy / os.sysconf("SC_CLK_TCK")
