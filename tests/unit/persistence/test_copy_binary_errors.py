"""The binary COPY encoder refuses what it cannot encode exactly, rather than guess."""

from __future__ import annotations

import struct
from datetime import date, datetime

import pytest

from consentry.persistence import copy_binary


def test_an_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="type oid 700"):
        copy_binary.encoders([copy_binary.TEXT, 700])  # real


@pytest.mark.parametrize(
    ("oid", "value"),
    [
        (copy_binary.TIMESTAMPTZ, datetime(2026, 3, 1, 9, 30)),  # naive: which zone?
        (copy_binary.DATE, datetime(2026, 3, 1, 9, 30)),
        (copy_binary.TIMESTAMPTZ, date(2026, 3, 1)),
        (copy_binary.BYTEA, bytearray(b"mutable")),
        (copy_binary.TEXT, b"bytes"),
        (copy_binary.INT4, True),
        (copy_binary.INT8, "1"),
        (copy_binary.BOOL, 1),
    ],
)
def test_a_value_of_the_wrong_kind_is_refused(oid: int, value: object) -> None:
    (encode,) = copy_binary.encoders([oid])
    with pytest.raises(TypeError):
        encode(value)


def test_an_integer_out_of_range_is_refused() -> None:
    (encode,) = copy_binary.encoders([copy_binary.INT2])
    with pytest.raises(struct.error):
        encode(40_000)


def test_a_row_of_the_wrong_width_is_refused() -> None:
    encoding = copy_binary.encoders([copy_binary.TEXT, copy_binary.INT4])
    with pytest.raises(ValueError, match="1 values for 2 columns"):
        copy_binary.Columns(encoding)(["a"])
    with pytest.raises(ValueError, match="3 values for 2 columns"):
        copy_binary.Columns(encoding)(["a", 1, 2])
