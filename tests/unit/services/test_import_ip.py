"""The sign-up IP of an import row: the fast path for dotted quads agrees with ``ipaddress``."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.services.import_rows import _ip_address


def _reference(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _ours(text: str) -> str | None:
    try:
        return _ip_address(text)
    except ValueError:
        return None


@pytest.mark.parametrize(
    "text",
    ["203.0.113.9", "0.0.0.0",  # noqa: S104  (a string, not a bind)
     "255.255.255.255", "010.1.1.1", "1.2.3", "1.2.3.4.5",
     "256.1.1.1", "1.2.3.4 ", " 1.2.3.4", "1.2.3.-4", "0x7f.0.0.1", "2001:db8::1",
     "2001:DB8:0:0:0:0:0:1", "::ffff:1.2.3.4", "1", "", "a.b.c.d", "\u0661.\u0662.\u0663.\u0664"],
)  # fmt: skip
def test_known_cases_agree(text: str) -> None:
    assert _ours(text) == _reference(text)


@given(st.lists(st.sampled_from(["0", "1", "01", "9", "25", "255", "256", "00", "", "x"]),
                min_size=1, max_size=6).map(".".join))  # fmt: skip
def test_dotted_strings_agree(text: str) -> None:
    assert _ours(text) == _reference(text)


@given(st.ip_addresses().map(str))
def test_every_address_agrees(text: str) -> None:
    assert _ours(text) == _reference(text)
