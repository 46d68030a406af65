"""What an RFC 3464 Action and enhanced Status mean for the address."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.signals import BounceKind, classify_status

HARD, SOFT, POLICY, DELAYED = (
    BounceKind.HARD,
    BounceKind.SOFT,
    BounceKind.POLICY,
    BounceKind.DELAYED,
)


@pytest.mark.parametrize(
    ("status", "action", "expected"),
    [
        ("5.1.1", "failed", HARD),  # bad destination mailbox address
        ("5.1.2", "failed", HARD),  # bad destination system address
        ("5.1.10", "failed", HARD),  # recipient address has null MX
        ("5.0.0", "failed", HARD),
        ("5.4.4", "failed", HARD),  # unable to route
        ("5.2.1", "failed", HARD),  # mailbox disabled
        ("5.2.2", "failed", SOFT),  # mailbox full: transient whatever its class
        ("5.7.1", "failed", POLICY),  # delivery not authorised, message refused
        ("5.7.26", "failed", POLICY),  # DMARC / authentication failure
        ("4.2.2", "failed", SOFT),
        ("4.4.7", "failed", SOFT),
        ("4.7.0", "failed", SOFT),
        ("4.4.7", "delayed", DELAYED),
        ("5.1.1", "delayed", DELAYED),  # the action decides: delayed is never a bounce
        ("2.0.0", "delivered", DELAYED),
        ("2.0.0", "relayed", DELAYED),
        ("2.0.0", "expanded", DELAYED),
        (" 5.1.1 ", " Failed ", HARD),
        ("", "failed", SOFT),  # unreadable status in a failure: counted, never hard
        ("garbage", "failed", SOFT),
        ("5", "failed", HARD),
    ],
)
def test_classify_status(status: str, action: str, expected: BounceKind) -> None:
    assert classify_status(status, action) is expected


def test_the_default_action_is_failed() -> None:
    assert classify_status("5.1.1") is HARD
    assert classify_status("4.2.2") is SOFT


@given(status=st.text(max_size=20), action=st.text(max_size=12))
def test_classify_status_is_total(status: str, action: str) -> None:
    kind = classify_status(status, action)
    assert kind in BounceKind
    if not status.strip().startswith("5"):
        assert kind is not HARD
