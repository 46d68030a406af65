"""Rows encoded for binary COPY without a connection read back from PostgreSQL as written."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from consentry.persistence import copy_binary
from consentry.persistence.bulk import copy_raw

pytestmark = pytest.mark.parametrize("engine", ["postgresql"], indirect=True)

COLUMNS = ("u", "t", "v", "b", "i2", "i4", "i8", "f", "ts", "d")
OIDS = (copy_binary.UUID, copy_binary.TEXT, copy_binary.VARCHAR, copy_binary.BYTEA,
        copy_binary.INT2, copy_binary.INT4, copy_binary.INT8, copy_binary.BOOL,
        copy_binary.TIMESTAMPTZ, copy_binary.DATE)  # fmt: skip

ROWS = [
    (uuid.uuid4(), "Ana Lima", "ação ✓ 名前", b"\x00\xff\x01", -32768, 2**31 - 1, -(2**63),
     True, datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC), date(2026, 3, 1)),
    (uuid.uuid4(), "", "", b"", 0, 0, 0, False,
     datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC), date(1970, 1, 1)),
    (None, None, None, None, None, None, None, None, None, None),
    (uuid.uuid4(), "x" * 5000, "tab\tand\nnewline", bytes(range(256)), 32767, -(2**31),
     2**63 - 1, True, datetime(2026, 7, 1, 12, 0, tzinfo=timezone(timedelta(hours=2))),
     date(1, 1, 1)),
]  # fmt: skip


class _Table:
    """A scratch table with one column of each type the importer writes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def round_trip(
        self, rows: list[tuple[object, ...]], *, remember: bool
    ) -> list[tuple[object, ...]]:
        """With ``remember`` one encoder serves every row, as in an import; else each row has
        a fresh one, which remembers nothing."""
        encoding = copy_binary.encoders(OIDS)
        shared = copy_binary.Columns(encoding)
        body = [
            copy_binary.field_count(len(OIDS))
            + (shared if remember else copy_binary.Columns(encoding))(r)
            for r in rows
        ]
        data = copy_binary.HEADER + b"".join(body) + copy_binary.TRAILER
        with self.engine.connect() as conn:
            conn.execute(text(
                "CREATE TEMPORARY TABLE scratch (n serial, u uuid, t text, v varchar(10000), "
                "b bytea, i2 smallint, i4 integer, i8 bigint, f boolean, ts timestamptz, d date)"
            ))  # fmt: skip
            copy_raw(conn, _scratch(), COLUMNS, data)
            got = conn.execute(text(f"SELECT {', '.join(COLUMNS)} FROM scratch ORDER BY n"))
            out = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in got]
            conn.rollback()
        return out


def _scratch() -> object:
    from sqlalchemy import Column, MetaData, Table

    return Table("scratch", MetaData(), *(Column(c) for c in COLUMNS))


def _expected(row: tuple[object, ...]) -> tuple[object, ...]:
    return tuple(v.astimezone(UTC) if isinstance(v, datetime) else v for v in row)


@pytest.mark.parametrize("remember", [False, True], ids=["fresh", "remembering"])
def test_each_type_reads_back_as_written(engine: Engine, remember: bool) -> None:
    got = _Table(engine).round_trip(ROWS, remember=remember)
    assert got == [_expected(r) for r in ROWS]


@settings(
    max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture]
)  # each example rolls back
@given(
    st.lists(
        st.tuples(
            st.none() | st.uuids(),
            st.none() | st.text(alphabet=st.characters(blacklist_characters="\x00")),
            st.none() | st.text(alphabet=st.characters(blacklist_characters="\x00")),
            st.none() | st.binary(),
            st.none() | st.integers(-(2**15), 2**15 - 1),
            st.none() | st.integers(-(2**31), 2**31 - 1),
            st.none() | st.integers(-(2**63), 2**63 - 1),
            st.none() | st.booleans(),
            st.none()
            | st.datetimes(
                min_value=datetime(1, 1, 2),
                max_value=datetime(9999, 12, 30),
                timezones=st.just(UTC),
            ),
            st.none() | st.dates(),
        ),
        max_size=5,
    )
)
def test_remembered_encodings_never_go_stale(
    engine: Engine, rows: list[tuple[object, ...]]
) -> None:
    """``Columns`` repeats an encoding only for the very same object; any rows, repeated or
    not, read back as written."""
    rows = rows + rows[:2]  # the same objects again
    assert _Table(engine).round_trip(rows, remember=True) == [_expected(r) for r in rows]
