"""Jurisdiction rule packs: which pack applies, when a person comes of age, and quiet hours."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consentry.domain.model import Category, Channel
from consentry.domain.rules import (
    CANADA,
    DEFAULT,
    EU,
    EU_COUNTRIES,
    INDIA,
    US,
    RulePack,
    majority_date,
    pack_for,
    quiet_until,
)

NEW_YORK = ZoneInfo("America/New_York")
HONOLULU = ZoneInfo("Pacific/Honolulu")
KOLKATA = ZoneInfo("Asia/Kolkata")

# --- choosing a pack --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "tenant", "pack"),
    [
        ("DE", "US", EU),
        ("FR", "GB", EU),
        ("US", "DE", US),
        ("IN", "GB", INDIA),
        ("CA", "US", CANADA),
        ("GB", "US", DEFAULT),
        ("AU", "CA", DEFAULT),
        (None, "CA", CANADA),
        (None, "DE", EU),
        (None, "US", US),
        (None, "GB", DEFAULT),
        (None, None, DEFAULT),
        ("US", None, US),
    ],
)
def test_the_recipients_country_chooses_the_pack_else_the_tenants(
    recipient: str | None, tenant: str | None, pack: RulePack
) -> None:
    assert pack_for(recipient, tenant) is pack


def test_the_eu_pack_covers_exactly_the_27_member_states() -> None:
    member_states = {
        *("AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE"),
        *("IT", "LV", "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE"),
    }
    assert member_states == EU_COUNTRIES
    for country in EU_COUNTRIES:
        assert pack_for(country, "US") is EU


def test_the_legal_numbers() -> None:
    assert (DEFAULT.age_of_majority, EU.age_of_majority, INDIA.age_of_majority) == (18, 16, 18)
    assert (US.quiet_hours[0].start, US.quiet_hours[0].end) == (time(8), time(21))
    assert (INDIA.quiet_hours[0].start, INDIA.quiet_hours[0].end) == (time(10), time(21))
    assert CANADA.implied_consent is not None
    assert CANADA.implied_consent.after_purchase == timedelta(days=730)
    assert CANADA.implied_consent.after_inquiry == timedelta(days=183)


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.SMS, Channel.WHATSAPP])
def test_only_canada_allows_implied_consent_for_electronic_messages(channel: Channel) -> None:
    assert CANADA.implied_allowed(channel)
    for pack in (DEFAULT, US, EU, INDIA):
        assert not pack.implied_allowed(channel)


def test_canada_does_not_imply_consent_to_calls() -> None:
    assert not CANADA.implied_allowed(Channel.VOICE)


def test_only_the_eu_allows_the_soft_opt_in_and_only_for_email_and_sms() -> None:
    assert EU.soft_opt_in_allowed(Channel.EMAIL)
    assert EU.soft_opt_in_allowed(Channel.SMS)
    assert not EU.soft_opt_in_allowed(Channel.WHATSAPP)
    assert not EU.soft_opt_in_allowed(Channel.VOICE)
    for pack in (DEFAULT, US, INDIA, CANADA):
        assert not pack.soft_opt_in_allowed(Channel.EMAIL)


# --- coming of age ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("born", "pack", "adult_on"),
    [
        (date(2000, 5, 15), DEFAULT, date(2018, 6, 1)),  # rounded up to the next 1st
        (date(2000, 5, 31), DEFAULT, date(2018, 6, 1)),
        (date(2000, 5, 1), DEFAULT, date(2018, 5, 1)),  # already the 1st
        (date(2000, 12, 10), DEFAULT, date(2019, 1, 1)),  # into the next year
        (date(2000, 12, 1), DEFAULT, date(2018, 12, 1)),
        (date(2004, 2, 29), DEFAULT, date(2022, 3, 1)),  # 2022 has no 29 February
        (date(2008, 2, 29), EU, date(2024, 3, 1)),  # 2024 does: 29 Feb rounds up to 1 March
        (date(2010, 7, 20), EU, date(2026, 8, 1)),  # EU threshold is 16
        (date(2010, 7, 20), DEFAULT, date(2028, 8, 1)),
        (date(2010, 7, 20), INDIA, date(2028, 8, 1)),
        (date(2010, 7, 20), US, date(2028, 8, 1)),
    ],
)
def test_majority_date(born: date, pack: RulePack, adult_on: date) -> None:
    assert majority_date(born, pack) == adult_on


@settings(max_examples=200, deadline=None)
@given(
    st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
    st.sampled_from([DEFAULT, EU, INDIA]),
)
def test_majority_date_is_the_first_of_a_month_never_before_the_birthday(
    born: date, pack: RulePack
) -> None:
    adult_on = majority_date(born, pack)

    year = born.year + pack.age_of_majority
    try:
        birthday = born.replace(year=year)
    except ValueError:
        birthday = date(year, 2, 28)
    assert adult_on.day == 1
    assert birthday <= adult_on
    assert (adult_on - birthday).days <= 31
    assert (adult_on.year, adult_on.month) in {
        (birthday.year, birthday.month),
        (birthday.year + (birthday.month == 12), birthday.month % 12 + 1),
    }


# --- quiet hours ------------------------------------------------------------------------------

SMS = Channel.SMS
MARKETING = Category.MARKETING


def ny(year: int, month: int, day: int, hour: int, minute: int = 0, *, second: int = 0) -> datetime:
    """A New York wall-clock time, as the UTC instant the gate receives."""
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK).astimezone(UTC)


def ist(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=KOLKATA).astimezone(UTC)


@pytest.mark.parametrize(
    "now",
    [
        ny(2025, 6, 11, 8, 0),
        ny(2025, 6, 11, 12, 0),
        ny(2025, 6, 11, 20, 59),
        ny(2025, 6, 11, 20, 59, second=59),
        ny(2025, 1, 15, 8, 0),
        ny(2025, 1, 15, 20, 59),
    ],
)
def test_us_marketing_sms_may_go_from_08_00_until_just_before_21_00(now: datetime) -> None:
    assert quiet_until(US, SMS, MARKETING, "America/New_York", now) is None


def test_just_before_08_00_waits_until_08_00_the_same_day() -> None:
    now = ny(2025, 6, 11, 7, 59, second=59)

    assert quiet_until(US, SMS, MARKETING, "America/New_York", now) == ny(2025, 6, 11, 8)


@pytest.mark.parametrize("now", [ny(2025, 6, 11, 21, 0), ny(2025, 6, 11, 23, 30)])
def test_from_21_00_waits_until_08_00_the_next_day(now: datetime) -> None:
    until = quiet_until(US, SMS, MARKETING, "America/New_York", now)

    assert until == ny(2025, 6, 12, 8)
    assert until == datetime(2025, 6, 12, 12, 0, tzinfo=UTC)


def test_after_midnight_waits_until_08_00_the_same_day() -> None:
    assert quiet_until(US, SMS, MARKETING, "America/New_York", ny(2025, 6, 12, 0, 30)) == ny(
        2025, 6, 12, 8
    )


def test_spring_forward_night_in_new_york() -> None:
    # 9 March 2025: clocks go from 02:00 EST to 03:00 EDT; 08:00 that morning is 12:00 UTC.
    now = ny(2025, 3, 8, 21, 30)
    assert now == datetime(2025, 3, 9, 2, 30, tzinfo=UTC)

    until = quiet_until(US, SMS, MARKETING, "America/New_York", now)

    assert until == datetime(2025, 3, 9, 12, 0, tzinfo=UTC)
    assert until is not None
    assert until.astimezone(NEW_YORK).time() == time(8)


def test_spring_forward_morning_in_new_york() -> None:
    now = datetime(2025, 3, 9, 11, 30, tzinfo=UTC)  # 07:30 EDT, an hour after the change

    assert quiet_until(US, SMS, MARKETING, "America/New_York", now) == datetime(
        2025, 3, 9, 12, 0, tzinfo=UTC
    )
    # 12:30 UTC would have been 07:30 EST the day before; on the day it is 08:30 EDT.
    assert quiet_until(US, SMS, MARKETING, "America/New_York", now + timedelta(hours=1)) is None


def test_fall_back_night_in_new_york() -> None:
    # 2 November 2025: clocks go from 02:00 EDT back to 01:00 EST; 08:00 is then 13:00 UTC.
    now = ny(2025, 11, 1, 21, 30)
    assert now == datetime(2025, 11, 2, 1, 30, tzinfo=UTC)

    until = quiet_until(US, SMS, MARKETING, "America/New_York", now)

    assert until == datetime(2025, 11, 2, 13, 0, tzinfo=UTC)


def test_fall_back_evening_in_new_york_closes_at_21_00_est() -> None:
    assert quiet_until(US, SMS, MARKETING, "America/New_York", ny(2025, 11, 2, 20, 59)) is None
    assert quiet_until(US, SMS, MARKETING, "America/New_York", ny(2025, 11, 2, 21, 0)) == (
        ny(2025, 11, 3, 8)
    )


def test_an_unknown_us_time_zone_needs_every_us_zone_open() -> None:
    # 08:30 in New York but 02:30 in Honolulu: wait for Honolulu's 08:00.
    now = datetime(2025, 6, 11, 12, 30, tzinfo=UTC)

    until = quiet_until(US, SMS, MARKETING, None, now)

    assert until == datetime(2025, 6, 11, 18, 0, tzinfo=UTC)
    assert until is not None
    assert until.astimezone(HONOLULU).time() == time(8)


def test_an_unknown_us_time_zone_closes_when_new_york_does() -> None:
    # Winter: 21:00 EST is 02:00 UTC; Honolulu is still open but New York is not.
    assert quiet_until(US, SMS, MARKETING, None, datetime(2025, 1, 15, 1, 59, tzinfo=UTC)) is None
    assert quiet_until(US, SMS, MARKETING, None, datetime(2025, 1, 15, 2, 0, tzinfo=UTC)) == (
        datetime(2025, 1, 15, 18, 0, tzinfo=UTC)
    )


def test_indian_promotional_hours_are_10_00_to_21_00_ist() -> None:
    assert quiet_until(INDIA, SMS, MARKETING, None, ist(2025, 6, 11, 10, 0)) is None
    assert quiet_until(INDIA, SMS, MARKETING, None, ist(2025, 6, 11, 20, 59)) is None
    assert quiet_until(INDIA, SMS, MARKETING, None, ist(2025, 6, 11, 9, 59)) == ist(2025, 6, 11, 10)
    assert quiet_until(INDIA, SMS, MARKETING, None, ist(2025, 6, 11, 21, 0)) == ist(2025, 6, 12, 10)


def test_indian_hours_ignore_the_recipients_own_zone() -> None:
    now = ist(2025, 6, 11, 21, 30)  # 12:00 in New York

    assert quiet_until(INDIA, SMS, MARKETING, "America/New_York", now) == ist(2025, 6, 12, 10)


@pytest.mark.parametrize(
    ("channel", "category"),
    [
        (Channel.EMAIL, Category.MARKETING),
        (Channel.WHATSAPP, Category.MARKETING),
        (Channel.SMS, Category.SERVICE),
        (Channel.VOICE, Category.SERVICE),
    ],
)
@pytest.mark.parametrize("pack", [US, INDIA])
def test_quiet_hours_cover_only_marketing_calls_and_texts(
    pack: RulePack, channel: Channel, category: Category
) -> None:
    night = ny(2025, 6, 11, 23, 0)  # 08:30 IST the next day: closed in both packs

    assert quiet_until(pack, channel, category, "America/New_York", night) is None


def test_voice_has_the_same_hours_as_sms() -> None:
    assert quiet_until(US, Channel.VOICE, MARKETING, "America/New_York", ny(2025, 6, 11, 22)) == (
        ny(2025, 6, 12, 8)
    )


@pytest.mark.parametrize("pack", [DEFAULT, EU, CANADA])
def test_packs_without_quiet_hours_never_defer(pack: RulePack) -> None:
    assert quiet_until(pack, SMS, MARKETING, "America/New_York", ny(2025, 6, 11, 3)) is None


US_ZONES = [ZoneInfo(z) for z in US.fallback_time_zones]
instants = st.datetimes(
    # Hypothesis takes naive bounds; every value drawn is aware (UTC).
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2027, 12, 31),
    timezones=st.just(UTC),
)


def open_in(zone: ZoneInfo, at: datetime, start: time, end: time) -> bool:
    return start <= at.astimezone(zone).time() < end


@settings(max_examples=200, deadline=None)
@given(instants, st.sampled_from(list(US.fallback_time_zones)))
def test_a_known_zone_waits_for_the_next_08_00_there(now: datetime, zone_name: str) -> None:
    zone = ZoneInfo(zone_name)

    until = quiet_until(US, SMS, MARKETING, zone_name, now)

    if open_in(zone, now, time(8), time(21)):
        assert until is None
    else:
        assert until is not None
        assert until > now
        assert until.astimezone(zone).time() == time(8)
        assert until - now <= timedelta(hours=12)


@settings(max_examples=200, deadline=None)
@given(instants)
def test_an_unknown_zone_waits_until_every_us_zone_is_open(now: datetime) -> None:
    until = quiet_until(US, SMS, MARKETING, None, now)

    if all(open_in(zone, now, time(8), time(21)) for zone in US_ZONES):
        assert until is None
    else:
        assert until is not None
        assert until > now
        assert all(open_in(zone, until, time(8), time(21)) for zone in US_ZONES)
        # The earliest such moment: a second earlier, some zone is still closed.
        before = until - timedelta(seconds=1)
        assert not all(open_in(zone, before, time(8), time(21)) for zone in US_ZONES)
        assert until - now < timedelta(days=1)
