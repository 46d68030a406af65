"""The synthetic audience of the eligibility benchmark: one definition, two generators.

Every value is a deterministic function of a row number ``n``. Random choices use "dice": the four
big-endian 32-bit words of ``md5(tag || ':' || n)``. PostgreSQL computes them in SQL
(``pg_load.py``) and Python computes them with ``hashlib`` (``sqlite_load.py``), so both databases
hold the same audience and must report the same counts. A probability ``p`` is the integer
threshold ``floor(p * 2**32)``; every comparison is between integers, so nothing depends on
floating-point rounding in either language.

Personal-data ``*_enc`` columns hold pseudo-random bytes of the length AES-GCM ciphertext would
have (29 bytes of format, nonce and tag plus the plaintext); ``*_key`` blind indexes are 16-byte
digests. Encryption is not part of this benchmark: it is paid once, at import.
"""

from __future__ import annotations

import hashlib
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

# The moment every benchmark decides at: a Wednesday, 09:30 in New York and 06:30 in Los Angeles,
# so marketing SMS is open on the US east coast and in quiet hours further west.
NOW = datetime(2026, 11, 18, 14, 30, tzinfo=UTC)
EPOCH = NOW - timedelta(days=1500)
EPOCH_MS = int(EPOCH.timestamp()) * 1000
DAY = 86_400
CONTACT_SPAN_S = 1450 * DAY  # contacts were created over ~4 years, in row order
CONSENT_DELAY_S = 50 * DAY  # a consent is given within 50 days of the contact's creation
SUPPRESSION_SPAN_S = 1499 * DAY
WHATSAPP_INBOUND_S = 2 * DAY
IMPLIED_LIFETIME_S = {"purchase": 730 * DAY, "inquiry": 183 * DAY}  # CASL s.10(10)
ENC_OVERHEAD = 29  # format byte + 12-byte nonce + 16-byte tag
POOL_REPEAT = 6  # a row's 96 "ciphertext" bytes: md5('pool:n') six times
DIE = 2**32

Choice = tuple[tuple[str | None, float], ...]


@dataclass(frozen=True, slots=True)
class AudienceIds:
    """The rows created through the services that the generated rows point at."""

    tenant: uuid.UUID
    topic: uuid.UUID
    umbrella: uuid.UUID


COUNTRY: Choice = (("US", 82), ("CA", 8), ("DE", 4), ("IN", 3), ("GB", 1), (None, 2))
TIME_ZONE: dict[str | None, Choice] = {
    "US": (
        ("America/New_York", 30),
        ("America/Chicago", 22),
        ("America/Denver", 6),
        ("America/Phoenix", 3),
        ("America/Los_Angeles", 21),
        ("America/Detroit", 3),
        ("America/Indiana/Indianapolis", 2),
        ("America/Boise", 1),
        ("America/Kentucky/Louisville", 1),
        ("America/Anchorage", 1),
        ("Pacific/Honolulu", 1),
        (None, 9),
    ),
    "CA": (
        ("America/Toronto", 50),
        ("America/Vancouver", 15),
        ("America/Edmonton", 11),
        ("America/Winnipeg", 5),
        ("America/Halifax", 4),
        ("America/Regina", 3),
        ("America/St_Johns", 2),
        ("America/Moncton", 2),
        (None, 8),
    ),
    "DE": (("Europe/Berlin", 95), (None, 5)),
    "IN": (("Asia/Kolkata", 96), (None, 4)),
    "GB": (("Europe/London", 95), (None, 5)),
    None: (
        ("Europe/London", 15),
        ("Europe/Paris", 10),
        ("Europe/Madrid", 5),
        ("Australia/Sydney", 10),
        ("Asia/Tokyo", 8),
        ("Asia/Singapore", 8),
        ("America/Sao_Paulo", 8),
        ("America/Mexico_City", 10),
        ("Africa/Johannesburg", 4),
        ("Asia/Dubai", 4),
        ("America/New_York", 8),
        (None, 10),
    ),
}
LOCALE = {"US": "en-US", "CA": "en-CA", "DE": "de-DE", "IN": "en-IN", "GB": "en-GB"}
PHONE_TYPE: Choice = (
    ("mobile", 80),
    ("fixed_line_or_mobile", 7),
    ("fixed_line", 10),
    ("voip", 3),
)
STATUS: Choice = (
    ("active", 86),
    ("withdrawn", 7),
    ("pending", 3),
    ("lapsed", 2.5),
    ("void", 1.5),  # reassigned numbers: on email the same die means withdrawn
)
ACTION = {
    "active": "granted",
    "pending": "requested",
    "withdrawn": "withdrawn",
    "lapsed": "lapsed",
    "void": "voided",
}
TENANT_EMAIL_REASON: Choice = (
    ("unsubscribed", 70),
    ("hard_bounce", 10),
    ("complaint", 4),
    ("manual", 10),
    ("provider", 3),
    ("erased", 3),
)
TENANT_SMS_REASON: Choice = (
    ("unsubscribed", 65),
    ("reassigned_number", 15),
    ("dnc_registry", 10),
    ("manual", 5),
    ("provider", 5),
)
PLATFORM_REASON: Choice = (("hard_bounce", 60), ("complaint", 25), ("provider", 10), ("erased", 5))
MARKETING_SCOPED = frozenset({"unsubscribed", "dnc_registry"})
LIFTABLE = frozenset({"unsubscribed", "manual"})


