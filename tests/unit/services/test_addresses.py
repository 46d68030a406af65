from __future__ import annotations

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given, reject
from hypothesis import strategies as st

from consentry.domain.errors import InvalidCountry, InvalidEmail, InvalidPhone, InvalidTimeZone
from consentry.domain.model import PhoneType, PointKind, point_index_value
from consentry.services.addresses import (
    normalize_country,
    normalize_email,
    normalize_phone,
    normalize_postal,
    validate_time_zone,
)


def email_key(value: str) -> str:
    return point_index_value(PointKind.EMAIL, value)


def postal_key(value: str) -> str:
    return point_index_value(PointKind.POSTAL, value)


# --- email ---------------------------------------------------------------------------------


def test_email_domain_is_lower_cased_and_local_part_kept() -> None:
    normalized = normalize_email("  Alice@Example.COM \n")
    assert normalized == "Alice@example.com"
    assert email_key(normalized) == "alice@example.com"


def test_email_index_treats_local_part_case_insensitively() -> None:
    assert point_index_value(PointKind.EMAIL, normalize_email("ALICE@example.com")) == email_key(
        normalize_email("alice@EXAMPLE.com")
    )


def test_internationalised_email_is_accepted() -> None:
    assert normalize_email("a@MÜNCHEN.de") == "a@münchen.de"


@pytest.mark.parametrize(
    "raw",
    [
        "not-an-email",
        "a@b",
        "",
        "   ",
        "alice@",
        "@example.com",
        "two@@example.com",
        "a b@example.com",
        "Alice <alice@example.com>",
        "x@localhost",
        "x@site.test",
    ],
)
def test_invalid_emails(raw: str) -> None:
    with pytest.raises(InvalidEmail) as caught:
        normalize_email(raw)
    assert caught.value.field == "email"
    assert caught.value.code == "INVALID_EMAIL"


def test_too_long_email_is_rejected_before_parsing() -> None:
    raw = "a" * 64 + "@" + "b" * 250 + ".example.com"
    with pytest.raises(InvalidEmail, match="longer than 320") as caught:
        normalize_email(raw)
    assert caught.value.__cause__ is None


def test_email_validator_error_is_chained() -> None:
    with pytest.raises(InvalidEmail) as caught:
        normalize_email("not-an-email")
    assert caught.value.__cause__ is not None


@given(st.emails() | st.text(max_size=40))
def test_normalize_email_is_idempotent(raw: str) -> None:
    try:
        once = normalize_email(raw)
    except InvalidEmail:
        reject()
    assert normalize_email(once) == once
    assert point_index_value(PointKind.EMAIL, normalize_email(email_key(once))) == email_key(once)


# --- phone ---------------------------------------------------------------------------------


def test_international_phone_to_e164() -> None:
    assert normalize_phone("+1 415 555 2671", None) == (
        "+14155552671",
        PhoneType.FIXED_LINE_OR_MOBILE,
    )


def test_plus_number_ignores_default_region() -> None:
    assert normalize_phone("+1 (415) 555-2671", "GB")[0] == "+14155552671"


def test_national_phone_with_region() -> None:
    assert normalize_phone("020 7946 0018", "GB") == ("+442079460018", PhoneType.FIXED_LINE)


def test_uk_mobile_line_type() -> None:
    assert normalize_phone("07911 123456", "GB") == ("+447911123456", PhoneType.MOBILE)


def test_national_phone_without_region_is_rejected() -> None:
    with pytest.raises(InvalidPhone, match="country code"):
        normalize_phone("020 7946 0018", None)


@pytest.mark.parametrize("raw", ["garbage", "", "+", "12", "+1 555 555 5555", "9" * 300])
def test_invalid_phones(raw: str) -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone(raw, "US")
    assert caught.value.field == "phone"
    assert caught.value.code == "INVALID_PHONE"


def test_phone_error_names_the_given_field() -> None:
    with pytest.raises(InvalidPhone) as caught:
        normalize_phone("garbage", "US", field="whatsapp")
    assert caught.value.field == "whatsapp"


# --- country and time zone -----------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [("gb", "GB"), (" US ", "US"), ("In", "IN")])
def test_countries(raw: str, expected: str) -> None:
    assert normalize_country(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_absent_country(raw: str | None) -> None:
    assert normalize_country(raw) is None


@pytest.mark.parametrize("raw", ["UK", "EU", "USA", "G", "zz", "001"])
def test_invalid_countries(raw: str) -> None:
    with pytest.raises(InvalidCountry) as caught:
        normalize_country(raw)
    assert caught.value.field == "country"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Europe/London", "Europe/London"),
        ("america/new_york", "America/New_York"),
        (" Asia/Kolkata ", "Asia/Kolkata"),
        ("UTC", "UTC"),
    ],
)
def test_time_zones(raw: str, expected: str) -> None:
    assert validate_time_zone(raw) == expected


@pytest.mark.parametrize("raw", [None, ""])
def test_absent_time_zone(raw: str | None) -> None:
    assert validate_time_zone(raw) is None


@pytest.mark.parametrize("raw", ["Mars/Olympus", "GMT+25", "London", "../etc/passwd"])
def test_invalid_time_zones(raw: str) -> None:
    with pytest.raises(InvalidTimeZone) as caught:
        validate_time_zone(raw)
    assert caught.value.field == "time_zone"


# --- postal --------------------------------------------------------------------------------


def test_postal_whitespace_is_collapsed() -> None:
    normalized = normalize_postal("  12 High  Street\n\tLondon   SW1A 1AA ")
    assert normalized == "12 High Street London SW1A 1AA"
    assert postal_key(normalized) == "12 high street london sw1a 1aa"


def test_postal_index_case_folds() -> None:
    assert postal_key("Straße 1") == point_index_value(PointKind.POSTAL, "STRASSE 1")


_LOCAL_CHARS = "abcXYZ019_%+-."
_DOMAINS = ("example.com", "Example.ORG", "bücher.example", "xn--bcher-kva.example", "a-b.co",
            "-bad.example", "localhost", "[127.0.0.1]", "exa mple.com", "x..y.com")  # fmt: skip


@given(
    st.text(alphabet=_LOCAL_CHARS, min_size=0, max_size=70),
    st.sampled_from(_DOMAINS),
)
def test_the_fast_path_for_plain_addresses_agrees_with_the_full_validation(
    local: str, domain: str
) -> None:
    address = f"{local}@{domain}"
    try:
        expected: str | None = validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError:
        expected = None
    try:
        got: str | None = normalize_email(address)
    except InvalidEmail:
        got = None
    assert got == expected
