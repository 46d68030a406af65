"""Send-rate limits per key (tenant and channel): in one process, or shared through Redis.

Both are GCRA (the generic cell rate algorithm, a token bucket kept as one timestamp): the
"theoretical arrival time" of the next send advances by ``1/rate`` per message; a batch that
would push it more than ``burst/rate`` past now waits until it fits. In Redis the check and
the update are one Lua script, so workers on many hosts share one limit exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

GCRA = """
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
if tat < now then tat = now end
local new_tat = tat + cost
local wait = new_tat - now - tolerance
if wait > 0 then return tostring(wait) end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return '0'
"""


class LocalRateLimiter:
    def __init__(
        self,
        rate_per_second: float,
        burst: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._interval = 1.0 / rate_per_second
        self._tolerance = self._interval * (burst or max(1, int(rate_per_second)))
        self._tat: dict[str, float] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._sleep = sleep

    def acquire(self, key: str, count: int) -> None:
        cost = self._interval * count
        while True:
            with self._lock:
                now = self._clock()
                tat = max(self._tat.get(key, now), now)
                wait = tat + cost - now - max(self._tolerance, cost)
                if wait <= 0:
                    self._tat[key] = tat + cost
                    return
            self._sleep(wait)


class RedisRateLimiter:
    """The same limit for every worker that uses this Redis."""

    def __init__(self, url: str, rate_per_second: float, burst: int | None = None) -> None:
        self._redis = redis.Redis.from_url(url)
        self._interval = 1.0 / rate_per_second
        self._tolerance = self._interval * (burst or max(1, int(rate_per_second)))
        self._script = self._redis.register_script(GCRA)

    def acquire(self, key: str, count: int) -> None:
        cost = self._interval * count
        tolerance = max(self._tolerance, cost)  # a window larger than the burst still goes
        while True:
            wait = float(
                self._script(keys=[f"consentry:rate:{key}"], args=[time.time(), cost, tolerance])
            )
            if wait <= 0:
                return
            time.sleep(wait)

    def close(self) -> None:
        self._redis.close()