def p(probability: float) -> int:
    """The die threshold below which an event of this probability happens."""
    return int(Fraction(probability) * DIE)


def thresholds(choice: Choice) -> tuple[tuple[int, str | None], ...]:
    """Cumulative integer thresholds for a weighted choice; the last one is always 2**32."""
    total = sum(Fraction(w) for _, w in choice)
    out: list[tuple[int, str | None]] = []
    running = Fraction(0)
    for value, weight in choice:
        running += Fraction(weight)
        out.append((int(running / total * DIE), value))
    out[-1] = (DIE, out[-1][1])
    return tuple(out)


@dataclass(frozen=True, slots=True)
class Shares:
    """Probabilities of the population, each documented in docs/performance.md."""

    no_email: int = p(0.05)
    phone: int = p(0.65)
    whatsapp: int = p(0.25)  # of contacts with a phone that can receive texts
    whatsapp_inbound: int = p(0.30)  # of WhatsApp contacts: wrote within two days
    postal: int = p(0.30)
    dob: int = p(0.40)
    minor: int = p(0.012)
    fr_ca: int = p(0.22)
    topic_state: int = p(0.72)
    umbrella_state: int = p(0.52)
    sms_state: int = p(0.13)  # a state is on SMS rather than email (when the phone allows)
    implied_ca: int = p(0.45)
    soft_opt_in_de: int = p(0.25)
    express: int = p(0.92)  # else double opt-in
    stale_address: int = p(0.02)  # the state is for an address the contact no longer has
    topic_newer: int = p(0.5)
    purchase: int = p(0.5)  # implied consent rests on a purchase (else an inquiry)
    sms_suppression: int = p(0.10)
    platform_suppression: int = p(0.12)
    foreign_key: int = p(0.30)  # platform-wide suppression of an address of another tenant
    manual_marketing: int = p(0.5)
    lifted: int = p(0.04)


SHARES = Shares()


def dice(tag: str, n: int) -> tuple[int, int, int, int]:
    """Four 32-bit dice: the words of md5(tag:n), as PostgreSQL's md5() computes it too."""
    digest = hashlib.md5(f"{tag}:{n}".encode(), usedforsecurity=False).digest()
    return struct.unpack(">4I", digest)  # type: ignore[return-value]


def dice_of(hex_digest: str) -> tuple[int, int, int, int]:
    """The dice of an md5 already computed (as hex)."""
    return struct.unpack(">4I", bytes.fromhex(hex_digest))  # type: ignore[return-value]


def md5_bytes(tag: str, n: int) -> bytes:
    return hashlib.md5(f"{tag}:{n}".encode(), usedforsecurity=False).digest()


def md5_hex(tag: str, n: int) -> str:
    return hashlib.md5(f"{tag}:{n}".encode(), usedforsecurity=False).hexdigest()


def pick(die: int, table: tuple[tuple[int, str | None], ...]) -> str | None:
    for limit, value in table:
        if die < limit:
            return value
    raise AssertionError("the last threshold is 2**32")


def uuid7_hex(millis: int, hex_digest: str) -> str:
    """A UUIDv7 (as 32 hex digits) with the given timestamp and md5-derived "random" bits."""
    variant = "89ab"[int(hex_digest[3], 16) & 3]
    return f"{millis:012x}7{hex_digest[0:3]}{variant}{hex_digest[4:19]}"


def at(seconds: int) -> datetime:
    return EPOCH + timedelta(seconds=seconds)


def adult_on(minor: bool, die: int) -> date:
    year = 2027 + die % 6 if minor else 1960 + die % 66
    return date(year, 1 + (die >> 8) % 12, 1)


def suppression_count(contacts: int) -> int:
    return contacts // 20  # 50,000 for a million contacts


def dnc_count(contacts: int) -> int:
    return contacts // 200  # 5,000 registry entries for a million contacts


COUNTRY_T = thresholds(COUNTRY)
TIME_ZONE_T = {country: thresholds(table) for country, table in TIME_ZONE.items()}
PHONE_TYPE_T = thresholds(PHONE_TYPE)
STATUS_T = thresholds(STATUS)
TENANT_EMAIL_REASON_T = thresholds(TENANT_EMAIL_REASON)
TENANT_SMS_REASON_T = thresholds(TENANT_SMS_REASON)
PLATFORM_REASON_T = thresholds(PLATFORM_REASON)
