"""The array literals bound for PostgreSQL's ``= ANY`` and ``unnest`` read back as the values."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from consentry.persistence.engine import make_engine
from consentry.persistence.types import pg_ints, pg_stamps, pg_texts, pg_uuids

# Text PostgreSQL can hold: no NUL character.
_TEXTS = st.lists(st.one_of(st.none(), st.text(st.characters(exclude_characters="\x00"))))


@pytest.fixture(scope="module")
def pg(pg_url: str) -> Iterator[Engine]:
    """Array literals are bound on PostgreSQL only; the tests read, so one engine serves all."""
    engine = make_engine(pg_url)
    yield engine
    engine.dispose()


def _read(engine: Engine, literal: str, array_type: str) -> list[object]:
    with engine.connect() as conn:
        return list(
            conn.execute(text(f"SELECT CAST(:a AS {array_type})"), {"a": literal}).scalar_one()
        )


def test_texts_that_need_quoting_read_back_unchanged(pg: Engine) -> None:
    awkward = ['a"b', "back\\slash", "x,y", "{}", "NULL", "null", " padded ", "", "ünï ✓", None]
    assert _read(pg, pg_texts(awkward), "text[]") == awkward


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=_TEXTS)
def test_any_texts_read_back_unchanged(pg: Engine, values: list[str | None]) -> None:
    assert _read(pg, pg_texts(values), "text[]") == values


def test_ints_uuids_and_instants_read_back_unchanged(pg: Engine) -> None:
    ints = [0, -1, 2**63 - 1, -(2**63)]
    assert _read(pg, pg_ints(ints), "bigint[]") == ints
    ids = [uuid.uuid4(), None, uuid.UUID(int=0)]
    assert _read(pg, pg_uuids(ids), "uuid[]") == ids
    east = timezone(timedelta(hours=5, minutes=30))
    stamps = [datetime(2026, 12, 6, 21, 0, 0, 123456, tzinfo=UTC), None,
              datetime(2026, 3, 29, 1, 30, tzinfo=east)]  # fmt: skip
    assert _read(pg, pg_stamps(stamps), "timestamptz[]") == stamps
    assert _read(pg, pg_ints([]), "bigint[]") == []


def test_a_naive_instant_is_refused_rather_than_read_in_the_session_zone() -> None:
    with pytest.raises(ValueError, match="naive"):
        pg_stamps([datetime(2026, 12, 6, 21, 0)])
