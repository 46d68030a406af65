"""Subscription forms in the domain: what a person ticked, the age question, what each ticked box
does, how a form is checked, and the evidence note a submission leaves in the ledger."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consentry.domain.consent import ConsentStatus
from consentry.domain.errors import InvalidInput
from consentry.domain.forms import (
    MAX_CHOICES,
    MAX_INTRO,
    MAX_TITLE,
    AgeBelowThreshold,
    FormChoice,
    FormInvalid,
    FormStatus,
    Outcome,
    SubscriptionForm,
    Ticked,
    action_for,
    asks_age,
    check_age,
    check_form_fields,
    evidence_note,
    outcome_for,
    read_ticked,
)
from consentry.domain.model import Category, Channel

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
OFFERS = uuid.UUID("0193a1f2-0000-7000-8000-000000000001")
REMINDERS = uuid.UUID("0193a1f2-0000-7000-8000-000000000002")
FORM_ID = uuid.UUID("0193a1f2-0000-7000-8000-0000000000f1")
SUBMISSION = uuid.UUID("0193a1f2-0000-7000-8000-0000000000a1")
CATEGORIES = {OFFERS: Category.MARKETING, REMINDERS: Category.SERVICE}

OFFERS_EMAIL = FormChoice(OFFERS, "offers", Channel.EMAIL)
OFFERS_SMS = FormChoice(OFFERS, "offers", Channel.SMS)
OFFERS_WHATSAPP = FormChoice(OFFERS, "offers", Channel.WHATSAPP)
REMINDERS_EMAIL = FormChoice(REMINDERS, "reminders", Channel.EMAIL)
ALL_CHOICES = (OFFERS_EMAIL, OFFERS_SMS, OFFERS_WHATSAPP, REMINDERS_EMAIL)

FORM = SubscriptionForm(
    id=FORM_ID,
    tenant_id=uuid.UUID("0193a1f2-0000-7000-8000-0000000000e1"),
    key="join",
    title="Join us",
    intro="",
    choices=ALL_CHOICES,
    disclosure_kind="consent_disclosure",
    privacy_url=None,
    confirm=True,
    status=FormStatus.ACTIVE,
    revision=3,
    created_at=NOW,
    updated_at=NOW,
)
ADDRESSES = {"email": "jane@example.com", "phone": "+447400123456", "whatsapp": "+447400123457"}


def ticked(
    *values: str,
    email: str | None = ADDRESSES["email"],
    phone: str | None = ADDRESSES["phone"],
    whatsapp: str | None = ADDRESSES["whatsapp"],
    name: str | None = None,
    adult: str | None = "yes",
    form: SubscriptionForm = FORM,
) -> Ticked:
    return read_ticked(
        form, values, email=email, phone=phone, whatsapp=whatsapp, name=name, adult=adult
    )


# --- read_ticked ---------------------------------------------------------------------------


def test_the_ticked_boxes_are_read_in_order_once_each_with_addresses_trimmed() -> None:
    found = ticked(
        " offers:sms ", "reminders:email", "offers:sms", "", "  ",
        email="  jane@example.com ", phone=" +447400123456", whatsapp=" ", name="  Jane Roe  ",
    )  # fmt: skip
    assert found.choices == (OFFERS_SMS, REMINDERS_EMAIL)
    assert found.email == "jane@example.com"
    assert found.phone == "+447400123456"
    assert found.whatsapp is None  # not ticked, and blank: nothing kept
    assert found.name == "Jane Roe"
    assert found.adult is True


def test_a_long_name_is_cut_to_two_hundred_characters() -> None:
    assert ticked("offers:email", name="x" * 500).name == "x" * 200


@pytest.mark.parametrize(
    "forged",
    [
        "offers:voice",  # a channel the form does not offer
        "all-marketing:email",  # an umbrella topic, bundling every marketing topic
        "reminders:sms",  # a topic and a channel it offers, but not together
        "OFFERS:EMAIL",  # values are exact
        "offers",
    ],
)
def test_a_box_the_form_does_not_offer_is_refused_even_beside_real_ones(forged: str) -> None:
    with pytest.raises(FormInvalid) as refused:
        ticked("offers:email", forged)
    assert refused.value.field == "choice"
    assert "does not offer" in str(refused.value)


@pytest.mark.parametrize("values", [(), ("",), ("  ", "\t")])
def test_no_box_ticked_is_refused(values: tuple[str, ...]) -> None:
    with pytest.raises(FormInvalid) as refused:
        ticked(*values)
    assert refused.value.field == "choice"
    assert str(refused.value) == "tick at least one box to subscribe"


@pytest.mark.parametrize(
    ("box", "missing", "said"),
    [
        ("offers:email", "email", "enter your email address"),
        ("offers:sms", "phone", "enter your mobile number"),
        ("offers:whatsapp", "whatsapp", "enter your WhatsApp number"),
    ],
)
def test_a_ticked_box_without_its_address_names_the_field(
    box: str, missing: str, said: str
) -> None:
    for blank in (None, "", "   "):
        with pytest.raises(FormInvalid) as refused:
            ticked(box, **{missing: blank})  # type: ignore[arg-type]
        assert refused.value.field == missing
        assert said in str(refused.value)


def test_an_address_only_needed_by_an_unticked_box_may_be_left_out() -> None:
    found = ticked("offers:email", phone=None, whatsapp=None)
    assert found.choices == (OFFERS_EMAIL,)
    assert found.phone is None


@pytest.mark.parametrize(
    ("answer", "adult"),
    [("yes", True), (" YES ", True), ("no", False), ("No", False), (None, None), ("", None),
     ("maybe", None)],
)  # fmt: skip
def test_the_age_answer_is_yes_no_or_unanswered(answer: str | None, adult: bool | None) -> None:
    assert ticked("offers:email", adult=answer).adult is adult


_OFFERED = [c.value for c in ALL_CHOICES]


@given(
    st.lists(st.sampled_from(_OFFERED), min_size=1, max_size=8),
    st.sampled_from(["", " ", "\t"]),
)
def test_any_boxes_the_form_offers_round_trip(values: list[str], pad: str) -> None:
    found = ticked(*(pad + v + pad for v in values))
    assert [c.value for c in found.choices] == list(dict.fromkeys(values))
    assert all(c in ALL_CHOICES for c in found.choices)


@given(
    st.lists(st.sampled_from(_OFFERED), max_size=4),
    st.text(min_size=1, max_size=40).filter(lambda v: v.strip() and v.strip() not in _OFFERED),
    st.integers(min_value=0, max_value=4),
)
def test_anything_the_form_does_not_offer_is_refused(
    values: list[str], forged: str, at: int
) -> None:
    sent = [*values[:at], forged, *values[at:]]
    with pytest.raises(FormInvalid) as refused:
        ticked(*sent)
    assert refused.value.field == "choice"


# --- the age question ----------------------------------------------------------------------


def test_the_age_question_is_asked_only_when_marketing_is_offered() -> None:
    assert asks_age(FORM, CATEGORIES)
    service_only = replace(FORM, choices=(REMINDERS_EMAIL,))
    assert not asks_age(service_only, CATEGORIES)
    # Not asked, so not needed: a service box goes through whatever the answer.
    for answer in (None, "no"):
        check_age(ticked("reminders:email", adult=answer, form=service_only), CATEGORIES, 18)
    # Nor when only service boxes were ticked on a form that also offers marketing.
    check_age(ticked("reminders:email", adult=None), CATEGORIES, 18)


def test_marketing_ticked_without_an_answer_asks_for_one() -> None:
    with pytest.raises(FormInvalid) as refused:
        check_age(ticked("reminders:email", "offers:sms", adult=None), CATEGORIES, 18)
    assert refused.value.code == "FORM_INVALID"
    assert refused.value.field == "adult"
    assert str(refused.value) == "please say whether you are 18 or older"


def test_marketing_ticked_by_someone_under_the_threshold_is_refused_naming_it() -> None:
    with pytest.raises(AgeBelowThreshold) as refused:
        check_age(ticked("offers:email", adult="no"), CATEGORIES, 16)
    assert refused.value.code == "AGE_BELOW_THRESHOLD"
    assert refused.value.field == "adult"
    assert "16 or older" in str(refused.value)
    assert isinstance(refused.value, InvalidInput)


def test_marketing_ticked_by_an_adult_passes() -> None:
    check_age(ticked("offers:email", adult="yes"), CATEGORIES, 18)


# --- what a ticked box does -------------------------------------------------------------------

A, P, W = ConsentStatus.ACTIVE, ConsentStatus.PENDING, ConsentStatus.WITHDRAWN
L, V = ConsentStatus.LAPSED, ConsentStatus.VOID


@pytest.mark.parametrize(
    ("status", "confirmed", "confirmable", "needs", "topic_needs", "outcome"),
    [
        # Nothing stands: confirm first where needed, else granted at once.
        (None, False, False, True, False, Outcome.REQUESTED),
        (None, False, False, False, False, Outcome.GRANTED),
        # Subscribed already: nothing to write.
        (A, True, False, True, True, Outcome.UNCHANGED),
        (A, False, False, False, False, Outcome.UNCHANGED),
        (A, True, False, False, False, Outcome.UNCHANGED),
        # Active without confirmation on a form asking new subscribers to confirm: it stands
        # (a form never puts a subscription back to pending; anyone can type any address).
        (A, False, False, True, False, Outcome.UNCHANGED),
        # ... unless its topic requires confirmed opt-in, which it never had.
        (A, False, False, True, True, Outcome.REQUESTED),
        # A box that cannot be confirmed (WhatsApp) leaves an active consent as it is.
        (A, False, False, False, True, Outcome.UNCHANGED),
        # Pending: send the confirmation again while it can still be confirmed, else anew.
        (P, False, True, True, False, Outcome.RESENT),
        (P, False, False, True, False, Outcome.REQUESTED),
        (P, False, True, False, False, Outcome.GRANTED),
        # Withdrawn, lapsed, void: a new affirmative act.
        (W, False, False, True, False, Outcome.REQUESTED),
        # ... but a box that would grant at once asks the person who withdrew to confirm.
        (W, True, False, False, False, Outcome.REQUESTED),
        (L, False, False, True, True, Outcome.REQUESTED),
        (L, True, False, False, False, Outcome.GRANTED),
        (V, False, False, False, False, Outcome.GRANTED),
    ],
)
def test_what_a_ticked_box_does(
    status: ConsentStatus | None,
    confirmed: bool,
    confirmable: bool,
    needs: bool,
    topic_needs: bool,
    outcome: Outcome,
) -> None:
    found = outcome_for(status, confirmed, confirmable, needs, topic_needs_confirmation=topic_needs)
    assert found is outcome


@pytest.mark.parametrize(
    ("needs", "express", "expired", "outcome"),
    [
        # An implied consent: a form that does not confirm records the express act over it...
        (False, False, False, Outcome.GRANTED),
        # ...a confirming one leaves it standing rather than put it back to pending.
        (True, False, False, Outcome.UNCHANGED),
        # Past its expiry nothing stands: the box is taken as on a first visit.
        (False, True, True, Outcome.GRANTED),
        (True, True, True, Outcome.REQUESTED),
        (True, False, True, Outcome.REQUESTED),
    ],
)
def test_an_implied_or_expired_consent_is_not_taken_for_a_subscription(
    needs: bool, express: bool, expired: bool, outcome: Outcome
) -> None:
    found = outcome_for(
        ConsentStatus.ACTIVE, False, False, needs,
        topic_needs_confirmation=False, express=express, expired=expired,
    )  # fmt: skip
    assert found is outcome


def test_a_withdrawal_is_undone_only_by_the_person_themselves() -> None:
    w = ConsentStatus.WITHDRAWN
    assert outcome_for(w, False, False, False, topic_needs_confirmation=False) is Outcome.REQUESTED
    # WhatsApp has no confirmation: the form changes nothing (click-to-chat is the way back).
    whatsapp = outcome_for(
        w, False, False, False, topic_needs_confirmation=False, can_confirm=False
    )
    assert whatsapp is Outcome.UNCHANGED
    lapsed = outcome_for(ConsentStatus.LAPSED, False, False, False, topic_needs_confirmation=False)
    assert lapsed is Outcome.GRANTED  # lapsing was no one's "no"


def test_only_requests_and_grants_write_an_event() -> None:
    assert {o: action_for(o) for o in Outcome} == {
        Outcome.REQUESTED: "requested",
        Outcome.GRANTED: "granted",
        Outcome.RESENT: None,
        Outcome.UNCHANGED: None,
    }


# --- checking a form definition --------------------------------------------------------------


def test_a_good_definition_passes() -> None:
    check_form_fields("join-2026", "Join us", "", ALL_CHOICES)
    check_form_fields("a", "x" * MAX_TITLE, "i" * MAX_INTRO, ALL_CHOICES[:1])


@pytest.mark.parametrize(
    ("key", "title", "intro", "choices", "field"),
    [
        ("", "Join", "", ALL_CHOICES, "key"),
        ("Join", "Join", "", ALL_CHOICES, "key"),
        ("-join", "Join", "", ALL_CHOICES, "key"),
        ("join_us", "Join", "", ALL_CHOICES, "key"),
        ("j" * 64, "Join", "", ALL_CHOICES, "key"),
        ("join", "  ", "", ALL_CHOICES, "title"),
        ("join", "x" * (MAX_TITLE + 1), "", ALL_CHOICES, "title"),
        ("join", "Join", "i" * (MAX_INTRO + 1), ALL_CHOICES, "intro"),
        ("join", "Join", "", (), "choices"),
        ("join", "Join", "", (OFFERS_EMAIL,) * (MAX_CHOICES + 1), "choices"),
        ("join", "Join", "", (OFFERS_EMAIL, FormChoice(OFFERS, "offers", Channel.VOICE)),
         "choices"),
        ("join", "Join", "", (FormChoice(OFFERS, "offers", Channel.POST),), "choices"),
        ("join", "Join", "", (OFFERS_EMAIL, OFFERS_SMS, OFFERS_EMAIL), "choices"),
    ],
)  # fmt: skip
def test_a_bad_definition_names_the_first_wrong_field(
    key: str, title: str, intro: str, choices: tuple[FormChoice, ...], field: str
) -> None:
    with pytest.raises(FormInvalid) as refused:
        check_form_fields(key, title, intro, choices)
    assert refused.value.field == field


def test_a_box_offered_twice_is_named() -> None:
    with pytest.raises(FormInvalid, match="offers:sms is offered twice"):
        check_form_fields("join", "Join", "", (OFFERS_SMS, OFFERS_EMAIL, OFFERS_SMS))


# --- the evidence note -----------------------------------------------------------------------


def test_the_evidence_note_names_the_form_the_page_and_exactly_the_boxes_ticked() -> None:
    note = evidence_note(
        FORM,
        SUBMISSION,
        ticked("offers:sms", "offers:email", adult="yes"),
        page_url="https://localhost:8000/f/acme/join",
        referrer="https://acme.example/blog?x=1",
        embedded=False,
    )
    assert note == (
        f"form=join; form_id={FORM_ID}; revision=3; submission={SUBMISSION}; "
        "page=https://localhost:8000/f/acme/join; referrer=https://acme.example/blog?x=1; "
        "embedded=no; offered=offers:email,offers:sms,offers:whatsapp,reminders:email; "
        "ticked=offers:sms,offers:email; adult=yes"
    )


def test_the_evidence_note_of_an_embedded_form_without_referrer_or_age_answer() -> None:
    note = evidence_note(
        FORM,
        SUBMISSION,
        ticked("reminders:email", adult=None),
        page_url="https://localhost:8000/f/acme/join",
        referrer=None,
        embedded=True,
    )
    parts = note.split("; ")
    assert "referrer=-" in parts
    assert "embedded=yes" in parts
    assert parts[-1] == "ticked=reminders:email"
    assert not any(p.startswith("adult=") for p in parts)
