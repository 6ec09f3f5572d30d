"""How fast a model starts queued work when it has some: the figure behind ETAs and admission.

Jobs ended per second (``shared.throughput``) measures demand as much as capacity: after a
quiet minute it reads near zero, and a queue-position ETA or an admission check built on it
would refuse a job that would have started at once. So workers also count the seconds they
spend running batches, and the rate is jobs ended per busy worker-second, times the workers
alive now: what the model does while it has work, over the same 30-40 s window.
"""
from __future__ import annotations

import time

from shared import keys, throughput
from shared.signatures import WORKER_ALIVE_S


def busy_key(model: str, now: float) -> str:
    """The counter that a batch ending at ``now`` adds its seconds to."""
    return keys.busy(model, int(now // throughput.BUCKET_S))


def window_keys(model: str, now: float) -> tuple[list[str], list[str]]:
    """The ended-job counters and the busy-second counters of the window at ``now``."""
    ended, _ = throughput.window(model, now)
    current = int(now // throughput.BUCKET_S)
    return ended, [keys.busy(model, current - n) for n in range(throughput.WINDOW_BUCKETS + 1)]


def jobs_per_second(ended: float, busy_s: float, workers: int) -> float:
    """Jobs a model starts per second while busy (0.0 when nothing was measured)."""
    if ended <= 0 or busy_s <= 0:
        return 0.0
    return ended / busy_s * max(1, workers)


def measure(redis, model: str, now: float | None = None) -> float:
    """The model's busy rate now, in one round trip (0.0 when nothing was measured)."""
    now = time.time() if now is None else now
    ended_keys, busy_keys = window_keys(model, now)
    pipe = redis.pipeline(transaction=False)
    pipe.mget(ended_keys)
    pipe.mget(busy_keys)
    pipe.zcount(keys.workers(model), now - WORKER_ALIVE_S, "+inf")
    ended, busy, workers = pipe.execute()
    return jobs_per_second(_total(ended), _total(busy), workers)


def _total(values) -> float:
    return sum(float(v) for v in values if v is not None)
