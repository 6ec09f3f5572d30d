"""Saying no early: a per-model cap on queued work (503) and a per-key submission rate (429).

Both answer with ``Retry-After``: the queue cap's from the backlog and the measured
throughput (how long until there is room), the rate limit's from the token bucket.
"""
from __future__ import annotations

import math

from shared import keys, throughput
from shared.errors import TooManyRequests, Unavailable
from shared.queue import QueueFull, WaitTooLong
from shared.replication import ReplicasBehind

RETRY_AFTER_MAX_S = 300
"""Longest ``Retry-After`` given when the queue is full (the model may be stalled)."""

# KEYS[1] bucket hash. ARGV: rate per second, burst, now. Returns 0 when allowed, else the
# seconds until a token is free (as a string, Lua numbers being truncated to integers).
# Concurrent requests arrive with slightly out-of-order clocks: the bucket's time only moves
# forward, or the same interval would be refilled twice.
_TAKE_TOKEN = """
local rate, burst, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(math.max(at, now)))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return tostring(wait)
"""


def queue_full(redis, full: QueueFull, cap: int, now: float) -> Unavailable:
    """The 503 for a submit the queue cap refused, with how long until there is room."""
    rate = throughput.jobs_per_second(redis, full.model, now)
    wait = (full.backlog - cap + 1) / rate if rate > 0 else RETRY_AFTER_MAX_S
    retry_after = int(min(RETRY_AFTER_MAX_S, max(1, math.ceil(wait))))
    return Unavailable(f"model {full.model} has {full.backlog} unfinished jobs, its limit; at the current "
                       f"{rate:.1f} jobs/s there is room in about {retry_after} s",
                       retry_after=retry_after, backlog=full.backlog, jobs_per_second=round(rate, 3))


def wait_too_long(slow: WaitTooLong) -> Unavailable:
    """The 503 for a job whose ``max_queue_s`` is shorter than the wait ahead of it: admission
    control, so a client learns now what it would otherwise learn as ``expired`` later."""
    retry_after = int(min(RETRY_AFTER_MAX_S, max(1, math.ceil(slow.wait_s - slow.max_queue_s))))
    return Unavailable(f"model {slow.model}: the estimated wait is {slow.wait_s:.1f} s, longer than this job's "
                       f"max_queue_s of {slow.max_queue_s:g} s; nothing was stored",
                       retry_after=retry_after, estimated_wait_s=round(slow.wait_s, 3),
                       max_queue_s=slow.max_queue_s)


REPLICAS_RETRY_AFTER_S = 2
"""``Retry-After`` when the replicas did not confirm a job: a failover or a partition heals in seconds."""


def replicas_behind(behind: ReplicasBehind) -> Unavailable:
    """The 503 for a job the replicas did not confirm in time: it was withdrawn, so it never
    runs, and a retry (with the same ``Idempotency-Key`` or without) submits it afresh."""
    return Unavailable(f"{behind}; the job was not accepted and will not run, submit it again",
                       retry_after=REPLICAS_RETRY_AFTER_S, replicas_required=behind.wanted,
                       replicas_confirmed=behind.confirmed)


class RateLimiter:
    """A token bucket per API key in Redis, so every web process shares one budget."""

    def __init__(self, redis, per_second: float, burst: int, what: str = "submissions/s for this API key"):
        self.what = what
        self.per_second = per_second
        self.burst = burst if burst > 0 else max(1, int(per_second * 2))
        self._take = redis.register_script(_TAKE_TOKEN) if per_second > 0 else None

    def check(self, owner: str, now: float) -> None:
        """429 when ``owner`` has no token left."""
        if self._take is None:
            return
        wait = float(self._take(keys=[keys.rate_limit(owner)], args=[self.per_second, self.burst, now]))
        if wait > 0:
            raise TooManyRequests(f"over {self.per_second:g} {self.what}",
                                  retry_after=max(1, math.ceil(wait)))
