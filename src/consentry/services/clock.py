"""The one place services read the time; tests pass ``now`` explicitly instead."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)
