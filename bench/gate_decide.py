"""Time the pure gate, ``domain.gate.decide``, on one core over a realistic mix of recipients.

The mix is built once (seeded), shuffled, and decided ``repeats`` times at one instant, as a
planning run or a dispatch batch does; the best run counts (``time.perf_counter`` around a plain
loop, garbage collector left on as in a worker). Each scenario is then timed on its own the same
way, and the SMS scenarios once more with a new instant for every decision. With
``profile=True`` the mix is also run under cProfile and the functions with the most own time are
reported.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from consentry.domain.consent import ConsentBasis, ConsentStatus
from consentry.domain.gate import (
    ConsentFact,
    Intent,
    RecipientFacts,
    SuppressionFact,
    decide,
)
from consentry.domain.model import Category, Channel, TenantStatus
from consentry.domain.suppression import SuppressionReason, SuppressionScope
from population import NOW

TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000001")
UMBRELLA = uuid.UUID("00000000-0000-7000-8000-000000000002")
SERVICE_TOPIC = uuid.UUID("00000000-0000-7000-8000-000000000003")
SERVICE_UMBRELLA = uuid.UUID("00000000-0000-7000-8000-000000000004")

MARKETING_EMAIL = Intent(TOPIC, UMBRELLA, Category.MARKETING, Channel.EMAIL)
MARKETING_SMS = Intent(TOPIC, UMBRELLA, Category.MARKETING, Channel.SMS)
MARKETING_WHATSAPP = Intent(TOPIC, UMBRELLA, Category.MARKETING, Channel.WHATSAPP)
SERVICE_EMAIL = Intent(SERVICE_TOPIC, SERVICE_UMBRELLA, Category.SERVICE, Channel.EMAIL)
WHATSAPP_FREE_FORM = Intent(
    SERVICE_TOPIC, SERVICE_UMBRELLA, Category.SERVICE, Channel.WHATSAPP, whatsapp_free_form=True
)
US_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
)

Pair = tuple[RecipientFacts, Intent]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    share: float
    build: Callable[[random.Random], Pair]


def _key(rng: random.Random) -> bytes:
    return rng.randbytes(16)


def _consent(
    rng: random.Random,
    key: bytes,
    topic: uuid.UUID,
    *,
    status: ConsentStatus = ConsentStatus.ACTIVE,
    basis: ConsentBasis = ConsentBasis.EXPRESS,
    seq: int | None = None,
    expires_days: int | None = None,
) -> ConsentFact:
    return ConsentFact(
        topic_id=topic,
        point_key=key,
        status=status,
        basis=basis,
        confirmed=basis is ConsentBasis.DOUBLE_OPT_IN,
        event_id=uuid.UUID(int=rng.getrandbits(128)),
        seq=seq if seq is not None else rng.randrange(1, 10_000_000),
        expires_at=None if expires_days is None else NOW + timedelta(days=expires_days),
    )


def _facts(rng: random.Random, key: bytes, **fields: Any) -> RecipientFacts:
    defaults: dict[str, Any] = {
        "contact_id": uuid.UUID(int=rng.getrandbits(128)),
        "tenant_status": TenantStatus.ACTIVE,
        "tenant_country": "US",
        "point_key": key,
        "country": rng.choice(("US", "US", "US", "US", "CA", "DE")),
        "time_zone": rng.choice(US_ZONES),
        "adult_on": date(rng.randrange(1960, 2026), rng.randrange(1, 13), 1)
        if rng.random() < 0.4
        else None,
    }
    return RecipientFacts(**(defaults | fields))


def email_topic(rng: random.Random) -> Pair:
    key = _key(rng)
    consents = [_consent(rng, key, TOPIC)]
    if rng.random() < 0.5:
        consents.append(_consent(rng, key, UMBRELLA, seq=consents[0].seq - 1))
    return _facts(rng, key, consents=tuple(consents)), MARKETING_EMAIL


def email_umbrella(rng: random.Random) -> Pair:
    key = _key(rng)
    return _facts(rng, key, consents=(_consent(rng, key, UMBRELLA),)), MARKETING_EMAIL


def email_withdrawn(rng: random.Random) -> Pair:
    key = _key(rng)
    consents = (
        _consent(rng, key, UMBRELLA, seq=10),
        _consent(rng, key, TOPIC, status=ConsentStatus.WITHDRAWN, seq=20),
    )
    return _facts(rng, key, consents=consents), MARKETING_EMAIL


def email_suppressed(rng: random.Random) -> Pair:
    key = _key(rng)
    suppressions = [SuppressionFact(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING)]
    if rng.random() < 0.3:
        suppressions.append(
            SuppressionFact(SuppressionReason.HARD_BOUNCE, SuppressionScope.ALL, platform=True)
        )
    facts = _facts(
        rng, key, suppressions=tuple(suppressions), consents=(_consent(rng, key, TOPIC),)
    )
    return facts, MARKETING_EMAIL


def email_implied_ca(rng: random.Random) -> Pair:
    key = _key(rng)
    consent = _consent(
        rng,
        key,
        TOPIC,
        basis=ConsentBasis.IMPLIED_RELATIONSHIP,
        expires_days=rng.randrange(-200, 600),
    )
    facts = _facts(rng, key, country="CA", time_zone="America/Toronto", consents=(consent,))
    return facts, MARKETING_EMAIL


def sms_us_time_zone(rng: random.Random) -> Pair:
    key = _key(rng)
    return _facts(rng, key, country="US", consents=(_consent(rng, key, TOPIC),)), MARKETING_SMS


def sms_us_no_time_zone(rng: random.Random) -> Pair:
    key = _key(rng)
    facts = _facts(rng, key, country="US", time_zone=None, consents=(_consent(rng, key, TOPIC),))
    return facts, MARKETING_SMS


def service_email(rng: random.Random) -> Pair:
    key = _key(rng)
    consent = _consent(rng, key, SERVICE_UMBRELLA, basis=ConsentBasis.SERVICE_NECESSITY)
    suppressions = ()
    if rng.random() < 0.2:  # marketing opt-outs do not stop service messages
        suppressions = (
            SuppressionFact(SuppressionReason.UNSUBSCRIBED, SuppressionScope.MARKETING),
        )
    facts = _facts(rng, key, consents=(consent,), suppressions=suppressions)
    return facts, SERVICE_EMAIL


def whatsapp_marketing(rng: random.Random) -> Pair:
    key = _key(rng)
    return _facts(rng, key, consents=(_consent(rng, key, TOPIC),)), MARKETING_WHATSAPP


def whatsapp_free_form(rng: random.Random) -> Pair:
    key = _key(rng)
    inbound = NOW - timedelta(hours=rng.uniform(0, 48))
    return _facts(rng, key, last_inbound_at=inbound), WHATSAPP_FREE_FORM


SCENARIOS = (
    Scenario("email, consent on topic", 0.40, email_topic),
    Scenario("email, consent on umbrella", 0.15, email_umbrella),
    Scenario("email, withdrawn", 0.08, email_withdrawn),
    Scenario("email, suppressed", 0.07, email_suppressed),
    Scenario("email, implied (CA)", 0.05, email_implied_ca),
    Scenario("sms US, time zone known", 0.10, sms_us_time_zone),
    Scenario("sms US, time zone unknown", 0.03, sms_us_no_time_zone),
    Scenario("service email", 0.08, service_email),
    Scenario("whatsapp marketing", 0.03, whatsapp_marketing),
    Scenario("whatsapp free-form", 0.01, whatsapp_free_form),
)


def build(total: int, seed: int = 20261118) -> dict[str, list[Pair]]:
    rng = random.Random(seed)
    return {s.name: [s.build(rng) for _ in range(round(total * s.share))] for s in SCENARIOS}


def _best(pairs: list[Pair], repeats: int) -> float:
    return _best_wall_and_cpu(pairs, repeats)[0]


def _best_wall_and_cpu(pairs: list[Pair], repeats: int) -> tuple[float, float]:
    """Best wall-clock time and best CPU time of this process: on a shared machine the CPU time
    is what the code costs, the wall-clock time also counts waiting for the processor."""
    now = NOW
    best_wall = best_cpu = float("inf")
    for _ in range(repeats):
        cpu_started = time.process_time()
        started = time.perf_counter()
        for facts, intent in pairs:
            decide(facts, intent, now)
        best_wall = min(best_wall, time.perf_counter() - started)
        best_cpu = min(best_cpu, time.process_time() - cpu_started)
    return best_wall, best_cpu


def _best_new_instants(pairs: list[Pair], repeats: int) -> float:
    """As ``_best``, but each decision at its own instant (a microsecond apart), so nothing the
    rule packs cache per instant is reused."""
    best = float("inf")
    for repeat in range(repeats):
        first = repeat * len(pairs)  # never an instant an earlier run used
        instants = [NOW + timedelta(microseconds=first + k) for k in range(len(pairs))]
        started = time.perf_counter()
        for (facts, intent), now in zip(pairs, instants, strict=True):
            decide(facts, intent, now)
        best = min(best, time.perf_counter() - started)
    return best


def _profile(pairs: list[Pair], top: int) -> list[dict[str, Any]]:
    profiler = cProfile.Profile()
    profiler.enable()
    for facts, intent in pairs:
        decide(facts, intent, NOW)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    rows = []
    for (path, line, func), (_cc, calls, own, cumulative, _) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{path.rsplit('/', 1)[-1]}:{line}({func})",
                "calls": calls,
                "own_seconds": own,
                "cumulative_seconds": cumulative,
            }
        )
    rows.sort(key=lambda r: r["own_seconds"], reverse=True)
    return rows[:top]


def _primary(reasons: tuple[str, ...]) -> str:
    return reasons[0] if reasons else "ALLOW"


def measure(total: int, repeats: int, *, profile: bool) -> dict[str, Any]:
    by_scenario = build(total)
    mixed = [pair for pairs in by_scenario.values() for pair in pairs]
    random.Random(1).shuffle(mixed)
    verdicts = Counter(decide(f, i, NOW).verdict.value for f, i in mixed)
    best, best_cpu = _best_wall_and_cpu(mixed, repeats)
    scenarios = {}
    for name, pairs in by_scenario.items():
        seconds = _best(pairs, repeats)
        outcome = Counter(_primary(decide(f, i, NOW).reasons) for f, i in pairs)
        scenarios[name] = {
            "decisions": len(pairs),
            "seconds": seconds,
            "per_second": len(pairs) / seconds,
            "microseconds_each": seconds / len(pairs) * 1e6,
            "outcomes": dict(outcome.most_common()),
        }
    # Planning and dispatch batches decide at one instant; a caller deciding each message at its
    # own instant pays the full time-zone work of quiet hours every time.
    new_instants = {}
    for name in ("sms US, time zone known", "sms US, time zone unknown"):
        pairs = by_scenario[name]
        seconds = _best_new_instants(pairs, repeats)
        new_instants[name + ", a new instant each"] = {
            "decisions": len(pairs),
            "seconds": seconds,
            "per_second": len(pairs) / seconds,
            "microseconds_each": seconds / len(pairs) * 1e6,
        }
    result: dict[str, Any] = {
        "decisions": len(mixed),
        "repeats": repeats,
        "seconds": best,
        "per_second": len(mixed) / best,
        "microseconds_each": best / len(mixed) * 1e6,
        "cpu_seconds": best_cpu,
        "per_cpu_second": len(mixed) / best_cpu,
        "verdicts": dict(verdicts.most_common()),
        "scenarios": scenarios,
        "new_instant_each": new_instants,
    }
    if profile:
        result["profile"] = _profile(mixed, top=15)
    return result
