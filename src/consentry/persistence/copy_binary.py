"""Rows in PostgreSQL's binary ``COPY`` format, encoded without a connection.

psycopg encodes ``COPY`` rows only on the connection that sends them. A bulk import prepares its
rows in a helper process, which has no connection of its own, so the rows it hands back are
already in the wire format (PostgreSQL documentation, "COPY", section "Binary Format"): a 16-bit
field count, then each field as a 32-bit length (-1 for NULL) and its bytes in the binary form of
its column's type. Only the types the importer writes are supported; anything else is an error,
never a guess. A test compares every encoding with psycopg's own for the same values and types.
"""

from __future__ import annotations

import struct
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

# Type oids (pg_type.oid; fixed for built-in types).
BOOL, BYTEA, INT8, INT2, INT4, TEXT, VARCHAR, BPCHAR, DATE, TIMESTAMPTZ, UUID = (
    16, 17, 20, 21, 23, 25, 1043, 1042, 1082, 1184, 2950,
)  # fmt: skip

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)  # signature, flags, no extension
TRAILER = struct.pack(">h", -1)
NULL = struct.pack(">i", -1)

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # PostgreSQL's epoch for timestamps
_EPOCH_DAYS = date(2000, 1, 1).toordinal()
_LEN = struct.Struct(">i").pack
_I2 = struct.Struct(">ih").pack
_I4 = struct.Struct(">ii").pack
_I8 = struct.Struct(">iq").pack
_TRUE, _FALSE = _LEN(1) + b"\x01", _LEN(1) + b"\x00"
_UUID_LEN = _LEN(16)

Encoder = Callable[[Any], bytes]


def _text(value: str) -> bytes:
    if not isinstance(value, str):
        raise TypeError(f"text column given {type(value).__name__}")
    data = value.encode("utf-8")
    return _LEN(len(data)) + data


def _bytea(value: bytes) -> bytes:
    if not isinstance(value, bytes):  # immutable only: ``Columns`` remembers encodings
        raise TypeError(f"bytea column given {type(value).__name__}")
    return _LEN(len(value)) + value


def _uuid(value: uuid.UUID) -> bytes:
    return _UUID_LEN + value.bytes


def _bool(value: bool) -> bytes:
    if not isinstance(value, bool):
        raise TypeError(f"boolean column given {type(value).__name__}")
    return _TRUE if value else _FALSE


def _int(pack: Callable[[int, int], bytes], size: int) -> Encoder:
    def encode(value: int) -> bytes:
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"integer column given {type(value).__name__}")
        return pack(size, value)

    return encode


def _timestamptz(value: datetime) -> bytes:
    if not isinstance(value, datetime) or value.tzinfo is None:
        raise TypeError("timestamptz column given a value that is not an aware datetime")
    delta = value - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return _I8(8, micros)


def _date(value: date) -> bytes:
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError("date column given a value that is not a date")
    return _I4(4, value.toordinal() - _EPOCH_DAYS)


_ENCODERS: dict[int, Encoder] = {
    BOOL: _bool,
    BYTEA: _bytea,
    INT2: _int(_I2, 2),
    INT4: _int(_I4, 4),
    INT8: _int(_I8, 8),
    TEXT: _text,
    VARCHAR: _text,
    BPCHAR: _text,
    DATE: _date,
    TIMESTAMPTZ: _timestamptz,
    UUID: _uuid,
}


def encoders(oids: Sequence[int]) -> tuple[Encoder, ...]:
    """The encoder of each column; raises ValueError for a type the importer never writes."""
    try:
        return tuple(_ENCODERS[oid] for oid in oids)
    except KeyError as exc:
        raise ValueError(f"no binary COPY encoding for type oid {exc.args[0]}") from exc


class Columns:
    """Encodes runs of the same columns (no field count: a row, or the columns between two of
    its fields) again and again, remembering each column's last value and its encoding: a
    bulk write repeats the same tenant, topic, import,
    evidence and instants in every row, and those are encoded once."""

    def __init__(self, encoding: Sequence[Encoder]) -> None:
        self._encoding = tuple(encoding)
        self._last: list[Any] = [None] * len(encoding)
        self._encoded: list[bytes] = [NULL] * len(encoding)

    def __call__(self, values: Sequence[Any]) -> bytes:
        if len(values) != len(self._encoding):
            raise ValueError(f"{len(values)} values for {len(self._encoding)} columns")
        last, encoded, encoding = self._last, self._encoded, self._encoding
        out = []
        for i, v in enumerate(values):
            if v is None:
                out.append(NULL)
            elif v is last[i]:  # the same object: values encoded here are immutable
                out.append(encoded[i])
            else:
                last[i] = v
                e = encoded[i] = encoding[i](v)
                out.append(e)
        return b"".join(out)


def field_count(columns: int) -> bytes:
    return struct.pack(">h", columns)


def text_field(value: str) -> bytes:
    return _text(value)


def int8_field(value: int) -> bytes:
    return _I8(8, value)
