"""Normalisation and validation of contact points, countries and time zones.

Every address is normalised once, where it enters the system, so that storage, blind indexes and
comparisons all see one spelling. Validation failures raise the InvalidInput error of the field
(with ``field`` set) so the caller can report it.
"""

from __future__ import annotations

import contextlib
import functools
import re
import zoneinfo

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from consentry.domain.errors import InvalidCountry, InvalidEmail, InvalidPhone, InvalidTimeZone
from consentry.domain.model import PhoneType

# RFC 5321 limits a path to 256 octets including angle brackets; 320 (64 + 1 + 255) is the common,
# more lenient bound. Anything longer is rejected before the validator parses it.
MAX_EMAIL_LENGTH = 320

_PHONE_TYPES: dict[int, PhoneType] = {
    phonenumbers.PhoneNumberType.MOBILE: PhoneType.MOBILE,
    phonenumbers.PhoneNumberType.FIXED_LINE: PhoneType.FIXED_LINE,
    phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE: PhoneType.FIXED_LINE_OR_MOBILE,
    phonenumbers.PhoneNumberType.VOIP: PhoneType.VOIP,
}

_PARSE_ERRORS: dict[int, str] = {
    phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: (
        "no country known: write the number with + and its country code"
    ),
    phonenumbers.NumberParseException.NOT_A_NUMBER: "not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short to be a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short to be a phone number",
    phonenumbers.NumberParseException.TOO_LONG: "too long to be a phone number",
}


# Plain ASCII dot-atom local parts, a strict subset of what RFC 5322 and email-validator accept.
# For them the validator keeps the local part as given, so only the domain needs its work, and
# domains repeat: imports of a million rows carry a few thousand at most.
_SIMPLE_LOCAL = re.compile(r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*")
_SIMPLE_LOCAL_MAX = 64  # RFC 5321 section 4.5.3.1.1
_SIMPLE_TOTAL_MAX = 254  # the validator's own limit on the whole address


@functools.lru_cache(maxsize=4096)
def _normalized_domain(domain: str) -> str:
    return str(validate_email("x@" + domain, check_deliverability=False).domain)


def normalize_email(raw: str) -> str:
    """The normalised form of an email address: domain lower-cased (and IDNA-normalised), local
    part kept as given. No DNS lookup is made. Raises InvalidEmail."""
    candidate = raw.strip()
    local, at, domain = candidate.rpartition("@")
    if (
        at
        and domain.isascii()
        and len(local) <= _SIMPLE_LOCAL_MAX
        and len(candidate) <= _SIMPLE_TOTAL_MAX
        and _SIMPLE_LOCAL.fullmatch(local)
    ):
        with contextlib.suppress(EmailNotValidError):  # else the full validation words it
            return f"{local}@{_normalized_domain(domain)}"
    if len(candidate) > MAX_EMAIL_LENGTH:
        raise InvalidEmail(
            f"email address is longer than {MAX_EMAIL_LENGTH} characters", field="email"
        )
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail(str(exc), field="email") from exc
    return result.normalized


def normalize_phone(
    raw: str, default_region: str | None, *, field: str = "phone"
) -> tuple[str, PhoneType]:
    """The E.164 form and line type of a phone number. ``default_region`` (ISO 3166-1 alpha-2)
    is used for numbers written without a leading ``+``. Raises InvalidPhone for ``field``."""
    try:
        number = phonenumbers.parse(raw.strip(), default_region)
    except phonenumbers.NumberParseException as exc:
        reason = _PARSE_ERRORS.get(exc.error_type, "not a phone number")
        raise InvalidPhone(reason, field=field) from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid number in any numbering plan", field=field)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, _PHONE_TYPES.get(phonenumbers.number_type(number), PhoneType.OTHER)


def normalize_country(raw: str | None) -> str | None:
    """An upper-case ISO 3166-1 alpha-2 code, or None when absent or blank. Raises InvalidCountry.

    Checked against the regions of the phone numbering plans, so a country accepted here can
    always serve as the default region of a phone number.
    """
    if raw is None or not raw.strip():
        return None
    code = raw.strip().upper()
    if len(code) != 2 or code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidCountry("not an ISO 3166-1 alpha-2 country code", field="country")
    return code


def validate_time_zone(raw: str | None) -> str | None:
    """The canonical spelling of an IANA time zone name (matched case-insensitively), or None
    when absent or blank. Raises InvalidTimeZone."""
    if raw is None or not raw.strip():
        return None
    name = _time_zones().get(raw.strip().lower())
    if name is None:
        raise InvalidTimeZone("not an IANA time zone name such as Europe/London", field="time_zone")
    return name


def normalize_postal(raw: str) -> str:
    """A postal address with runs of whitespace (line breaks included) collapsed to one space."""
    return " ".join(raw.split())


@functools.cache
def _time_zones() -> dict[str, str]:
    # Reading the tz database walks the file system; the set does not change while running.
    return {name.lower(): name for name in zoneinfo.available_timezones()}
