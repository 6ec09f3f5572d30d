"""Jobs finished per second per model, from 10-second counters in Redis.

The Lua step that ends a job increments the current bucket, so every web process reads the
same figure; buckets expire on their own. Used for ``Retry-After`` when a queue is full and
for the throughput estimate that ``GET /v1/models/{model}`` shows.
"""
from __future__ import annotations

import time

from shared import keys

BUCKET_S = 10
"""Width of one counter."""

WINDOW_BUCKETS = 3
"""Complete buckets averaged, besides the current one (30 s)."""

BUCKET_TTL_S = 120


def bucket_key(model: str, now: float) -> str:
    """The counter that a job ending at ``now`` increments."""
    return keys.throughput(model, int(now // BUCKET_S))


def window(model: str, now: float) -> tuple[list[str], float]:
    """The counters of the last 30-40 s at ``now``, and the seconds they span."""
    current = int(now // BUCKET_S)
    buckets = [keys.throughput(model, current - n) for n in range(WINDOW_BUCKETS + 1)]
    return buckets, WINDOW_BUCKETS * BUCKET_S + (now - current * BUCKET_S)


def jobs_per_second(redis, model: str, now: float | None = None) -> float:
    """Jobs ended per second over the last 30-40 s (0.0 when none ended)."""
    buckets, elapsed = window(model, time.time() if now is None else now)
    counts = [int(value or 0) for value in redis.mget(buckets)]
    return sum(counts) / elapsed
