"""Permission passes in the domain: deadlines, the basis of a renewal, outcomes at the end."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.consent import ConsentBasis, ConsentStatus
from consentry.domain.model import Channel
from consentry.domain.passes import (
    MAX_PASS_DURATION,
    MemberOutcome,
    PassDeadlineInvalid,
    PassMessageInvalid,
    check_text,
    default_text,
    outcome_at_end,
    renewal_basis,
    validate_deadline,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_a_deadline_is_ahead_within_the_longest_pass_and_aware() -> None:
    validate_deadline(NOW + timedelta(seconds=1), NOW)
    validate_deadline(NOW + MAX_PASS_DURATION, NOW)
    for bad in (NOW, NOW - timedelta(days=1), NOW + MAX_PASS_DURATION + timedelta(seconds=1)):
        with pytest.raises(PassDeadlineInvalid):
            validate_deadline(bad, NOW)
    with pytest.raises(PassDeadlineInvalid):
        validate_deadline(datetime(2026, 6, 2, 12, 0), NOW)


def test_confirmed_consent_stays_confirmed_and_the_rest_becomes_express() -> None:
    assert renewal_basis(ConsentBasis.DOUBLE_OPT_IN) is ConsentBasis.DOUBLE_OPT_IN
    for basis in (
        ConsentBasis.EXPRESS,
        ConsentBasis.IMPLIED_RELATIONSHIP,
        ConsentBasis.SOFT_OPT_IN,
        ConsentBasis.SERVICE_NECESSITY,
    ):
        assert renewal_basis(basis) is ConsentBasis.EXPRESS


START = uuid.UUID(int=1)


@given(
    status=st.sampled_from([*ConsentStatus, None]),
    event=st.sampled_from([START, uuid.UUID(int=2), None]),
)
def test_only_active_consent_on_its_starting_event_lapses(
    status: ConsentStatus | None, event: uuid.UUID | None
) -> None:
    outcome = outcome_at_end(START, status, event)
    if status is not ConsentStatus.ACTIVE:
        assert outcome is MemberOutcome.OTHER  # withdrawn, lapsed, void or pending: untouched
    elif event == START:
        assert outcome is MemberOutcome.LAPSED
    else:
        assert outcome is MemberOutcome.RENEWED


def test_the_default_texts_carry_the_link_and_a_message_must() -> None:
    for channel in (Channel.EMAIL, Channel.SMS):
        text = default_text(channel, "Offers", "Acme Ltd", NOW)
        check_text(text)
        assert "01 June 2026" in text
        assert "Acme Ltd" in text
    with pytest.raises(PassMessageInvalid):
        check_text("Do you still want our offers? Reply to this email.")
