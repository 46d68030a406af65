"""UUIDv7 identifiers (RFC 9562)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from consentry.domain import ids
from consentry.domain.ids import new_id


def fixed_clock(monkeypatch: pytest.MonkeyPatch, *millis: int) -> None:
    """Make ``new_id`` see the given Unix milliseconds, one per call."""
    ticks: Iterator[int] = iter(millis)
    monkeypatch.setattr(ids, "time", SimpleNamespace(time_ns=lambda: next(ticks) * 1_000_000))


def fixed_randomness(monkeypatch: pytest.MonkeyPatch, value: bytes) -> None:
    monkeypatch.setattr(ids, "os", SimpleNamespace(urandom=lambda n: value[:n]))


def test_version_and_variant() -> None:
    value = new_id()

    assert isinstance(value, uuid.UUID)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_the_first_48_bits_are_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = new_id()
    after = time.time_ns() // 1_000_000

    assert before <= value.int >> 80 <= after


def test_the_timestamp_is_the_clocks_millisecond(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_clock(monkeypatch, 1_733_000_000_123)

    assert new_id().int >> 80 == 1_733_000_000_123


def test_ids_sort_in_the_order_they_were_made(monkeypatch: pytest.MonkeyPatch) -> None:
    millis = [1, 2, 1_000, 1_733_000_000_000, 1_733_000_000_001, (1 << 48) - 1]
    fixed_clock(monkeypatch, *millis)

    made = [new_id() for _ in millis]

    assert sorted(made) == made
    assert sorted(str(v) for v in made) == [str(v) for v in made]
    assert sorted(v.bytes for v in made) == [v.bytes for v in made]


def test_random_bits_never_touch_version_or_variant(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_clock(monkeypatch, 0, 0)
    fixed_randomness(monkeypatch, b"\xff" * 10)
    ones = new_id()
    fixed_randomness(monkeypatch, b"\x00" * 10)
    zeros = new_id()

    for value in (ones, zeros):
        assert value.version == 7
        assert value.variant == uuid.RFC_4122
    # 12 bits of rand_a and 62 bits of rand_b, and nothing else, come from the random source.
    assert ones.int ^ zeros.int == (0xFFF << 64) | ((1 << 62) - 1)
    assert zeros.int == (0x7 << 76) | (0b10 << 62)


def test_ids_made_in_the_same_millisecond_differ(monkeypatch: pytest.MonkeyPatch) -> None:
    fixed_clock(monkeypatch, *([1_733_000_000_000] * 1_000))

    made = {new_id() for _ in range(1_000)}

    assert len(made) == 1_000
    assert {v.int >> 80 for v in made} == {1_733_000_000_000}
