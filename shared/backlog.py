"""How much work a model has waiting: the one figure autoscalers and dashboards scale on.

``backlog`` counts every job routed to the model that has not ended, in every lane and for
every owner: queued in Redis,
claimed by a worker (Celery would call these reserved or prefetched) or running. It comes
from the per-version pending counts, raised in the submit transaction and lowered in the Lua
step that ends a job, so it is exact whatever the queues look like; ``LLEN`` alone misses
everything a worker has already taken.
"""
from __future__ import annotations

import time

from shared import celery_message, keys, lanes
from shared.lanes import Priority
from shared.tasks import PREDICT_TASK


def backlog(redis, model: str) -> int:
    """Jobs routed to ``model`` that have not reached a terminal state."""
    return sum(max(0, int(count)) for count in redis.hvals(keys.pending(model)))


def oldest_queued_age_s(redis, model: str, now: float | None = None) -> float:
    """Seconds the oldest job still waiting to be claimed has waited, in any lane (0 when none).

    Like SageMaker's ``ApproximateAgeOfOldestRequest``, jobs already claimed do not count.
    """
    now = time.time() if now is None else now
    return max([*lane_oldest_ages(redis, model, now).values(), _requeued_age_s(redis, model, now)])


def lane_depths(redis, model: str) -> dict[Priority, int]:
    """Jobs waiting in each of the model's lanes."""
    pipe = redis.pipeline(transaction=False)
    for key in lanes.lane_keys(model):
        pipe.zcard(key)
    return dict(zip(lanes.LANES, pipe.execute(), strict=True))


def lane_oldest_ages(redis, model: str, now: float) -> dict[Priority, float]:
    """Seconds the oldest job of each lane has waited (0 for an empty lane), from the arrival sets."""
    pipe = redis.pipeline(transaction=False)
    for key in lanes.arrival_keys(model):
        pipe.zrange(key, 0, 0, withscores=True)
    return {lane: max(0.0, now - oldest[0][1]) if oldest else 0.0
            for lane, oldest in zip(lanes.LANES, pipe.execute(), strict=True)}


def _requeued_age_s(redis, model: str, now: float) -> float:
    """Age of the oldest message a dead worker's claims put back in the model's Celery list."""
    raw = redis.lindex(keys.queue(model), -1)
    if raw is None:
        return 0.0
    try:
        job_id = celery_message.job_id_of(raw, PREDICT_TASK)
    except celery_message.MalformedMessage:
        return 0.0
    created = redis.hget(keys.job(job_id), "created_at")
    if created is None:
        return 0.0
    return max(0.0, now - float(created))
