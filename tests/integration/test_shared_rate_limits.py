"""Limits shared through Redis: the API's request limits across server processes, and the send
limits across workers (a real Redis; required in CI)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
from sqlalchemy import Engine

from consentry.bootstrap import Container
from consentry.channels.ratelimit import LocalRateLimiter, RedisRateLimiter
from consentry.config import Settings
from consentry.persistence.crypto import FileKeyRing
from consentry.web.app import create_app
from consentry.web.limits import RedisRequestLimiter

KEY = "csk_abcdefghijklmnop_secret"  # a credential's public part keys its bucket


def test_server_processes_share_one_request_bucket(redis_url: str) -> None:
    async def run() -> list[float]:
        first = RedisRequestLimiter(redis_url, "api", rate=1.0, burst=3)
        second = RedisRequestLimiter(redis_url, "api", rate=1.0, burst=3)
        try:
            waits = [await first.check("key:a"), await second.check("key:a")]
            waits += [await first.check("key:a"), await second.check("key:a")]
            waits.append(await second.check("key:b"))  # another credential: its own bucket
            return waits
        finally:
            await first.close()
            await second.close()

    waits = asyncio.run(run())
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert 0.5 < waits[3] <= 1.0  # the fourth of a burst of three, at one a second
    assert waits[4] == 0.0


def test_an_unreachable_redis_lets_requests_through() -> None:
    async def run() -> float:
        limiter = RedisRequestLimiter("redis://127.0.0.1:1/0", "api", rate=1.0, burst=1)
        try:
            return await limiter.check("key:a")
        finally:
            await limiter.close()

    assert asyncio.run(run()) == 0.0


def test_two_apps_on_one_redis_refuse_the_request_past_the_shared_burst(
    redis_url: str, engine: Engine, keys: FileKeyRing, tmp_path: Path
) -> None:
    settings = Settings(
        data_dir=tmp_path, redis_url=redis_url, api_rate_per_second=0.01, api_rate_burst=2
    )
    container = Container(settings=settings, engine=engine, keys=keys)
    apps = [create_app(settings, container), create_app(settings, container)]

    async def run() -> list[httpx.Response]:
        answers = []
        try:
            for n in range(3):
                transport = httpx.ASGITransport(app=apps[n % 2])
                async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
                    answers.append(
                        await c.get("/v1/topics", headers={"Authorization": f"Bearer {KEY}"})
                    )
        finally:  # what the apps' lifespans would do on shutdown
            for app in apps:
                for limiter in app.state.request_limiters:
                    await limiter.close()
        return answers

    answers = asyncio.run(run())
    assert [a.status_code for a in answers[:2]] == [401, 401]  # counted, then refused by auth
    assert answers[2].status_code == 429
    assert answers[2].json()["code"] == "RATE_LIMITED"
    assert int(answers[2].headers["retry-after"]) >= 1


def test_workers_share_one_send_rate(redis_url: str) -> None:
    first = RedisRateLimiter(redis_url, rate_per_second=100.0, burst=5)
    second = RedisRateLimiter(redis_url, rate_per_second=100.0, burst=5)
    try:
        started = time.monotonic()
        first.acquire("tenant:sms", 5)  # the burst
        assert time.monotonic() - started < 0.04
        second.acquire("tenant:sms", 5)  # the other worker waits for the same bucket
        assert time.monotonic() - started >= 0.04
        started = time.monotonic()
        second.acquire("other:sms", 5)
        assert time.monotonic() - started < 0.04
    finally:
        first.close()
        second.close()


def test_a_local_send_rate_sleeps_until_the_batch_fits() -> None:
    now = [100.0]  # eighths of a second below: exact in binary, so the fake clock advances
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        assert len(slept) < 10, "the limiter kept sleeping"
        slept.append(seconds)
        now[0] += seconds

    limiter = LocalRateLimiter(8.0, burst=2, clock=lambda: now[0], sleep=sleep)
    limiter.acquire("t:email", 2)
    assert slept == []
    limiter.acquire("t:email", 1)
    assert slept == [0.125]
    limiter.acquire("t:email", 5)  # larger than the burst: goes once the bucket has drained
    assert slept == [0.125, 0.25]
