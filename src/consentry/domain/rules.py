"""Jurisdiction rule packs: every legal number the gate uses lives here, with its source.

A pack is chosen from the recipient's country, else the tenant's. Within a pack the strictest rule
wins: every quiet-hours window that applies must allow the moment, in every time zone the recipient
may be in when their own is unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from consentry.domain.model import Category, Channel


@dataclass(frozen=True, slots=True)
class QuietHours:
    """Messages of these categories on these channels may go only between ``start`` and ``end``."""

    start: time
    end: time
    channels: frozenset[Channel]
    categories: frozenset[Category]
    source: str
    time_zone: str | None = None  # a fixed zone (India's rule is stated in IST), else recipient's


@dataclass(frozen=True, slots=True)
class ImpliedConsent:
    """An implied basis the law allows for commercial messages, and how long it lasts."""

    channels: frozenset[Channel]
    after_purchase: timedelta
    after_inquiry: timedelta
    source: str


@dataclass(frozen=True, slots=True)
class RulePack:
    code: str
    name: str
    age_of_majority: int
    age_source: str
    opt_out_deadline: timedelta
    opt_out_source: str
    quiet_hours: tuple[QuietHours, ...] = ()
    fallback_time_zones: tuple[str, ...] = ()
    implied_consent: ImpliedConsent | None = None
    soft_opt_in_channels: frozenset[Channel] = field(default_factory=frozenset)
    soft_opt_in_source: str = ""

    def implied_allowed(self, channel: Channel) -> bool:
        return self.implied_consent is not None and channel in self.implied_consent.channels

    def soft_opt_in_allowed(self, channel: Channel) -> bool:
        return channel in self.soft_opt_in_channels


_ELECTRONIC = frozenset({Channel.EMAIL, Channel.SMS, Channel.WHATSAPP})
_CALLS_AND_TEXTS = frozenset({Channel.SMS, Channel.VOICE})
_MARKETING = frozenset({Category.MARKETING})

DEFAULT = RulePack(
    code="DEFAULT",
    name="Default (no country-specific pack)",
    age_of_majority=18,
    age_source="consentry default: 18 where no stricter or looser rule is known",
    opt_out_deadline=timedelta(days=2),
    opt_out_source="consentry default: opt-outs are honoured at once; records settle within 2 days",
)

US = RulePack(
    code="US",
    name="United States",
    age_of_majority=18,
    age_source="Age of majority in most US states",
    opt_out_deadline=timedelta(days=10),
    opt_out_source="CAN-SPAM Act, 15 U.S.C. 7704(a)(4): honour opt-outs within 10 business days",
    quiet_hours=(
        QuietHours(
            start=time(8, 0),
            end=time(21, 0),
            channels=_CALLS_AND_TEXTS,
            categories=_MARKETING,
            source="TCPA, 47 CFR 64.1200(c)(1): no telephone solicitation before 8 a.m. or after "
            "9 p.m. at the called party's location",
        ),
    ),
    fallback_time_zones=(
        "America/New_York",
        "America/Chicago",
        "America/Denver",
        "America/Phoenix",
        "America/Los_Angeles",
        "America/Anchorage",
        "Pacific/Honolulu",
    ),
)

EU = RulePack(
    code="EU",
    name="European Union",
    age_of_majority=16,
    age_source="GDPR Art. 8(1): consent of a child is lawful from 16 (member states may lower it)",
    opt_out_deadline=timedelta(days=2),
    opt_out_source="GDPR Art. 21(3) and ePrivacy Art. 13(2): stop without undue delay",
    soft_opt_in_channels=frozenset({Channel.EMAIL, Channel.SMS}),
    soft_opt_in_source="ePrivacy Directive 2002/58/EC Art. 13(2): existing customers, similar "
    "products, opt-out offered at collection and in every message",
)

INDIA = RulePack(
    code="IN",
    name="India",
    age_of_majority=18,
    age_source="Digital Personal Data Protection Act 2023, s.2(f): a child is under 18",
    opt_out_deadline=timedelta(days=1),
    opt_out_source="TRAI TCCCPR 2018: preference changes take effect within 24 hours",
    quiet_hours=(
        QuietHours(
            start=time(10, 0),
            end=time(21, 0),
            channels=_CALLS_AND_TEXTS,
            categories=_MARKETING,
            source="TRAI TCCCPR 2018: promotional messages only between 10:00 and 21:00 IST",
            time_zone="Asia/Kolkata",
        ),
    ),
    fallback_time_zones=("Asia/Kolkata",),
)

CANADA = RulePack(
    code="CA",
    name="Canada",
    age_of_majority=18,
    age_source="Age of majority in most provinces (18 or 19; 19 in BC, NS, NB, NL and the "
    "territories) — 18 applied, with contacts' own attestation",
    opt_out_deadline=timedelta(days=10),
    opt_out_source="CASL s.11(3): give effect to an unsubscribe within 10 business days",
    implied_consent=ImpliedConsent(
        channels=_ELECTRONIC,
        after_purchase=timedelta(days=730),
        after_inquiry=timedelta(days=183),
        source="CASL s.10(10)(a)-(b): existing business relationship, 2 years after a purchase, "
        "6 months after an inquiry",
    ),
)

EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
    ]
)

PACKS: dict[str, RulePack] = {p.code: p for p in (DEFAULT, US, EU, INDIA, CANADA)}


def pack_code_for(country: str | None) -> str:
    if country is None:
        return DEFAULT.code
    if country in EU_COUNTRIES:
        return EU.code
    if country == "US":
        return US.code
    if country == "IN":
        return INDIA.code
    if country == "CA":
        return CANADA.code
    return DEFAULT.code


@lru_cache(maxsize=1024)
def pack_for(recipient_country: str | None, tenant_country: str | None) -> RulePack:
    """The pack of the recipient's country, else the tenant's."""
    return PACKS[pack_code_for(recipient_country or tenant_country)]


def majority_date(date_of_birth: date, pack: RulePack) -> date:
    """The day a person reaches the pack's age threshold, rounded up to the first of a month.

    Rounding up means the stored value reveals no more than the birth month, and errs only
    towards treating a person as a minor a little longer.
    """
    year = date_of_birth.year + pack.age_of_majority
    try:
        exact = date_of_birth.replace(year=year)
    except ValueError:  # born on 29 February; the threshold falls on 1 March in common years
        exact = date(year, 3, 1)
    if exact.day == 1:
        return exact
    return date(exact.year + (exact.month == 12), exact.month % 12 + 1, 1)


@lru_cache(maxsize=512)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _window_opens(window: QuietHours, zone: ZoneInfo, at: datetime) -> datetime | None:
    """None when ``at`` is inside the window in ``zone``, else the next opening (UTC)."""
    local = at.astimezone(zone)
    now_t = local.time()
    if window.start <= now_t < window.end:
        return None
    day = local.date() if now_t < window.start else local.date() + timedelta(days=1)
    return datetime.combine(day, window.start, tzinfo=zone).astimezone(UTC)


def quiet_until(
    pack: RulePack,
    channel: Channel,
    category: Category,
    time_zone: str | None,
    now: datetime,
) -> datetime | None:
    """When a message may go if ``now`` falls in quiet hours; None when it may go now.

    Cached for the built-in packs: a dispatch batch decides every recipient at one instant, so the
    few distinct time zones of a batch are each worked out once.
    """
    if PACKS.get(pack.code) is pack:
        return _cached_quiet_until(pack.code, channel, category, time_zone, now)
    return _quiet_until(pack, channel, category, time_zone, now)


@lru_cache(maxsize=8192)
def _cached_quiet_until(
    code: str, channel: Channel, category: Category, time_zone: str | None, now: datetime
) -> datetime | None:
    return _quiet_until(PACKS[code], channel, category, time_zone, now)


def _quiet_until(
    pack: RulePack,
    channel: Channel,
    category: Category,
    time_zone: str | None,
    now: datetime,
) -> datetime | None:
    windows = [w for w in pack.quiet_hours if channel in w.channels and category in w.categories]
    if not windows:
        return None
    checks: list[tuple[QuietHours, ZoneInfo]] = []
    for window in windows:
        if window.time_zone is not None:
            zones: tuple[str, ...] = (window.time_zone,)
        elif time_zone is not None:
            zones = (time_zone,)
        else:
            zones = pack.fallback_time_zones or ("UTC",)
        checks.extend((window, _zone(z)) for z in zones)
    at = now
    # Every window must be open at once; moving to the latest opening may close another window,
    # so iterate. Windows of 13 hours across the US zones (at most 6 hours apart) always meet.
    for _ in range(8):
        openings = [o for w, z in checks if (o := _window_opens(w, z, at)) is not None]
        if not openings:
            return None if at == now else at
        at = max(openings)
    return at
